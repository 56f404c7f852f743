/* procguest: hands data to processor components through wasm_bpf_call (no BPF).
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
	if (argc >= 3 && !strcmp(argv[1], "call"))
		return call(argv[2], argc > 3 ? strtoul(argv[3], NULL, 0) : 1 << 20);
	if (argc >= 4 && !strcmp(argv[1], "calls"))
		return calls(argv[2], atol(argv[3]));
	fprintf(stderr, "usage: procguest call NAME [CAP] | calls NAME COUNT\n");
	return 2;
}
