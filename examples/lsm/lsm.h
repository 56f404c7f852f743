/* SPDX-License-Identifier: MIT */
/* Shared by lsm.bpf.c (BPF, 64-bit) and lsm.c (wasm32). */
#ifndef LSM_H
#define LSM_H

#ifndef __bpf__
#include <stdint.h>
typedef int32_t __s32;
typedef uint32_t __u32;
#endif

#define TASK_COMM_LEN 16
#define DIR_NAME_LEN 64 /* protected name: at most 63 bytes + NUL */

struct event {
	__s32 pid;
	__u32 denied; /* 1: the rmdir was refused with EPERM */
	char comm[TASK_COMM_LEN];
	char name[DIR_NAME_LEN];
};

_Static_assert(sizeof(struct event) == 88, "struct event layout");
_Static_assert(__builtin_offsetof(struct event, name) == 24,
	       "struct event layout");

#endif /* LSM_H */
