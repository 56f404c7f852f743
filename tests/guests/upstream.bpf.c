// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The BPF half of the upstream-style guest (upstream.c): getppid() calls of
 * one process, seen by one of two alternative programs (a tracepoint or the
 * raw sys_enter tracepoint: the guest disables the other with
 * bpf_program__set_autoload), go to ring buffer `rb` and to a log2
 * histogram per pid; a uprobe on libc's getppid, attached where the guest
 * says (bpf_set_prog_attach_target), counts them in .bss. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "upstream.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define NR_getppid 110 /* x86_64 */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, u32);
	__type(value, struct hist);
} hists SEC(".maps");

const volatile u32 target_tgid = 0;
u32 seq = 0;
u32 uprobe_calls = 0;

static __always_inline u32 log2_u32(u32 v)
{
	u32 r = 0;

	for (int i = 0; i < 32 && v > 1; i++) {
		v >>= 1;
		r++;
	}
	return r;
}

static __always_inline int record(void)
{
	static const struct hist zero;
	u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct event *e;
	struct hist *h;
	u32 n, slot;

	if (pid != target_tgid)
		return 0;
	n = ++seq; /* one caller at a time: the test calls getppid() in turn */
	bpf_printk("getppid #%u", n);
	h = bpf_map_lookup_elem(&hists, &pid);
	if (!h) {
		bpf_map_update_elem(&hists, &pid, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &pid);
		if (!h)
			return 0;
		bpf_get_current_comm(h->comm, sizeof(h->comm));
	}
	slot = log2_u32(n);
	if (slot < MAX_SLOTS)
		__sync_fetch_and_add(&h->slots[slot], 1);
	e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	e->seq = n;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp/syscalls/sys_enter_getppid")
int handle_getppid_tp(void *ctx)
{
	return record();
}

SEC("raw_tp/sys_enter")
int handle_getppid_raw(struct bpf_raw_tracepoint_args *ctx)
{
	if (ctx->args[1] != NR_getppid)
		return 0;
	return record();
}

SEC("uprobe")
int BPF_KPROBE(count_libc_getppid)
{
	if (bpf_get_current_pid_tgid() >> 32 == target_tgid)
		__sync_fetch_and_add(&uprobe_calls, 1);
	return 0;
}
