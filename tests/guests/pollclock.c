/* pollclock: ring-buffer polls timed by the guest (the coalescing tests,
 * --max-delivery-delay). Usage: pollclock PID TIMEOUT_MS
 * Says "attached", then per poll that delivered or was cut short:
 * "poll ret=R ms=M" (R: the poll's return, M: how long it took); stops at
 * -EINTR ("interrupted ms=M", then "received=N out_of_order=K": K records
 * whose seq did not follow the previous one's). */
#include <time.h>

#include "guest.h"
#include "ringbuf.skel.h"
#include "sample.h"

static unsigned int received, out_of_order, last_seq;

static int on_sample(void *ctx, void *data, size_t size)
{
	const struct test_sample *s = data;

	(void)ctx;
	if (size >= sizeof(*s)) {
		if (s->seq != last_seq + 1)
			out_of_order++;
		last_seq = s->seq;
	}
	received++;
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_buffer *buf;
	int timeout = argc > 2 ? atoi(argv[2]) : 100, err;

	set_target_pid(ringbuf_bpf_obj, ringbuf_bpf_obj_len, argc > 1 ? argv[1] : NULL);
	obj = load_attach(ringbuf_bpf_obj, ringbuf_bpf_obj_len);
	buf = open_attached(obj, "rb", on_sample);
	for (;;) {
		long long t0 = now_ms(), ms;

		err = bpf_buffer__poll(buf, timeout);
		ms = now_ms() - t0;
		if (err == -EINTR) {
			say("interrupted ms=%lld", ms);
			say("received=%u out_of_order=%u", received, out_of_order);
			break;
		}
		if (err < 0)
			fail("poll", err);
		say("poll ret=%d ms=%lld", err, ms);
	}
	bpf_buffer__free(buf);
	wasm_bpf_object_close(obj);
	return 0;
}
