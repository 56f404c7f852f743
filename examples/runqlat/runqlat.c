// SPDX-License-Identifier: MIT
/* runqlat: wasm-bpf guest printing a run queue latency histogram every
 * interval, read from the BPF array map `hist` by iterating its keys.
 * Usage: runqlat [-i SECS] [-c COUNT] [-p PID] [-h] */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "wasm_bpf.h"
#include "example_util.h" /* ../common: argument checks, poll loops */
#include "runqlat.h"
#include "runqlat.skel.h" /* runqlat_bpf_obj[], runqlat_bpf_obj_len */

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Summarize run queue (scheduler) latency as a histogram.\n"
		"\n"
		"USAGE: %s [-i SECS] [-c COUNT] [-p PID] [-h]\n"
		"  -i SECS   print a histogram every SECS seconds (default 1)\n"
		"  -c COUNT  exit (status 0) after COUNT histograms (default: run\n"
		"            until Ctrl-C)\n"
		"  -p PID    only trace the threads of process PID\n"
		"  -h        show this help\n",
		prog);
}

static void print_stars(unsigned long long val, unsigned long long max,
			int width)
{
	int i, n = max ? (int)(val * width / max) : 0;

	if (n > width)
		n = width;
	for (i = 0; i < n; i++)
		putchar('*');
	for (; i < width; i++)
		putchar(' ');
	if (val > max)
		putchar('+');
}

/* bcc's print_log2_hist */
static void print_log2_hist(const unsigned long long *vals, int n,
			    const char *unit)
{
	unsigned long long max = 0, low, high;
	int i, idx_max = -1;

	for (i = 0; i < n; i++) {
		if (vals[i] > 0)
			idx_max = i;
		if (vals[i] > max)
			max = vals[i];
	}
	if (idx_max < 0) {
		printf("(no events)\n");
		return;
	}
	printf("%*s%-*s : count    distribution\n", idx_max <= 32 ? 5 : 15,
	       "", idx_max <= 32 ? 19 : 29, unit);
	for (i = 0; i <= idx_max; i++) {
		low = (1ULL << (i + 1)) >> 1;
		high = (1ULL << (i + 1)) - 1;
		if (low == high)
			low -= 1;
		printf(idx_max <= 32 ? "%10llu -> %-10llu : %-8llu |"
				     : "%20llu -> %-20llu : %-8llu |",
		       low, high, vals[i]);
		print_stars(vals[i], max, idx_max <= 32 ? 40 : 20);
		printf("|\n");
	}
}

/* Read every slot by walking the map's keys, then zero it. */
static int read_and_clear(int fd, unsigned long long *vals)
{
	uint32_t key, next;
	uint32_t *prev = NULL;
	unsigned long long v, zero = 0;
	int err;

	memset(vals, 0, MAX_SLOTS * sizeof(*vals));
	while ((err = bpf_map_get_next_key(fd, prev, &next)) == 0) {
		err = bpf_map_lookup_elem(fd, &next, &v);
		if (err < 0)
			return err;
		if (next < MAX_SLOTS)
			vals[next] = v;
		err = bpf_map_update_elem(fd, &next, &zero, BPF_ANY);
		if (err < 0)
			return err;
		key = next;
		prev = &key;
	}
	return err == -ENOENT ? 0 : err;
}

/* every interval: read, print and clear the histogram in map fd *ctx */
static int print_hist(void *ctx)
{
	unsigned long long vals[MAX_SLOTS];
	char ts[32];
	int err;

	err = read_and_clear(*(int *)ctx, vals);
	if (err < 0) {
		fprintf(stderr, "Failed to read map hist: %d\n", err);
		return err;
	}
	printf("\n%s\n", example_time(ts, sizeof(ts)));
	print_log2_hist(vals, MAX_SLOTS, "usecs");
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	long interval = 1, count = 0, pid = 0;
	struct bpf_buffer *tick = NULL;
	struct bpf_object *obj;
	int32_t targ_tgid;
	int opt, err = 0, hist_fd;
	const char *progs[] = { "handle_sched_wakeup",
				"handle_sched_wakeup_new",
				"handle_sched_switch" };
	unsigned i;

	while ((opt = getopt(argc, argv, "i:c:p:h")) != -1) {
		switch (opt) {
		case 'i':
			if (example_parse_long(optarg, 0, INT32_MAX / 1000,
					       &interval))
				return example_invalid(usage, argv[0],
						       "interval", optarg);
			break;
		case 'c':
			if (example_parse_long(optarg, 0, LONG_MAX, &count))
				return example_invalid(usage, argv[0], "count",
						       optarg);
			break;
		case 'p':
			if (example_parse_long(optarg, 0, INT32_MAX, &pid))
				return example_invalid(usage, argv[0], "PID",
						       optarg);
			break;
		default:
			return example_help_or_usage(usage, argv[0], opt);
		}
	}
	if (optind < argc) {
		usage(stderr, argv[0]);
		return 1;
	}

	targ_tgid = (int32_t)pid;
	if (example_set_rodata(runqlat_bpf_obj, runqlat_bpf_obj_len, "targ_tgid",
			       &targ_tgid, sizeof(targ_tgid)))
		return 1;
	obj = example_load(runqlat_bpf_obj, runqlat_bpf_obj_len);
	if (!obj)
		return 1;
	for (i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		err = wasm_bpf_attach_program(obj, progs[i], NULL);
		if (err < 0) {
			fprintf(stderr, "Failed to attach %s: %d\n", progs[i],
				err);
			goto cleanup;
		}
	}
	hist_fd = example_map_fd(obj, "hist");
	if (hist_fd < 0) {
		err = hist_fd;
		goto cleanup;
	}
	/* `tick` stays empty: polling it with the interval as timeout is the
	 * interval "sleep", which Ctrl-C ends */
	tick = bpf_buffer__open_sized(obj, "tick", example_no_sample, NULL, 64);
	if (!tick) {
		err = -errno;
		fprintf(stderr, "Failed to open ring buffer tick: %d\n", err);
		goto cleanup;
	}

	printf("Tracing run queue latency... Hit Ctrl-C to end.\n");
	fflush(stdout);

	err = example_every_interval(tick, interval, count, print_hist,
				     &hist_fd);

cleanup:
	bpf_buffer__free(tick);
	wasm_bpf_object_close(obj);
	return err < 0 ? 1 : 0;
}
