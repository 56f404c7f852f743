// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* A program that does nothing, for guests that only need something attached. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp/syscalls/sys_enter_getppid")
int handle_getppid(void *ctx)
{
	return 0;
}
