/* procguest: hands data to processor components (wasm_bpf_call, --filter).
 *   procguest filter PID N   prints "sample seq=S tag=T size=Z" for each of
 *                            N samples of rb (tgid PID), then "got N"
 *   procguest call NAME [CAP]
 *                            reads stdin to EOF, calls processor NAME with it
 *                            and an out buffer of CAP bytes (default 1 MiB),
 *                            writes the min(ret, CAP) answer bytes to stdout
 *                            and "ret R" to stderr
 *   procguest calls NAME COUNT
 *                            COUNT calls of NAME with a 64-byte event, then
 *                            "ret R ns_per_call T" on stdout */
#include <time.h>
#include <unistd.h>
#include "guest.h"
#include "sample.h"
#include "ringbuf.skel.h"

static int wanted, seen;

static int on_sample(void *ctx, void *data, size_t size)
{
	const struct test_sample *s = data;
	char tag[sizeof(s->tag) + 1];

	(void)ctx;
	if (seen >= wanted || size < sizeof(*s))
		return 0;
	memcpy(tag, s->tag, sizeof(s->tag));
	tag[sizeof(s->tag)] = '\0';
	say("sample seq=%u tag=%s size=%zu", s->seq, tag, size);
	seen++;
	return 0;
}

static int filter(const char *pid, int n)
{
	struct bpf_object *obj;
	struct bpf_buffer *buf;

	wanted = n;
	set_target_pid(ringbuf_bpf_obj, ringbuf_bpf_obj_len, pid);
	obj = load_attach(ringbuf_bpf_obj, ringbuf_bpf_obj_len);
	buf = bpf_buffer__open(obj, "rb", on_sample, NULL);
	if (!buf)
		fail("buffer_open", -errno);
	say("attached");
	poll_until(buf, &seen, wanted);
	if (seen >= wanted)
		say("got %d", seen);
	bpf_buffer__free(buf);
	wasm_bpf_object_close(obj);
	return 0;
}

static int call(const char *name, size_t cap)
{
	size_t len = 0, size = 4096;
	char *in = malloc(size), *out = malloc(cap ? cap : 1);
	ssize_t n;
	int32_t ret;

	while (in && out && (n = read(0, in + len, size - len)) > 0) {
		len += (size_t)n;
		if (len == size && !(in = realloc(in, size *= 2)))
			break;
	}
	if (!in || !out)
		fail("malloc", 0);
	ret = wasm_bpf_call(name, in, (int32_t)len, out, (int32_t)cap);
	if (ret > 0 && write(1, out, (size_t)ret < cap ? (size_t)ret : cap) < 0)
		fail("write", -errno);
	fprintf(stderr, "ret %d\n", ret);
	return 0;
}

static int calls(const char *name, long count)
{
	unsigned char event[64], out[64];
	struct timespec t0, t1;
	int32_t ret = 0;
	long i;

	memset(event, 7, sizeof(event));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < count; i++)
		ret = wasm_bpf_call(name, event, sizeof(event), out, sizeof(out));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	say("ret %d ns_per_call %lld", ret,
	    ((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec)) / (count ? count : 1));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "filter"))
		return filter(argv[2], atoi(argv[3]));
	if (argc >= 3 && !strcmp(argv[1], "call"))
		return call(argv[2], argc > 3 ? strtoul(argv[3], NULL, 0) : 1 << 20);
	if (argc >= 4 && !strcmp(argv[1], "calls"))
		return calls(argv[2], atol(argv[3]));
	fprintf(stderr, "usage: procguest filter PID N | call NAME [CAP] | calls NAME COUNT\n");
	return 2;
}
