/* trapcb PID MODE: the sample callback traps (MODE "trap", default) or
 * calls exit(7) (MODE "exit"). See README.md. */
#include "guest.h"
#include "ringbuf.skel.h"

static int exit_mode;

static int on_sample(void *ctx, void *data, size_t size)
{
	(void)ctx, (void)data, (void)size;
	if (exit_mode)
		exit(7);
	__builtin_trap();
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_buffer *buf;

	set_target_pid(ringbuf_bpf_obj, ringbuf_bpf_obj_len,
		       argc > 1 ? argv[1] : NULL);
	exit_mode = argc > 2 && strcmp(argv[2], "exit") == 0;
	obj = load_attach(ringbuf_bpf_obj, ringbuf_bpf_obj_len);
	buf = bpf_buffer__open(obj, "rb", on_sample, NULL);
	if (!buf)
		fail("buffer_open", -errno);
	say("attached");
	poll_until(buf, NULL, 0);
	bpf_buffer__free(buf);
	wasm_bpf_object_close(obj);
	return 0;
}
