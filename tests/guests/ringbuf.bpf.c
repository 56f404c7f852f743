// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* getppid() from target_pid (any pid if 0) -> struct test_sample in ring buffer rb */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "sample.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb SEC(".maps");

const volatile __u32 target_pid = 0; /* patched by the guest before load */
__u32 sample_seq = 0;

SEC("tp/syscalls/sys_enter_getppid")
int handle_getppid(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct test_sample *s;

	if (target_pid && pid != target_pid)
		return 0;
	s = bpf_ringbuf_reserve(&rb, sizeof(*s), 0);
	if (!s)
		return 0;
	s->pid = pid;
	s->seq = ++sample_seq;
	__builtin_memcpy(s->tag, "ringevt", 8);
	s->cpu = bpf_get_smp_processor_id();
	bpf_ringbuf_submit(s, 0);
	return 0;
}
