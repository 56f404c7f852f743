// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Two ring buffers: getppid() from target_pid (any pid if 0) -> struct
 * test_sample in rb_a (tag "ring-a"), getpgid() -> rb_b (tag "ring-b"); each
 * ring numbers its records 1, 2, ... */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "sample.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb_a SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb_b SEC(".maps");

const volatile __u32 target_pid = 0; /* patched by the guest before load */
__u32 seq_a = 0, seq_b = 0;

static __always_inline int submit(void *rb, __u32 *seq, const char tag[8])
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct test_sample *s;

	if (target_pid && pid != target_pid)
		return 0;
	s = bpf_ringbuf_reserve(rb, sizeof(*s), 0);
	if (!s)
		return 0;
	s->pid = pid;
	s->seq = ++*seq;
	__builtin_memcpy(s->tag, tag, 8);
	s->cpu = bpf_get_smp_processor_id();
	bpf_ringbuf_submit(s, 0);
	return 0;
}

SEC("tp/syscalls/sys_enter_getppid")
int handle_getppid(void *ctx)
{
	return submit(&rb_a, &seq_a, "ring-a\0");
}

SEC("tp/syscalls/sys_enter_getpgid")
int handle_getpgid(void *ctx)
{
	return submit(&rb_b, &seq_b, "ring-b\0");
}
