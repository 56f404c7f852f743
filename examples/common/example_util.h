/* SPDX-License-Identifier: MIT */
/*
 * example_util.h - the plumbing the C examples share (argument checks,
 * loading with an error message, the poll loops, timestamps), so that each
 * example's .c file shows only what is particular to its BPF program.
 *
 * Not part of the SDK: guests outside examples/ only need "wasm_bpf.h".
 * examples/common.mk puts this directory on the include path.
 *
 * Error messages go to stderr; every function that can fail returns a
 * negative errno (or NULL) after reporting it, unless said otherwise.
 */
#ifndef EXAMPLE_UTIL_H
#define EXAMPLE_UTIL_H

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wasm_bpf.h"

/* An example's usage(): prints its help to `f`. */
typedef void (*example_usage_fn)(FILE *f, const char *prog);

/* *out = s when s is a whole number 1..max in `base` (0: C syntax, so
 * 0x10 and 010 too; 10: decimal only). Returns 0, or -1 leaving *out. */
static inline int example_parse_long(const char *s, int base, long max,
				     long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, base);
	if (errno || end == s || *end || v <= 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Report a bad argument: "Invalid WHAT: ARG", then the usage, on stderr.
 * Returns 1, the exit status. */
static inline int example_invalid(example_usage_fn usage, const char *prog,
				  const char *what, const char *arg)
{
	fprintf(stderr, "Invalid %s: %s\n", what, arg);
	usage(stderr, prog);
	return 1;
}

/* The -h option (help on stdout, status 0) and any unknown option (usage
 * on stderr, status 1) of getopt() option `opt`. Returns the exit status. */
static inline int example_help_or_usage(example_usage_fn usage,
					const char *prog, int opt)
{
	usage(opt == 'h' ? stdout : stderr, prog);
	return opt == 'h' ? 0 : 1;
}

/*
 * Command line of the examples that print counters every interval:
 *     PROG [-i SECONDS] [-c COUNT] [-h] [TARGET]
 * -i: 1..86400 (decimal), -c: 1..10^9 (0, the default: no limit); TARGET
 * replaces *target when given. Returns -1 to go on, else the exit status.
 */
static inline int example_interval_args(int argc, char **argv,
					example_usage_fn usage,
					long *interval, long *count,
					const char **target)
{
	int opt;

	while ((opt = getopt(argc, argv, "i:c:h")) != -1) {
		switch (opt) {
		case 'i':
			if (example_parse_long(optarg, 10, 86400, interval))
				return example_invalid(usage, argv[0],
						       "interval", optarg);
			break;
		case 'c':
			if (example_parse_long(optarg, 10, 1000000000L, count))
				return example_invalid(usage, argv[0], "count",
						       optarg);
			break;
		default:
			return example_help_or_usage(usage, argv[0], opt);
		}
	}
	if (optind < argc)
		*target = argv[optind++];
	if (optind < argc) {
		usage(stderr, argv[0]);
		return 1;
	}
	return -1;
}

/* wasm_bpf_set_global() of `symbol` in .rodata (a `const volatile` knob of
 * the BPF program), before loading; reports a failure. Returns 0 or < 0. */
static inline int example_set_rodata(void *elf, size_t elf_size,
				     const char *symbol, const void *value,
				     size_t size)
{
	int err = wasm_bpf_set_global(elf, elf_size, ".rodata", symbol, value,
				      size);

	if (err)
		fprintf(stderr, "Failed to set %s: %d\n", symbol, err);
	return err;
}

/* wasm_bpf_object_load(), reporting a failure. */
static inline struct bpf_object *example_load(const void *buf, size_t sz)
{
	struct bpf_object *obj = wasm_bpf_object_load(buf, sz);

	if (!obj)
		fprintf(stderr, "Failed to open and load BPF object\n");
	return obj;
}

/* wasm_bpf_map_fd(), reporting a failure. */
static inline int example_map_fd(struct bpf_object *obj, const char *name)
{
	int fd = wasm_bpf_map_fd(obj, name);

	if (fd < 0)
		fprintf(stderr, "Failed to find map %s: %d\n", name, fd);
	return fd;
}

/* bpf_buffer__open(), reporting a failure; *err = -errno then. */
static inline struct bpf_buffer *example_open_buffer(struct bpf_object *obj, const char *map,
						     bpf_buffer_sample_fn cb, int *err)
{
	struct bpf_buffer *b = bpf_buffer__open(obj, map, cb, NULL);

	if (!b) {
		*err = -errno;
		fprintf(stderr, "Failed to create the buffer %s: %d\n", map, *err);
	}
	return b;
}

/* Sample callback of a buffer that nothing is submitted to (one only
 * polled as an interruptible sleep, see wasm_bpf_sleep_ms()). */
static inline int example_no_sample(void *ctx, void *data, size_t size)
{
	(void)ctx, (void)data, (void)size;
	return 0;
}

/* Call tick(ctx) every `interval` seconds, sleeping on the idle buffer
 * `idle`, until it was called `count` times (0: no limit) or a stop was
 * requested. tick() reports its own errors. Returns 0 or a negative errno. */
static inline int example_every_interval(struct bpf_buffer *idle,
					 long interval, long count,
					 int (*tick)(void *ctx), void *ctx)
{
	long n = 0;
	int err;

	for (;;) {
		err = wasm_bpf_sleep_ms(idle, (int)(interval * 1000));
		if (err == -EINTR) /* Ctrl-C / SIGTERM: clean shutdown */
			return 0;
		if (err < 0) {
			fprintf(stderr, "Error polling ring buffer: %d\n", err);
			return err;
		}
		err = tick(ctx);
		if (err < 0)
			return err;
		if (count && ++n >= count)
			return 0;
	}
}

/* Deliver the samples of `b` to its callback, polling every 100 ms, until
 * *seen reaches max (max 0: no limit, and seen may be NULL) or a stop was
 * requested. Returns 0 when max was reached, -EINTR on a stop request
 * (Ctrl-C / SIGTERM), or another negative errno after reporting
 * "Error polling KIND buffer: ERR". */
static inline int example_poll_events(struct bpf_buffer *b, const char *kind,
				      const long *seen, long max)
{
	int err;

	while (!max || *seen < max) {
		err = bpf_buffer__poll(b, 100 /* timeout, ms */);
		if (err == -EINTR)
			return err;
		if (err < 0) {
			fprintf(stderr, "Error polling %s buffer: %d\n", kind,
				err);
			return err;
		}
	}
	return 0;
}

/* Name of IP protocol number p ("proto" if not a common one). */
static inline const char *example_ip_proto_name(unsigned int p)
{
	switch (p) {
	case 1: return "ICMP";
	case 2: return "IGMP";
	case 6: return "TCP";
	case 17: return "UDP";
	case 47: return "GRE";
	case 58: return "ICMPv6";
	case 132: return "SCTP";
	default: return "proto";
	}
}

/* The local time as HH:MM:SS ("??:??:??" if unknown) in ts[size]. */
static inline const char *example_time(char *ts, size_t size)
{
	struct tm *tm;
	time_t t;

	time(&t);
	tm = localtime(&t);
	if (!tm || !strftime(ts, size, "%H:%M:%S", tm))
		snprintf(ts, size, "??:??:??");
	return ts;
}

/* A counting example: attach one program to a target named on the command
 * line ([-i SECONDS] [-c COUNT] [-h] [TARGET]), then every interval let
 * `print` read one map (its fd is print's argument). sockfilter, xdp, tc and
 * sockops are this with their own program, map and printer. */
struct counting_example {
	unsigned char *obj;   /* the embedded BPF object */
	unsigned int obj_len;
	const char *prog;     /* the program attached to the target */
	const char *target;   /* default target: interface, cgroup directory */
	const char *map;      /* the map `print` reads */
	const char *counting; /* banner: "Counting <counting> <target> every ..." */
	const char *header;   /* column header line */
	void (*usage)(FILE *f, const char *prog);
	int (*print)(void *map_fd);
};

static inline int example_counting_main(int argc, char **argv,
					const struct counting_example *ex)
{
	long interval = 1, count = 0;
	const char *target = ex->target;
	struct bpf_buffer *rb = NULL;
	struct bpf_object *obj;
	int map_fd, err;

	err = example_interval_args(argc, argv, ex->usage, &interval, &count,
				    &target);
	if (err >= 0)
		return err;

	obj = example_load(ex->obj, ex->obj_len);
	if (!obj)
		return 1;
	err = wasm_bpf_attach_program(obj, ex->prog, target);
	if (err < 0) {
		fprintf(stderr, "Failed to attach %s to %s: %d\n", ex->prog,
			target, err);
		goto cleanup;
	}
	map_fd = example_map_fd(obj, ex->map);
	if (map_fd < 0) {
		err = map_fd;
		goto cleanup;
	}
	/* nothing is ever submitted to rb: polling it is the interval timer */
	rb = bpf_buffer__open_sized(obj, "rb", example_no_sample, NULL, 64);
	if (!rb) {
		err = -errno;
		fprintf(stderr, "Failed to open ring buffer: %d\n", err);
		goto cleanup;
	}

	printf("Counting %s %s every %lds (Ctrl-C to stop)\n", ex->counting,
	       target, interval);
	printf("%s\n", ex->header);
	fflush(stdout);
	err = example_every_interval(rb, interval, count, ex->print, &map_fd);

cleanup:
	bpf_buffer__free(rb);
	wasm_bpf_object_close(obj);
	return err < 0 ? 1 : 0;
}

#endif /* EXAMPLE_UTIL_H */
