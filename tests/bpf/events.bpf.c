// Test program for tests/test_bpf_core.py: on getppid() from the pid stored in
// map `target`, emit one record to a ring buffer and one to a perf buffer.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct event {
	__u32 pid;
	__u32 seq;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2); /* [0] target pid, [1] sequence counter */
	__type(key, __u32);
	__type(value, __u32);
} target SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} pb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} kv SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int handle_getppid(void *ctx)
{
	__u32 zero = 0, one = 1;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u32 *want = bpf_map_lookup_elem(&target, &zero);
	__u32 *seq = bpf_map_lookup_elem(&target, &one);
	struct event e = {};
	struct event *r;

	if (!want || !seq || *want != pid)
		return 0;
	e.pid = pid;
	e.seq = *seq;
	*seq = e.seq + 1; /* single test thread: no atomics needed */
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	r = bpf_ringbuf_reserve(&rb, sizeof(*r), 0);
	if (r) {
		*r = e;
		bpf_ringbuf_submit(r, 0);
	}
	bpf_perf_event_output(ctx, &pb, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

SEC("tp/wasm_bpf_no_such_category/no_such_event")
int handle_missing(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
