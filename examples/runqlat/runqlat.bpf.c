// SPDX-License-Identifier: GPL-2.0
/* runqlat: run queue latency (wakeup -> on CPU) as a log2 histogram of
 * microseconds, from the BTF-enabled scheduler tracepoints. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "runqlat.h"

char LICENSE[] SEC("license") = "GPL";

#define TASK_RUNNING 0

/* tid -> time it was woken up / preempted (ns) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u64);
} start SEC(".maps");

/* slot -> count; read and cleared by the guest every interval */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SLOTS);
	__type(key, u32);
	__type(value, u64);
} hist SEC(".maps");

/* slot -> count since start, never cleared: what `wasm-bpf run --metrics`
 * exports as a Prometheus histogram (metrics.toml; counters must not go back) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SLOTS);
	__type(key, u32);
	__type(value, u64);
} hist_total SEC(".maps");

/* Never written: the guest polls it with the interval as timeout, so the
 * wait between two histograms is interruptible (Ctrl-C -> -EINTR). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} tick SEC(".maps");

/* set by the guest (-p PID) by patching .rodata before load; 0 = all */
const volatile pid_t targ_tgid = 0;

static __always_inline int trace_enqueue(struct task_struct *p)
{
	u32 tid = BPF_CORE_READ(p, pid);
	u64 ts;

	if (!tid)
		return 0;
	if (targ_tgid && BPF_CORE_READ(p, tgid) != targ_tgid)
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}

static __always_inline u32 log2_u64(u64 v)
{
	u32 r = 0;

	/* bounded loop: the verifier sees at most 64 iterations */
	for (int i = 0; i < 64 && v > 1; i++) {
		v >>= 1;
		r++;
	}
	return r;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(handle_sched_wakeup, struct task_struct *p)
{
	return trace_enqueue(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(handle_sched_wakeup_new, struct task_struct *p)
{
	return trace_enqueue(p);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(handle_sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	u64 *tsp, delta_us;
	u32 tid, slot;
	u64 *count;

	/* a preempted task goes straight back to the run queue */
	if (BPF_CORE_READ(prev, __state) == TASK_RUNNING)
		trace_enqueue(prev);

	tid = BPF_CORE_READ(next, pid);
	tsp = bpf_map_lookup_elem(&start, &tid);
	if (!tsp)
		return 0;
	delta_us = (bpf_ktime_get_ns() - *tsp) / 1000;
	bpf_map_delete_elem(&start, &tid);

	/* [0,1] us -> slot 0, [2,3] -> 1, [4,7] -> 2, ... (as bcc's runqlat) */
	slot = log2_u64(delta_us);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	count = bpf_map_lookup_elem(&hist, &slot);
	if (count)
		__sync_fetch_and_add(count, 1);
	count = bpf_map_lookup_elem(&hist_total, &slot);
	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}
