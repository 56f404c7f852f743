/* The kernel half: count openat() calls per process in the hash map
 * `counts` (pid -> calls), which @NAME@.c reads and clears. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);   /* pid */
	__type(value, u64); /* openat() calls */
} counts SEC(".maps");

/* Nothing is ever sent here: the user half polls it as an interruptible
 * sleep (wasm_bpf_sleep_ms), which Ctrl-C cuts short. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} tick SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int count_openat(void *ctx)
{
	u32 pid = bpf_get_current_pid_tgid() >> 32;
	u64 one = 1, *calls;

	calls = bpf_map_lookup_elem(&counts, &pid);
	if (calls)
		__sync_fetch_and_add(calls, 1);
	else
		bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
	return 0;
}
