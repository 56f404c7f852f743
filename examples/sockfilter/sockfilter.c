// SPDX-License-Identifier: MIT
/* sockfilter: wasm-bpf guest printing, every interval, how many packets of
 * each IP protocol were seen on an interface (socket filter program).
 * Usage: sockfilter [-i SECONDS] [-c COUNT] [-h] [IFNAME]   (default lo) */
#include <stdio.h>

#include "wasm_bpf.h"
#include "example_util.h" /* ../common: argument checks, poll loops */
#include "proto_counter.h" /* ../common: the counter shared with xdp */
#include "sockfilter.skel.h" /* sockfilter_bpf_obj[], sockfilter_bpf_obj_len */

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Count packets by IP protocol on a network interface.\n"
		"\n"
		"USAGE: %s [-i SECONDS] [-c COUNT] [-h] [IFNAME]\n"
		"  IFNAME      interface to watch (default: lo); the runner opens\n"
		"              a raw packet socket on it and attaches the filter\n"
		"  -i SECONDS  print interval (default 1)\n"
		"  -c COUNT    exit after COUNT intervals (default: until Ctrl-C)\n"
		"  -h          show this help\n",
		prog);
}

int main(int argc, char **argv)
{
	const struct counting_example ex = {
		.obj = sockfilter_bpf_obj,
		.obj_len = sockfilter_bpf_obj_len,
		.prog = "count_packets",
		.target = "lo",
		.map = "proto_count",
		.counting = "packets on",
		.header = "TIME     PROTOCOL          PACKETS",
		.usage = usage,
		.print = proto_counter_print,
	};

	return example_counting_main(argc, argv, &ex);
}
