// SPDX-License-Identifier: MIT
/* tc: wasm-bpf guest printing, every interval, how many packets and bytes
 * passed an interface's ingress or egress (tc classifier).
 * Usage: tc [-i SECONDS] [-c COUNT] [-h] [IFNAME[:ingress|:egress]]   (default lo) */
#include <errno.h>
#include <stdio.h>

#include "wasm_bpf.h"
#include "example_util.h" /* ../common: argument checks, poll loops */
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

/* every interval: the totals so far */
static int print_counts(void *ctx)
{
	int map_fd = *(int *)ctx;
	struct tc_count c;
	unsigned int key = 0;
	char ts[32];
	int err;

	example_time(ts, sizeof(ts));
	err = bpf_map_lookup_elem(map_fd, &key, &c);
	if (err < 0) {
		fprintf(stderr, "Error reading counts: %d\n", err);
		return err;
	}
	printf("%-8s %12llu %14llu\n", ts, c.packets, c.bytes);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	long interval = 1, count = 0;
	const char *ifname = "lo"; /* IFNAME[:ingress|:egress] */
	struct bpf_buffer *rb = NULL;
	struct bpf_object *obj;
	int map_fd, err;

	err = example_interval_args(argc, argv, usage, &interval, &count,
				    &ifname);
	if (err >= 0)
		return err;

	obj = example_load(tc_bpf_obj, tc_bpf_obj_len);
	if (!obj)
		return 1;
	err = wasm_bpf_attach_program(obj, "tc_count", ifname);
	if (err < 0) {
		fprintf(stderr, "Failed to attach tc_count to %s: %d\n",
			ifname, err);
		goto cleanup;
	}
	map_fd = example_map_fd(obj, "counts");
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

	printf("Counting packets through %s every %lds (Ctrl-C to stop)\n",
	       ifname, interval);
	printf("%-8s %12s %14s\n", "TIME", "PACKETS", "BYTES");
	fflush(stdout);
	err = example_every_interval(rb, interval, count, print_counts, &map_fd);

cleanup:
	bpf_buffer__free(rb);
	wasm_bpf_object_close(obj);
	return err < 0 ? 1 : 0;
}
