// SPDX-License-Identifier: MIT
/* sockops: wasm-bpf guest printing, every interval, how often each TCP
 * socket operation happened in a cgroup (sockops program).
 * Usage: sockops [-i SECONDS] [-c COUNT] [-h] [CGROUP]   (default /sys/fs/cgroup) */
#include <errno.h>
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
	long interval = 1, count = 0;
	const char *cgroup = "/sys/fs/cgroup";
	struct bpf_buffer *rb = NULL;
	struct bpf_object *obj;
	int map_fd, err;

	err = example_interval_args(argc, argv, usage, &interval, &count,
				    &cgroup);
	if (err >= 0)
		return err;

	obj = example_load(sockops_bpf_obj, sockops_bpf_obj_len);
	if (!obj)
		return 1;
	err = wasm_bpf_attach_program(obj, "sockops_count", cgroup);
	if (err < 0) {
		fprintf(stderr, "Failed to attach sockops_count to %s: %d\n",
			cgroup, err);
		goto cleanup;
	}
	map_fd = example_map_fd(obj, "op_count");
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

	printf("Counting TCP socket operations in %s every %lds (Ctrl-C to stop)\n",
	       cgroup, interval);
	printf("%-8s %-20s %10s\n", "TIME", "OPERATION", "COUNT");
	fflush(stdout);
	err = example_every_interval(rb, interval, count, print_counts, &map_fd);

cleanup:
	bpf_buffer__free(rb);
	wasm_bpf_object_close(obj);
	return err < 0 ? 1 : 0;
}
