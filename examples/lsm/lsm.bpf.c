// SPDX-License-Identifier: GPL-2.0
/* lsm: a BPF LSM program on the path_rmdir hook that refuses (EPERM) to
 * remove any directory whose last path component equals `dir_name`, and
 * reports each refusal through a ring buffer. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "lsm.h"

char LICENSE[] SEC("license") = "GPL";

#define EPERM 1

/* set by the guest (its NAME argument) by patching .rodata before load */
const volatile char dir_name[DIR_NAME_LEN] = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} rb SEC(".maps");

SEC("lsm/path_rmdir")
int BPF_PROG(deny_rmdir, const struct path *dir, struct dentry *dentry,
	     int ret)
{
	char name[DIR_NAME_LEN];
	struct event *e;
	int i;

	if (ret != 0) /* an earlier LSM already refused */
		return ret;
	if (bpf_probe_read_kernel_str(name, sizeof(name),
				      BPF_CORE_READ(dentry, d_name.name)) < 0)
		return 0;
	for (i = 0; i < DIR_NAME_LEN; i++) {
		if (name[i] != dir_name[i])
			return 0;
		if (!name[i])
			break;
	}
	if (!dir_name[0])
		return 0;

	e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (e) {
		e->pid = bpf_get_current_pid_tgid() >> 32;
		e->denied = 1;
		bpf_get_current_comm(&e->comm, sizeof(e->comm));
		__builtin_memcpy(e->name, name, sizeof(e->name));
		bpf_ringbuf_submit(e, 0);
	}
	return -EPERM;
}
