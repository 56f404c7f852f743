// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Maps for the `mapwalk` guest: walked with get-next-key + lookup, which the
 * host may serve from batch lookups. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define BPF_MAP_DELETE_ELEM_CMD 3

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2048);
	__type(key, u32);
	__type(value, u64);
} big SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 300);
	__type(key, u32);
	__type(value, u64);
} arr SEC(".maps");

/* u32 values: the kernel rounds each CPU's value up to 8 bytes */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 256);
	__type(key, u32);
	__type(value, u32);
} pcpu SEC(".maps");

/* [0]: bpf(BPF_MAP_DELETE_ELEM) calls, by any process */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} deletes SEC(".maps");

/* the guest deletes from here to make `deletes` change under its walk */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} scratch SEC(".maps");

SEC("tp/syscalls/sys_enter_bpf")
int count_deletes(struct trace_event_raw_sys_enter *ctx)
{
	u32 key = 0;
	u64 *n;

	if (ctx->args[0] != BPF_MAP_DELETE_ELEM_CMD)
		return 0;
	n = bpf_map_lookup_elem(&deletes, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}
