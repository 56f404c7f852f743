// SPDX-License-Identifier: MIT
/* sockops: wasm-bpf guest printing, every interval, how often each TCP
 * socket operation happened in a cgroup (sockops program).
 * Usage: sockops [-i SECONDS] [-c COUNT] [-h] [CGROUP]   (default /sys/fs/cgroup) */
#include <stdio.h>

#include "wasm_bpf.h"
#include "example_util.h" /* ../common: argument checks, poll loops */
#include "sockops.skel.h" /* sockops_bpf_obj[], sockops_bpf_obj_len */

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Count TCP socket operations of the processes in a cgroup.\n"
		"\n"
		"USAGE: %s [-i SECONDS] [-c COUNT] [-h] [CGROUP]\n"
		"  CGROUP      cgroup v2 directory (default: /sys/fs/cgroup; on a\n"
		"              hybrid hierarchy e.g. /sys/fs/cgroup/unified)\n"
		"  -i SECONDS  print interval (default 1)\n"
		"  -c COUNT    exit after COUNT intervals (default: until Ctrl-C)\n"
		"  -h          show this help\n",
		prog);
}

#define MAX_OPS 16

/* BPF_SOCK_OPS_* names, by number */
static const char *const op_names[MAX_OPS] = {
	"VOID", "TIMEOUT_INIT", "RWND_INIT", "TCP_CONNECT",
	"ACTIVE_ESTABLISHED", "PASSIVE_ESTABLISHED", "NEEDS_ECN", "BASE_RTT",
	"RTO", "RETRANS", "STATE", "TCP_LISTEN",
	"RTT", "PARSE_HDR_OPT", "HDR_OPT_LEN", "WRITE_HDR_OPT",
};

/* every interval: one line per operation seen so far */
static int print_counts(void *ctx)
{
	int map_fd = *(int *)ctx;
	char ts[32];
	unsigned long long v;
	unsigned int key;
	int err;

	example_time(ts, sizeof(ts));
	for (key = 0; key < MAX_OPS; key++) {
		err = bpf_map_lookup_elem(map_fd, &key, &v);
		if (err < 0) {
			fprintf(stderr, "Error reading op_count: %d\n", err);
			return err;
		}
		if (!v)
			continue;
		printf("%-8s %-20s %10llu\n", ts, op_names[key], v);
	}
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	const struct counting_example ex = {
		.obj = sockops_bpf_obj,
		.obj_len = sockops_bpf_obj_len,
		.prog = "sockops_count",
		.target = "/sys/fs/cgroup",
		.map = "op_count",
		.counting = "TCP socket operations in",
		.header = "TIME     OPERATION                 COUNT",
		.usage = usage,
		.print = print_counts,
	};

	return example_counting_main(argc, argv, &ex);
}
