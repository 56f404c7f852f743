/* Body of the perf, ringbuf and procfilter guests (see README.md). Before
 * including, define EV_OBJ (embedded object array), EV_OBJ_LEN and EV_MAP
 * (map name); EV_SHOW_SEQ prints each sample's seq instead of its pid. */
#include "guest.h"
#include "sample.h"

static int wanted = 3, seen;

static int on_sample(void *ctx, void *data, size_t size)
{
	const struct test_sample *s = data;
	char tag[sizeof(s->tag) + 1];

	(void)ctx;
	if (seen >= wanted)
		return 0; /* more arrived in the same poll: ignore */
	if (size < sizeof(*s)) {
		say("short sample size=%zu", size);
		return 0;
	}
	memcpy(tag, s->tag, sizeof(s->tag));
	tag[sizeof(s->tag)] = '\0';
#ifdef EV_SHOW_SEQ /* procfilter: which samples a filter let through */
	say("sample seq=%u tag=%s size=%zu", s->seq, tag, size);
#else
	say("sample pid=%u tag=%s size=%zu", s->pid, tag, size);
#endif
	seen++;
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_buffer *buf;
	int err;

	set_target_pid(EV_OBJ, EV_OBJ_LEN, argc > 1 ? argv[1] : NULL);
	if (argc > 2)
		wanted = atoi(argv[2]);
	obj = load_attach(EV_OBJ, EV_OBJ_LEN);
	buf = bpf_buffer__open(obj, EV_MAP, on_sample, NULL);
	if (!buf)
		fail("buffer_open", -errno);
	say("attached");
	poll_until(buf, &seen, wanted);
	if (seen >= wanted)
		say("got %d", seen);
	bpf_buffer__free(buf);
	err = wasm_bpf_object_close(obj);
	if (err)
		fail("close", err);
	return 0;
}
