/* tworing: two ring buffers polled in turn, each with its own callback.
 * Usage: tworing PID [TIMEOUT_MS]  (embeds tworing.bpf.o)
 * getppid() of PID goes to rb_a, getpgid() to rb_b. Polls rb_a, then rb_b,
 * then rb_a again ... (TIMEOUT_MS each, default 50). Says "attached", then
 * per record "cb=a tag=<tag> seq=<seq>" from rb_a's callback or "cb=b ..."
 * from rb_b's; at -EINTR "interrupted", then "total a=N b=M" (records each
 * callback got) and "polled a=N b=M" (the sum of each ring's poll returns),
 * exit 0. */
#include "guest.h"
#include "sample.h"
#include "tworing.skel.h"

static int got_a, got_b;

static void show(const char *cb, const void *data, size_t size)
{
	const struct test_sample *s = data;
	char tag[sizeof(s->tag) + 1];

	if (size < sizeof(*s)) {
		say("cb=%s short size=%zu", cb, size);
		return;
	}
	memcpy(tag, s->tag, sizeof(s->tag));
	tag[sizeof(s->tag)] = '\0';
	say("cb=%s tag=%s seq=%u", cb, tag, s->seq);
}

static int on_a(void *ctx, void *data, size_t size)
{
	(void)ctx;
	got_a++;
	show("a", data, size);
	return 0;
}

static int on_b(void *ctx, void *data, size_t size)
{
	(void)ctx;
	got_b++;
	show("b", data, size);
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_buffer *bufs[2];
	long long polled[2] = {0, 0};
	int timeout = argc > 2 ? atoi(argv[2]) : 50, err, i;

	set_target_pid(tworing_bpf_obj, tworing_bpf_obj_len, argc > 1 ? argv[1] : NULL);
	obj = load_attach(tworing_bpf_obj, tworing_bpf_obj_len);
	err = wasm_bpf_attach_program(obj, "handle_getpgid", NULL);
	if (err < 0)
		fail("attach", err);
	bufs[0] = bpf_buffer__open(obj, "rb_a", on_a, NULL);
	bufs[1] = bpf_buffer__open(obj, "rb_b", on_b, NULL);
	if (!bufs[0] || !bufs[1])
		fail("buffer_open", -errno);
	say("attached");
	for (i = 0;; i ^= 1) {
		err = bpf_buffer__poll(bufs[i], timeout);
		if (err == -EINTR)
			break;
		if (err < 0)
			fail("poll", err);
		polled[i] += err;
	}
	say("interrupted");
	say("total a=%d b=%d", got_a, got_b);
	say("polled a=%lld b=%lld", polled[0], polled[1]);
	bpf_buffer__free(bufs[0]);
	bpf_buffer__free(bufs[1]);
	err = wasm_bpf_object_close(obj);
	if (err)
		fail("close", err);
	return 0;
}
