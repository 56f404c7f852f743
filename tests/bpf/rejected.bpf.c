// Test program the verifier must reject: dereferences a map lookup result
// without the NULL check.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} m SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int unchecked_lookup(void *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&m, &k);
	return *v;
}

char LICENSE[] SEC("license") = "GPL";
