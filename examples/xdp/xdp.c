// SPDX-License-Identifier: MIT
/* xdp: wasm-bpf guest printing, every interval, how many packets of each
 * IP protocol arrived on an interface (XDP program, all packets pass).
 * Usage: xdp [-i SECONDS] [-c COUNT] [-h] [IFNAME]   (default lo) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wasm_bpf.h"
#include "xdp.skel.h" /* xdp_bpf_obj[], xdp_bpf_obj_len */

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Count packets arriving on a network interface by IP protocol (XDP).\n"
		"\n"
		"USAGE: %s [-i SECONDS] [-c COUNT] [-h] [IFNAME]\n"
		"  IFNAME      interface to attach to (default: lo)\n"
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

static const char *proto_name(unsigned int p)
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

static int on_sample(void *ctx, void *data, size_t size)
{
	(void)ctx, (void)data, (void)size;
	return 0;
}

static int print_counts(int map_fd)
{
	char ts[32], name[24];
	unsigned long long v;
	unsigned int key;
	struct tm *tm;
	time_t t;
	int err;

	time(&t);
	tm = localtime(&t);
	if (!tm || !strftime(ts, sizeof(ts), "%H:%M:%S", tm))
		strcpy(ts, "??:??:??");
	for (key = 0; key < 256; key++) {
		err = bpf_map_lookup_elem(map_fd, &key, &v);
		if (err < 0)
			return err;
		if (!v)
			continue;
		snprintf(name, sizeof(name), "%s(%u)", proto_name(key), key);
		printf("%-8s %-12s %12llu\n", ts, name, v);
	}
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	long interval = 1, count = 0, n = 0;
	const char *ifname = "lo";
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

	obj = wasm_bpf_object_load(xdp_bpf_obj, xdp_bpf_obj_len);
	if (!obj) {
		fprintf(stderr, "Failed to open and load BPF object\n");
		return 1;
	}
	err = wasm_bpf_attach_program(obj, "xdp_count", ifname);
	if (err < 0) {
		fprintf(stderr, "Failed to attach xdp_count to %s: %d\n",
			ifname, err);
		goto cleanup;
	}
	map_fd = wasm_bpf_map_fd(obj, "proto_count");
	if (map_fd < 0) {
		err = map_fd;
		fprintf(stderr, "Failed to find map proto_count: %d\n", err);
		goto cleanup;
	}
	rb = bpf_buffer__open_sized(obj, "rb", on_sample, NULL, 64);
	if (!rb) {
		err = -errno;
		fprintf(stderr, "Failed to open ring buffer: %d\n", err);
		goto cleanup;
	}

	printf("Counting packets arriving on %s every %lds (Ctrl-C to stop)\n", ifname,
	       interval);
	printf("%-8s %-12s %12s\n", "TIME", "PROTOCOL", "PACKETS");
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
			fprintf(stderr, "Error reading proto_count: %d\n", err);
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
