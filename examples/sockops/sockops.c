// SPDX-License-Identifier: MIT
/* sockops: wasm-bpf guest printing, every interval, how often each TCP
 * socket operation happened in a cgroup (sockops program).
 * Usage: sockops [-i SECONDS] [-c COUNT] [-h] [CGROUP]   (default /sys/fs/cgroup) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wasm_bpf.h"
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

/* 1 <= value <= max, decimal */
static int positive(const char *s, long max, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	return !errno && end != s && !*end && *out > 0 && *out <= max;
}

#define MAX_OPS 16

/* BPF_SOCK_OPS_* names, by number */
static const char *const op_names[MAX_OPS] = {
	"VOID", "TIMEOUT_INIT", "RWND_INIT", "TCP_CONNECT",
	"ACTIVE_ESTABLISHED", "PASSIVE_ESTABLISHED", "NEEDS_ECN", "BASE_RTT",
	"RTO", "RETRANS", "STATE", "TCP_LISTEN",
	"RTT", "PARSE_HDR_OPT", "HDR_OPT_LEN", "WRITE_HDR_OPT",
};

static int on_sample(void *ctx, void *data, size_t size)
{
	(void)ctx, (void)data, (void)size;
	return 0;
}

static int print_counts(int map_fd)
{
	char ts[32];
	unsigned long long v;
	unsigned int key;
	struct tm *tm;
	time_t t;
	int err;

	time(&t);
	tm = localtime(&t);
	if (!tm || !strftime(ts, sizeof(ts), "%H:%M:%S", tm))
		strcpy(ts, "??:??:??");
	for (key = 0; key < MAX_OPS; key++) {
		err = bpf_map_lookup_elem(map_fd, &key, &v);
		if (err < 0)
			return err;
		if (!v)
			continue;
		printf("%-8s %-20s %10llu\n", ts, op_names[key], v);
	}
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	long interval = 1, count = 0, n = 0;
	const char *cgroup = "/sys/fs/cgroup";
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
		cgroup = argv[optind++];
	if (optind < argc) {
		usage(stderr, argv[0]);
		return 1;
	}

	obj = wasm_bpf_object_load(sockops_bpf_obj, sockops_bpf_obj_len);
	if (!obj) {
		fprintf(stderr, "Failed to open and load BPF object\n");
		return 1;
	}
	err = wasm_bpf_attach_program(obj, "sockops_count", cgroup);
	if (err < 0) {
		fprintf(stderr, "Failed to attach sockops_count to %s: %d\n",
			cgroup, err);
		goto cleanup;
	}
	map_fd = wasm_bpf_map_fd(obj, "op_count");
	if (map_fd < 0) {
		err = map_fd;
		fprintf(stderr, "Failed to find map op_count: %d\n", err);
		goto cleanup;
	}
	rb = bpf_buffer__open_sized(obj, "rb", on_sample, NULL, 64);
	if (!rb) {
		err = -errno;
		fprintf(stderr, "Failed to open ring buffer: %d\n", err);
		goto cleanup;
	}

	printf("Counting TCP socket operations in %s every %lds (Ctrl-C to stop)\n",
	       cgroup, interval);
	printf("%-8s %-20s %10s\n", "TIME", "OPERATION", "COUNT");
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
			fprintf(stderr, "Error reading op_count: %d\n", err);
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
