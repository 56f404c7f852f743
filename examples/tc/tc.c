// SPDX-License-Identifier: MIT
/* tc: wasm-bpf guest printing, every interval, how many packets and bytes
 * passed an interface's ingress or egress (tc classifier).
 * Usage: tc [-i SECONDS] [-c COUNT] [-h] [IFNAME[:ingress|:egress]]   (default lo) */
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
	const struct counting_example ex = {
		.obj = tc_bpf_obj,
		.obj_len = tc_bpf_obj_len,
		.prog = "tc_count",
		.target = "lo",
		.map = "counts",
		.counting = "packets through",
		.header = "TIME          PACKETS          BYTES",
		.usage = usage,
		.print = print_counts,
	};

	return example_counting_main(argc, argv, &ex);
}
