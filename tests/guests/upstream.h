/* Shared by upstream.bpf.c and upstream.c (the upstream-style guest). */
#ifndef UPSTREAM_H
#define UPSTREAM_H

#define MAX_SLOTS 16
#define TASK_COMM_LEN 16

#ifndef __bpf__
#include <stdint.h>
typedef uint32_t __u32;
#endif

struct event {
	__u32 pid;
	__u32 seq; /* 1, 2, ... per getppid() of the target */
	char comm[TASK_COMM_LEN];
};

struct hist {
	__u32 slots[MAX_SLOTS]; /* log2 of seq */
	char comm[TASK_COMM_LEN];
};

#endif
