// SPDX-License-Identifier: MIT
/* xdp: wasm-bpf guest printing, every interval, how many packets of each
 * IP protocol arrived on an interface (XDP program, all packets pass).
 * Usage: xdp [-i SECONDS] [-c COUNT] [-h] [IFNAME]   (default lo) */
#include <stdio.h>

#include "wasm_bpf.h"
#include "example_util.h" /* ../common: argument checks, poll loops */
#include "proto_counter.h" /* ../common: the counter shared with sockfilter */
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

int main(int argc, char **argv)
{
	const struct counting_example ex = {
		.obj = xdp_bpf_obj,
		.obj_len = xdp_bpf_obj_len,
		.prog = "xdp_count",
		.target = "lo",
		.map = "proto_count",
		.counting = "packets arriving on",
		.header = "TIME     PROTOCOL          PACKETS",
		.usage = usage,
		.print = proto_counter_print,
	};

	return example_counting_main(argc, argv, &ex);
}
