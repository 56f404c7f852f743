// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Maps for the `maps` and `badptr` guests; the program is never attached. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, u32);
	__type(value, u64);
} kv SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} arr SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int handle_getppid(void *ctx)
{
	u32 key = 0;
	u64 *v = bpf_map_lookup_elem(&arr, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}
