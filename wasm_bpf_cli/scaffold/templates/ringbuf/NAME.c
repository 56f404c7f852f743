/* The user half (wasm32-wasi): load and attach @NAME@.bpf.o, then print one
 * line per event until Ctrl-C. Usage: @NAME@.wasm [PID] */
#include <stdio.h>
#include <stdlib.h>
#include "@NAME@.h"
#include "@NAME@.skel.h" /* wasm-bpf gen skeleton @NAME@.bpf.o */

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = data;

	printf("%-7u %-16s %s\n", e->pid, e->comm, e->filename);
	fflush(stdout); /* one line at a time, also into a pipe */
	return 0;
}

int main(int argc, char **argv)
{
	struct @NAME@_bpf *skel;
	struct bpf_buffer *rb = NULL;
	int err;

	skel = @NAME@_bpf__open();
	if (!skel) {
		fprintf(stderr, "cannot open the BPF skeleton\n");
		return 1;
	}
	if (argc > 1) /* patches .rodata in the embedded object */
		skel->rodata->target_pid = (unsigned int)atoi(argv[1]);
	err = @NAME@_bpf__load(skel);
	if (err < 0) {
		fprintf(stderr, "cannot load the BPF object: %d\n", err);
		goto cleanup;
	}
	err = @NAME@_bpf__attach(skel);
	if (err < 0) {
		fprintf(stderr, "cannot attach the BPF programs: %d\n", err);
		goto cleanup;
	}
	rb = bpf_buffer__open(skel->obj, "rb", handle_event, NULL);
	if (!rb) {
		err = -errno;
		fprintf(stderr, "cannot open the ring buffer rb: %d\n", err);
		goto cleanup;
	}
	printf("%-7s %-16s %s\n", "PID", "COMM", "FILE");
	fflush(stdout);
	for (;;) {
		err = bpf_buffer__poll(rb, 100 /* ms */);
		if (err == -EINTR) { /* Ctrl-C, SIGTERM or --duration */
			err = 0;
			break;
		}
		if (err < 0) {
			fprintf(stderr, "cannot poll the ring buffer: %d\n", err);
			break;
		}
	}
cleanup:
	bpf_buffer__free(rb);
	@NAME@_bpf__destroy(skel);
	return err < 0 ? 1 : 0;
}
