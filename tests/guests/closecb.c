/* closecb PID [perf]: the sample callback closes the BPF object whose buffer
 * is being polled (its ring, or with "perf" its perf buffers, are unmapped
 * while the host is still inside that poll). Says "attached"; after the poll
 * that delivered: "poll ret=R", then exits 0. */
#include "guest.h"
#include "perf.skel.h"
#include "ringbuf.skel.h"

static struct bpf_object *obj;

static int on_sample(void *ctx, void *data, size_t size)
{
	(void)ctx, (void)data, (void)size;
	if (obj) {
		wasm_bpf_object_close(obj);
		obj = NULL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int perf = argc > 2 && !strcmp(argv[2], "perf");
	unsigned char *elf = perf ? perf_bpf_obj : ringbuf_bpf_obj;
	size_t len = perf ? perf_bpf_obj_len : ringbuf_bpf_obj_len;
	struct bpf_buffer *buf;
	int err;

	set_target_pid(elf, len, argc > 1 ? argv[1] : NULL);
	obj = load_attach(elf, len);
	buf = open_attached(obj, perf ? "events" : "rb", on_sample);
	do
		err = bpf_buffer__poll(buf, 100);
	while (err == 0 && obj);
	say("poll ret=%d", err);
	return 0;
}
