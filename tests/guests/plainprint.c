/* plainprint [PID]: written the way upstream's examples are, not the way
 * this project's are: plain printf with no setvbuf and no fflush, and a poll
 * loop that ignores every error, -EINTR included (as upstream opensnoop.c
 * does). Prints "ready" once attached, then "sample <pid> <seq>" per
 * ring-buffer sample of a getppid() by PID (0 or missing: any process). */
#include <stdio.h>
#include <stdlib.h>

#include "wasm_bpf.h"
#include "ringbuf.skel.h"
#include "sample.h"

static int on_sample(void *ctx, void *data, size_t size)
{
	const struct test_sample *s = data;

	(void)ctx, (void)size;
	printf("sample %u %u\n", s->pid, s->seq);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned int pid = argc > 1 ? (unsigned int)strtoul(argv[1], NULL, 0) : 0;
	struct bpf_object *obj;
	struct bpf_buffer *buf;

	if (wasm_bpf_set_global(ringbuf_bpf_obj, ringbuf_bpf_obj_len, ".rodata", "target_pid",
				&pid, sizeof(pid)))
		return 1;
	obj = wasm_bpf_object_load(ringbuf_bpf_obj, ringbuf_bpf_obj_len);
	if (!obj || wasm_bpf_attach_program(obj, "handle_getppid", NULL) < 0) {
		printf("failed to load and attach\n");
		return -1;
	}
	buf = bpf_buffer__open(obj, "rb", on_sample, NULL);
	if (!buf)
		return -1;
	printf("ready\n");
	for (;;)
		bpf_buffer__poll(buf, 100);
	return 0;
}
