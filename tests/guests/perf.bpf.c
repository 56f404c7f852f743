// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* getppid() from target_pid (any pid if 0) -> struct test_sample in perf buffer events */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "sample.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} events SEC(".maps");

const volatile __u32 target_pid = 0; /* patched by the guest before load */
__u32 sample_seq = 0;

SEC("tp/syscalls/sys_enter_getppid")
int handle_getppid(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct test_sample s = {};

	if (target_pid && pid != target_pid)
		return 0;
	s.pid = pid;
	s.seq = ++sample_seq;
	__builtin_memcpy(s.tag, "perfevt", 8);
	s.cpu = bpf_get_smp_processor_id();
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &s, sizeof(s));
	return 0;
}
