// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* tc: a classifier (SEC("tc"), direct action) counting the packets and
 * bytes passing one interface's ingress (or egress); every packet goes on. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "tc.h"

#define TC_ACT_OK 0

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct tc_count);
} counts SEC(".maps");

/* never written: the guest waits on it with a timeout (the interval) */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

SEC("tc")
int tc_count(struct __sk_buff *skb)
{
	u32 key = 0;
	struct tc_count *c = bpf_map_lookup_elem(&counts, &key);

	if (c) {
		__sync_fetch_and_add(&c->packets, 1);
		__sync_fetch_and_add(&c->bytes, skb->len);
	}
	return TC_ACT_OK;
}
