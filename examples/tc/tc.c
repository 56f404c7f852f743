// SPDX-License-Identifier: MIT
/* tc: wasm-bpf guest printing, every interval, how many packets and bytes
 * passed an interface's ingress or egress (tc classifier).
 * Usage: tc [-i SECONDS] [-c COUNT] [-h] [IFNAME[:ingress|:egress]]   (default lo) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wasm_bpf.h"
#include "tc.h"
#include "tc.skel.h" /* tc_bpf_obj[], tc_bpf_obj_len */

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Count packets and bytes through a network interface (tc).\n"
		"\n"
		"USAGE: %s [-i SECONDS] [-c COUNT] [-h] [IFNAME[:ingress|:egress]]\n"
		"  IFNAME      interface (default: lo); the classifier goes on its\n"
		"              ingress, or on its egress with IFNAME:egress\n"
		"  -i SECONDS  print interval (default 1)\n"
		"  -c COUNT    exit after COUNT intervals (default: until Ctrl-C)\n"
		"  -h          show this help\n",
		prog);
}

/* 1 <= value <= max, decimal */
static int positive(const char *s, long max, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	return !errno && end != s && !*end && *out > 0 && *out <= max;
}

static int on_sample(void *ctx, void *data, size_t size)
{
	(void)ctx, (void)data, (void)size;
	return 0;
}

static int print_counts(int map_fd)
{
	struct tc_count c;
	unsigned int key = 0;
	char ts[32];
	struct tm *tm;
	time_t t;
	int err;

	time(&t);
	tm = localtime(&t);
	if (!tm || !strftime(ts, sizeof(ts), "%H:%M:%S", tm))
		strcpy(ts, "??:??:??");
	err = bpf_map_lookup_elem(map_fd, &key, &c);
	if (err < 0)
		return err;
	printf("%-8s %12llu %14llu\n", ts, c.packets, c.bytes);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	long interval = 1, count = 0, n = 0;
	const char *ifname = "lo"; /* IFNAME[:ingress|:egress] */
	struct bpf_buffer *rb = NULL;
	struct bpf_object *obj;
	int opt, map_fd, err = 0;

	while ((opt = getopt(argc, argv, "i:c:h")) != -1) {
		switch (opt) {
		case 'i':
			if (!positive(optarg, 86400, &interval)) {
				fprintf(stderr, "Invalid interval: %s\n", optarg);
				usage(stderr, argv[0]);
				return 1;
			}
			break;
		case 'c':
			if (!positive(optarg, 1000000000L, &count)) {
				fprintf(stderr, "Invalid count: %s\n", optarg);
				usage(stderr, argv[0]);
				return 1;
			}
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			usage(stderr, argv[0]);
			return 1;
		}
	}
	if (optind < argc)
		ifname = argv[optind++];
	if (optind < argc) {
		usage(stderr, argv[0]);
		return 1;
	}

	obj = wasm_bpf_object_load(tc_bpf_obj, tc_bpf_obj_len);
	if (!obj) {
		fprintf(stderr, "Failed to open and load BPF object\n");
		return 1;
	}
	err = wasm_bpf_attach_program(obj, "tc_count", ifname);
	if (err < 0) {
		fprintf(stderr, "Failed to attach tc_count to %s: %d\n",
			ifname, err);
		goto cleanup;
	}
	map_fd = wasm_bpf_map_fd(obj, "counts");
	if (map_fd < 0) {
		err = map_fd;
		fprintf(stderr, "Failed to find map counts: %d\n", err);
		goto cleanup;
	}
	rb = bpf_buffer__open_sized(obj, "rb", on_sample, NULL, 64);
	if (!rb) {
		err = -errno;
		fprintf(stderr, "Failed to open ring buffer: %d\n", err);
		goto cleanup;
	}

	printf("Counting packets through %s every %lds (Ctrl-C to stop)\n",
	       ifname, interval);
	printf("%-8s %12s %14s\n", "TIME", "PACKETS", "BYTES");
	fflush(stdout);
	for (;;) {
		/* nothing is ever submitted: the poll is the interval timer */
		err = bpf_buffer__poll(rb, (int)(interval * 1000));
		if (err == -EINTR) { /* Ctrl-C / SIGTERM: clean shutdown */
			err = 0;
			break;
		}
		if (err < 0) {
			fprintf(stderr, "Error polling ring buffer: %d\n", err);
			break;
		}
		err = print_counts(map_fd);
		if (err < 0) {
			fprintf(stderr, "Error reading counts: %d\n", err);
			break;
		}
		if (count && ++n >= count)
			break;
	}

cleanup:
	bpf_buffer__free(rb);
	wasm_bpf_object_close(obj);
	return err < 0 ? 1 : 0;
}
