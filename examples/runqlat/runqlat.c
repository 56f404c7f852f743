// SPDX-License-Identifier: MIT
/* runqlat: wasm-bpf guest printing a run queue latency histogram every
 * interval, read from the BPF array map `hist` by iterating its keys.
 * Usage: runqlat [-i SECS] [-c COUNT] [-p PID] [-h] */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wasm_bpf.h"
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

static int parse_pos(const char *s, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || *end || v <= 0)
		return -1;
	*out = v;
	return 0;
}

/* Never called: `tick` stays empty; polling it is the interruptible sleep. */
static int on_tick(void *ctx, void *data, size_t size)
{
	(void)ctx;
	(void)data;
	(void)size;
	return 0;
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

int main(int argc, char **argv)
{
	unsigned long long vals[MAX_SLOTS];
	long interval = 1, count = 0, pid = 0, done = 0;
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
			if (parse_pos(optarg, &interval) ||
			    interval > INT32_MAX / 1000) {
				fprintf(stderr, "Invalid interval: %s\n",
					optarg);
				usage(stderr, argv[0]);
				return 1;
			}
			break;
		case 'c':
			if (parse_pos(optarg, &count)) {
				fprintf(stderr, "Invalid count: %s\n", optarg);
				usage(stderr, argv[0]);
				return 1;
			}
			break;
		case 'p':
			if (parse_pos(optarg, &pid) || pid > INT32_MAX) {
				fprintf(stderr, "Invalid PID: %s\n", optarg);
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
	if (optind < argc) {
		usage(stderr, argv[0]);
		return 1;
	}

	targ_tgid = (int32_t)pid;
	err = wasm_bpf_set_global(runqlat_bpf_obj, runqlat_bpf_obj_len,
				  ".rodata", "targ_tgid", &targ_tgid,
				  sizeof(targ_tgid));
	if (err) {
		fprintf(stderr, "Failed to set targ_tgid: %d\n", err);
		return 1;
	}
	obj = wasm_bpf_object_load(runqlat_bpf_obj, runqlat_bpf_obj_len);
	if (!obj) {
		fprintf(stderr, "Failed to open and load BPF object\n");
		return 1;
	}
	for (i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		err = wasm_bpf_attach_program(obj, progs[i], NULL);
		if (err < 0) {
			fprintf(stderr, "Failed to attach %s: %d\n", progs[i],
				err);
			goto cleanup;
		}
	}
	hist_fd = wasm_bpf_map_fd(obj, "hist");
	if (hist_fd < 0) {
		err = hist_fd;
		fprintf(stderr, "Failed to find map hist: %d\n", err);
		goto cleanup;
	}
	tick = bpf_buffer__open_sized(obj, "tick", on_tick, NULL, 64);
	if (!tick) {
		err = -errno;
		fprintf(stderr, "Failed to open ring buffer tick: %d\n", err);
		goto cleanup;
	}

	printf("Tracing run queue latency... Hit Ctrl-C to end.\n");
	fflush(stdout);

	for (;;) {
		char ts[32];
		struct tm *tm;
		time_t t;

		/* the interval "sleep": an empty ring buffer polled with the
		 * interval as timeout, so Ctrl-C ends it with -EINTR */
		err = bpf_buffer__poll(tick, (int)(interval * 1000));
		if (err == -EINTR) {
			err = 0;
			break;
		}
		if (err < 0) {
			fprintf(stderr, "Error polling ring buffer: %d\n", err);
			break;
		}
		err = read_and_clear(hist_fd, vals);
		if (err < 0) {
			fprintf(stderr, "Failed to read map hist: %d\n", err);
			break;
		}
		time(&t);
		tm = localtime(&t);
		if (!tm || !strftime(ts, sizeof(ts), "%H:%M:%S", tm))
			strcpy(ts, "??:??:??");
		printf("\n%s\n", ts);
		print_log2_hist(vals, MAX_SLOTS, "usecs");
		fflush(stdout);
		if (count && ++done >= count)
			break;
	}

cleanup:
	bpf_buffer__free(tick);
	wasm_bpf_object_close(obj);
	return err < 0 ? 1 : 0;
}
