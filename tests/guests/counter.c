/* counter: load maps.bpf.o and attach handle_getppid (it increments arr[0] on
 * every getppid() of any process), print "attached", then wait until stopped:
 * polls an always-empty ring buffer so that a stop request (-EINTR) ends it.
 * On -EINTR prints "stopped", closes both objects and exits 0. */
#include "guest.h"
#include "maps.skel.h"
#include "ringbuf.skel.h"

static int on_sample(void *ctx, void *data, size_t size)
{
	(void)ctx, (void)data, (void)size;
	return 0;
}

int main(void)
{
	struct bpf_object *counter, *idle;
	struct bpf_buffer *buf;
	int err;

	counter = load_attach(maps_bpf_obj, maps_bpf_obj_len);
	set_target_pid(ringbuf_bpf_obj, ringbuf_bpf_obj_len, "0xffffffff");
	idle = wasm_bpf_object_load(ringbuf_bpf_obj, ringbuf_bpf_obj_len);
	if (!idle)
		fail("load", 0);
	buf = bpf_buffer__open(idle, "rb", on_sample, NULL);
	if (!buf)
		fail("buffer_open", -errno);
	say("attached");
	for (;;) {
		err = bpf_buffer__poll(buf, 1000);
		if (err == -EINTR)
			break;
		if (err < 0)
			fail("poll", err);
	}
	say("stopped");
	bpf_buffer__free(buf);
	wasm_bpf_object_close(idle);
	wasm_bpf_object_close(counter);
	return 0;
}
