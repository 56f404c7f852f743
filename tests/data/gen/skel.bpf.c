// gen skeleton test object: .rodata knobs of several sizes and an array, a
// .data variable, two maps and two programs. On getppid() from target_tgid,
// handle_getppid stores the rodata knobs into map `out` for the guest to read.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} out SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} seen SEC(".maps");

const volatile __u8 flag8 = 1;
const volatile __u16 val16 = 2;
const volatile __u32 target_tgid = 0;
const volatile __u64 magic = 4;
const volatile __u32 weights[3] = {5, 6, 7};
const volatile char label[5] = "abcd";
__u64 hits = 40;

SEC("tp/syscalls/sys_enter_getppid")
int handle_getppid(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 k0 = 0, k1 = 1, k2 = 2, k3 = 3;
	__u64 v;

	if (tgid != target_tgid)
		return 0;
	v = magic;
	bpf_map_update_elem(&out, &k0, &v, BPF_ANY);
	v = (__u64)weights[0] + weights[1] + weights[2];
	bpf_map_update_elem(&out, &k1, &v, BPF_ANY);
	v = (__u64)flag8 << 16 | val16;
	bpf_map_update_elem(&out, &k2, &v, BPF_ANY);
	v = ++hits;
	bpf_map_update_elem(&out, &k3, &v, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int handle_getpid(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32, one = 1;

	if (label[0] == 'a')
		bpf_map_update_elem(&seen, &tgid, &one, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
