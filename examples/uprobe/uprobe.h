/* SPDX-License-Identifier: MIT */
/* Event shared by uprobe.bpf.c (BPF, 64-bit) and uprobe.c (wasm32). */
#ifndef UPROBE_H
#define UPROBE_H

#ifndef __bpf__
#include <stdint.h>
typedef int32_t __s32;
typedef uint32_t __u32;
#endif

#define TASK_COMM_LEN 16

struct event {
	__s32 pid;
	__s32 a;
	__s32 b;
	__s32 ret;    /* valid when is_ret */
	__u32 is_ret; /* 0: entry (uprobe), 1: return (uretprobe) */
	char comm[TASK_COMM_LEN];
};

_Static_assert(sizeof(struct event) == 36, "struct event layout");
_Static_assert(__builtin_offsetof(struct event, comm) == 20,
	       "struct event layout");

#endif /* UPROBE_H */
