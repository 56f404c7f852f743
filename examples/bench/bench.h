/* SPDX-License-Identifier: MIT */
/* bench: the record the BPF program writes, shared by the BPF program, the
 * wasm guest and the native consumer (bench/native_consumer.c). */
#ifndef BENCH_H
#define BENCH_H

#define BENCH_RING_BYTES (64 * 1024 * 1024) /* 64 MiB: ~932k 64-byte records (+8-byte headers) */
#define BENCH_RING16_BYTES (16 * 1024 * 1024) /* the evenly paced case: `rb16`, mode ring16 */
#define BENCH_WALK_ENTRIES 10000
#define BENCH_DROP_RING 0 /* index in the per-CPU `drops` array */
#define BENCH_DROP_PERF 1

struct bench_record {
	unsigned long long seq;      /* per program, counts every event, delivered or dropped */
	unsigned long long ktime_ns; /* bpf_ktime_get_ns() at submit (CLOCK_MONOTONIC) */
	unsigned int pid;
	unsigned int cpu;
	unsigned long long tai_ns;   /* bpf_ktime_get_tai_ns(): CLOCK_TAI, for guests whose
					CLOCK_MONOTONIC is not the host's */
	unsigned char pad[32];
};

#endif
