/* The kernel half: on every openat(), send the caller's pid, name and the
 * file name to user space through the ring buffer `rb`. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "@NAME@.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by @NAME@.c before load (skel->rodata->target_pid); 0: every process. */
const volatile unsigned int target_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int handle_openat(struct trace_event_raw_sys_enter *ctx)
{
	unsigned int pid = bpf_get_current_pid_tgid() >> 32;
	struct event *e;

	if (target_pid && pid != target_pid)
		return 0;
	e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 0; /* the ring is full: this event is lost */
	e->pid = pid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_user_str(e->filename, sizeof(e->filename),
				(const char *)ctx->args[1]);
	bpf_ringbuf_submit(e, 0);
	return 0;
}
