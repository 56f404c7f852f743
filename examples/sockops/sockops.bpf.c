// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* sockops: count the TCP socket operations (connect, active/passive
 * established, state changes, ...) of every process in a cgroup v2 subtree.
 * SEC("sockops") is attached to the cgroup directory given by the guest. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define MAX_OPS 16 /* BPF_SOCK_OPS_* callbacks numbered below this */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* skops->op -> number of calls */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_OPS);
	__type(key, u32);
	__type(value, u64);
} op_count SEC(".maps");

/* never written: the guest waits on it with a timeout (the interval) */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

SEC("sockops")
int sockops_count(struct bpf_sock_ops *skops)
{
	u32 op = skops->op;
	u64 *val;

	if (op >= MAX_OPS)
		return 1;
	val = bpf_map_lookup_elem(&op_count, &op);
	if (val)
		__sync_fetch_and_add(val, 1);
	/* once established, also get a callback on every TCP state change */
	if (op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB ||
	    op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
						 BPF_SOCK_OPS_STATE_CB_FLAG);
	return 1;
}
