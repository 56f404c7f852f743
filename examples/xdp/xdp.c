// SPDX-License-Identifier: MIT
/* xdp: wasm-bpf guest printing, every interval, how many packets of each
 * IP protocol arrived on an interface (XDP program, all packets pass).
 * Usage: xdp [-i SECONDS] [-c COUNT] [-h] [IFNAME]   (default lo) */
#include <errno.h>
#include <stdio.h>

#include "wasm_bpf.h"
#include "example_util.h" /* ../common: argument checks, poll loops */
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

/* every interval: one line per protocol seen so far */
static int print_counts(void *ctx)
{
	int map_fd = *(int *)ctx;
	char ts[32], name[24];
	unsigned long long v;
	unsigned int key;
	int err;

	example_time(ts, sizeof(ts));
	for (key = 0; key < 256; key++) {
		err = bpf_map_lookup_elem(map_fd, &key, &v);
		if (err < 0) {
			fprintf(stderr, "Error reading proto_count: %d\n", err);
			return err;
		}
		if (!v)
			continue;
		snprintf(name, sizeof(name), "%s(%u)", example_ip_proto_name(key), key);
		printf("%-8s %-12s %12llu\n", ts, name, v);
	}
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	long interval = 1, count = 0;
	const char *ifname = "lo";
	struct bpf_buffer *rb = NULL;
	struct bpf_object *obj;
	int map_fd, err;

	err = example_interval_args(argc, argv, usage, &interval, &count,
				    &ifname);
	if (err >= 0)
		return err;

	obj = example_load(xdp_bpf_obj, xdp_bpf_obj_len);
	if (!obj)
		return 1;
	err = wasm_bpf_attach_program(obj, "xdp_count", ifname);
	if (err < 0) {
		fprintf(stderr, "Failed to attach xdp_count to %s: %d\n",
			ifname, err);
		goto cleanup;
	}
	map_fd = example_map_fd(obj, "proto_count");
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

	printf("Counting packets arriving on %s every %lds (Ctrl-C to stop)\n", ifname,
	       interval);
	printf("%-8s %-12s %12s\n", "TIME", "PROTOCOL", "PACKETS");
	fflush(stdout);
	err = example_every_interval(rb, interval, count, print_counts, &map_fd);

cleanup:
	bpf_buffer__free(rb);
	wasm_bpf_object_close(obj);
	return err < 0 ? 1 : 0;
}
