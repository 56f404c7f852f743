// SPDX-License-Identifier: GPL-2.0
/* uprobe: trace calls of uprobed_add(int a, int b) in a user-space program
 * (entry with a uprobe, return value with a uretprobe). The sections carry
 * no binary: the guest gives it as the attach target BINARY:FUNCTION. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "uprobe.h"

char LICENSE[] SEC("license") = "GPL";

struct call_args {
	int a;
	int b;
};

/* tid -> arguments of its pending call, for the return event */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct call_args);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb SEC(".maps");

static __always_inline void emit(int a, int b, int ret, int is_ret)
{
	struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);

	if (!e)
		return;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->a = a;
	e->b = b;
	e->ret = ret;
	e->is_ret = is_ret;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

SEC("uprobe")
int BPF_KPROBE(uprobe_add, int a, int b)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct call_args args = { .a = a, .b = b };

	bpf_map_update_elem(&calls, &tid, &args, BPF_ANY);
	emit(a, b, 0, 0);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe_add, int ret)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct call_args *args = bpf_map_lookup_elem(&calls, &tid);
	int a = 0, b = 0;

	if (args) {
		a = args->a;
		b = args->b;
		bpf_map_delete_elem(&calls, &tid);
	}
	emit(a, b, ret, 1);
	return 0;
}
