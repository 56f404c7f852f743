// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* bench: one 64-byte record per getppid() of the target process, through a
 * ring buffer (handle_ring) or a perf buffer (handle_perf); the consumer
 * attaches the one it measures. Every event takes a sequence number, so a
 * record the kernel could not write shows up as a gap, and is counted in the
 * per-CPU `drops` array. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bench.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

_Static_assert(sizeof(struct bench_record) == 64, "64-byte records");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, BENCH_RING_BYTES);
} rb SEC(".maps");

/* the evenly paced case (handle_ring16): a 16 MiB ring, as the issue's
 * peak-RSS comparison */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, BENCH_RING16_BYTES);
} rb16 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} pb SEC(".maps");

/* [BENCH_DROP_RING]: ringbuf reserve failures, [BENCH_DROP_PERF]: perf output failures */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, u64);
} drops SEC(".maps");

/* the map walk: filled and walked from user space */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BENCH_WALK_ENTRIES);
	__type(key, u32);
	__type(value, u64);
} walk SEC(".maps");

/* set by the consumer through .rodata before load */
const volatile u32 target_pid = 0;

/* [BENCH_DROP_RING]/[BENCH_DROP_PERF]: next sequence number = events seen so
 * far. The target is one single-threaded load generator, so a program never
 * runs concurrently for it: plain increments are enough. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, u64);
} seqs SEC(".maps");

static __always_inline int next_seq(u32 idx, u64 *seq)
{
	u64 *s = bpf_map_lookup_elem(&seqs, &idx);

	if (!s)
		return -1;
	*seq = (*s)++;
	return 0;
}

static __always_inline void count_drop(u32 idx)
{
	u64 *d = bpf_map_lookup_elem(&drops, &idx);

	if (d)
		*d += 1;
}

static __always_inline void fill(struct bench_record *r, u64 seq, u32 pid)
{
	r->seq = seq;
	r->ktime_ns = bpf_ktime_get_ns();
	r->tai_ns = bpf_ktime_get_tai_ns();
	r->pid = pid;
	r->cpu = bpf_get_smp_processor_id();
}

static __always_inline int ring_record(void *ring)
{
	u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct bench_record *r;
	u64 seq;

	if (pid != target_pid || next_seq(BENCH_DROP_RING, &seq))
		return 0;
	r = bpf_ringbuf_reserve(ring, sizeof(*r), 0);
	if (!r) {
		count_drop(BENCH_DROP_RING);
		return 0;
	}
	fill(r, seq, pid);
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("tp/syscalls/sys_enter_getppid")
int handle_ring(void *ctx)
{
	return ring_record(&rb);
}

SEC("tp/syscalls/sys_enter_getppid")
int handle_ring16(void *ctx)
{
	return ring_record(&rb16);
}

SEC("tp/syscalls/sys_enter_getppid")
int handle_perf(void *ctx)
{
	u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct bench_record r = {};
	u64 seq;

	if (pid != target_pid || next_seq(BENCH_DROP_PERF, &seq))
		return 0;
	fill(&r, seq, pid);
	if (bpf_perf_event_output(ctx, &pb, BPF_F_CURRENT_CPU, &r, sizeof(r)))
		count_drop(BENCH_DROP_PERF);
	return 0;
}
