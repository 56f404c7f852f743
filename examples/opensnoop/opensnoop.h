/* SPDX-License-Identifier: MIT */
/* Event shared by opensnoop.bpf.c (BPF, 64-bit) and opensnoop.c (wasm32).
 * Fixed-width types only: identical layout on both sides. */
#ifndef OPENSNOOP_H
#define OPENSNOOP_H

#ifndef __bpf__
#include <stdint.h>
typedef int32_t __s32;
typedef uint32_t __u32;
typedef uint64_t __u64;
#endif

#define TASK_COMM_LEN 16
#define NAME_MAX 255

struct event {
	__u64 ts_ns;
	__s32 pid;  /* process (tgid) */
	__u32 uid;
	__s32 ret;  /* fd, or -errno (Linux numbering) */
	__s32 flags;
	char comm[TASK_COMM_LEN];
	char fname[NAME_MAX + 1];
};

_Static_assert(sizeof(struct event) == 296, "struct event layout");
_Static_assert(__builtin_offsetof(struct event, comm) == 24,
	       "struct event layout");
_Static_assert(__builtin_offsetof(struct event, fname) == 40,
	       "struct event layout");

#endif /* OPENSNOOP_H */
