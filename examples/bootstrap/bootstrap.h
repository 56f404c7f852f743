/* SPDX-License-Identifier: MIT */
/* Event shared by bootstrap.bpf.c (BPF, 64-bit) and bootstrap.c (wasm32).
 * Only fixed-width types and explicit padding: identical layout on both. */
#ifndef BOOTSTRAP_H
#define BOOTSTRAP_H

#ifndef __bpf__
#include <stdint.h>
typedef int32_t __s32;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef uint8_t __u8;
#endif

#define TASK_COMM_LEN 16
#define MAX_FILENAME_LEN 127

struct event {
	__s32 pid;
	__s32 ppid;
	__u32 exit_code;
	__u32 __pad; /* explicit: duration_ns is 8-byte aligned on both sides */
	__u64 duration_ns;
	char comm[TASK_COMM_LEN];
	char filename[MAX_FILENAME_LEN];
	__u8 exit_event; /* bool: 1 = exit, 0 = exec */
};

_Static_assert(sizeof(struct event) == 168, "struct event layout");
_Static_assert(__builtin_offsetof(struct event, duration_ns) == 16,
	       "struct event layout");
_Static_assert(__builtin_offsetof(struct event, comm) == 24,
	       "struct event layout");
_Static_assert(__builtin_offsetof(struct event, filename) == 40,
	       "struct event layout");
_Static_assert(__builtin_offsetof(struct event, exit_event) == 167,
	       "struct event layout");

#endif /* BOOTSTRAP_H */
