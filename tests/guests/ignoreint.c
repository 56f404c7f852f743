/* ignoreint: attach, print "attached", poll forever ignoring every error,
 * -EINTR included. Prints "ignored <err>" once, for the first error. */
#include "guest.h"
#include "ringbuf.skel.h"

static int on_sample(void *ctx, void *data, size_t size)
{
	(void)ctx, (void)data, (void)size;
	return 0;
}

int main(void)
{
	struct bpf_object *obj;
	struct bpf_buffer *buf;
	int err, reported = 0;

	/* a pid that never exists: the buffer stays empty */
	set_target_pid(ringbuf_bpf_obj, ringbuf_bpf_obj_len, "0xffffffff");
	obj = load_attach(ringbuf_bpf_obj, ringbuf_bpf_obj_len);
	buf = open_attached(obj, "rb", on_sample);
	for (;;) {
		err = bpf_buffer__poll(buf, 100);
		if (err < 0 && !reported) {
			say("ignored %d", err);
			reported = 1;
		}
	}
	return 0;
}
