/* SPDX-License-Identifier: MIT */
/* tc: the counter layout shared by the BPF program and the wasm32 guest. */
#ifndef TC_H
#define TC_H

struct tc_count {
	unsigned long long packets;
	unsigned long long bytes;
};

_Static_assert(sizeof(struct tc_count) == 16, "struct tc_count layout");

#endif
