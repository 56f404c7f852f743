// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Maps for the `metricsfill` guest: one per shape a metrics config can read
 * (struct keys for every label decoder, per-CPU values, histogram slots in
 * the value or the key). The guest writes them; nothing runs in the kernel. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct labels_key {
	u32 pid;
	char comm[16];
	u32 ifindex;
	s32 err;
	u32 syscall;
	u64 cgroup;
	u64 addr;
};

struct counts {
	u64 events;
	u64 bytes;
};

/* every decoder: labels_key -> struct counts */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct labels_key);
	__type(value, struct counts);
} decoded SEC(".maps");

/* per-CPU values: summed, or one series per CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} percpu SEC(".maps");

struct hist {
	u32 slots[8];
};

/* log2 slots in the value, keyed by a label */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, struct hist);
} slots_hist SEC(".maps");

struct bucket_key {
	u32 op;
	u32 le;
};

/* keyed buckets: the key holds the bucket's upper bound */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct bucket_key);
	__type(value, u64);
} keyed_hist SEC(".maps");

/* user space may write but not read it (BPF_F_WRONLY): every scrape of a
 * metric on it fails, which the scrape error counter must show */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, 1U << 4);
	__type(key, u32);
	__type(value, u64);
} unreadable SEC(".maps");

/* never written: the guest waits on it until stopped */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} idle SEC(".maps");
