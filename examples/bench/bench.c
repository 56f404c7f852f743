// SPDX-License-Identifier: MIT
/* bench: the wasm-bpf guest of `make bench` (see bench/README.md).
 *
 * Usage: bench [-p PID] [-n COUNT] [-i IDLE_MS] [-T TAI_OFF_NS] [-t POLL_MS]
 *              [-s N] [-w WALK_MS] ring|ring16|perf|mapwalk
 *   ring     attach handle_ring, poll the ring buffer `rb`
 *   ring16   attach handle_ring16, poll the 16 MiB ring buffer `rb16`
 *   perf     attach handle_perf, poll the perf buffer `pb`
 *   mapwalk  fill the 10,000-entry hash map `walk`, time next-key + lookup
 *   -p PID   the load generator's pid (.rodata target_pid)
 *   -n COUNT exit after COUNT records; -i IDLE_MS exit once no record came
 *            for IDLE_MS after the first one; otherwise run until stopped
 *   -s N     latency of every Nth record only (default: every record)
 * Prints "attached" once ready, then one JSON line when done. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wasm_bpf.h"
#include "bench_stats.h"
#include "bench.skel.h" /* bench_bpf_obj[], bench_bpf_obj_len */

static int on_record(void *ctx, void *data, size_t size)
{
	(void)ctx;
	bench_account(data, size);
	return 0;
}

static long long num(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 0);
	if (errno || end == s || *end) {
		fprintf(stderr, "bench: bad number %s\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	long long count = 0, idle_ms = 0, poll_ms = 100, walk_ms = 1000;
	unsigned int target_pid = 0;
	struct bpf_buffer *buf = NULL;
	struct bpf_object *obj;
	const char *mode;
	uint64_t polls = 0;
	int64_t last_activity = 0;
	int opt, err = 0, drops_fd, seqs_fd, ring;

	while ((opt = getopt(argc, argv, "p:n:i:T:t:w:s:h")) != -1) {
		switch (opt) {
		case 'p': target_pid = (unsigned int)num(optarg); break;
		case 'n': count = num(optarg); break;
		case 'i': idle_ms = num(optarg); break;
		case 'T': bs.tai_off_ns = num(optarg); break;
		case 't': poll_ms = num(optarg); break;
		case 's': bs.sample_every = (uint64_t)atoll(optarg); break;
		case 'w': walk_ms = num(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-p PID] [-n COUNT] [-i IDLE_MS] "
					"[-T TAI_OFF_NS] [-t POLL_MS] [-s N] [-w WALK_MS] "
					"ring|ring16|perf|mapwalk\n", argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "bench: one mode expected: ring|ring16|perf|mapwalk\n");
		return 2;
	}
	mode = argv[optind];
	if (strcmp(mode, "ring") && strcmp(mode, "ring16") && strcmp(mode, "perf") &&
	    strcmp(mode, "mapwalk")) {
		fprintf(stderr, "bench: unknown mode %s\n", mode);
		return 2;
	}

	err = wasm_bpf_set_global(bench_bpf_obj, bench_bpf_obj_len, ".rodata",
				  "target_pid", &target_pid, sizeof(target_pid));
	if (err) {
		fprintf(stderr, "bench: cannot set target_pid: %d\n", err);
		return 1;
	}
	obj = wasm_bpf_object_load(bench_bpf_obj, bench_bpf_obj_len);
	if (!obj) {
		fprintf(stderr, "bench: cannot load the BPF object\n");
		return 1;
	}
	drops_fd = wasm_bpf_map_fd(obj, "drops");
	seqs_fd = wasm_bpf_map_fd(obj, "seqs");

	if (!strcmp(mode, "mapwalk")) {
		int fd = wasm_bpf_map_fd(obj, "walk");

		printf("attached\n");
		fflush(stdout);
		err = fd < 0 ? fd : bench_mapwalk("wasm", fd, BENCH_WALK_ENTRIES,
						  walk_ms * 1000000LL);
		goto out;
	}

	ring = strcmp(mode, "perf") != 0;
	err = wasm_bpf_attach_program(obj, !strcmp(mode, "ring16") ? "handle_ring16"
					   : ring ? "handle_ring" : "handle_perf", NULL);
	if (err < 0) {
		fprintf(stderr, "bench: attach failed: %d\n", err);
		goto out;
	}
	buf = bpf_buffer__open_sized(obj, !strcmp(mode, "ring16") ? "rb16" : ring ? "rb" : "pb",
				     on_record, NULL, 4096);
	if (!buf) {
		err = -errno;
		fprintf(stderr, "bench: cannot open the buffer: %d\n", err);
		goto out;
	}
	printf("attached\n");
	fflush(stdout);

	for (;;) {
		err = bpf_buffer__poll(buf, (int)poll_ms);
		if (err == -EINTR) {
			err = 0;
			break;
		}
		if (err < 0) {
			fprintf(stderr, "bench: poll: %d\n", err);
			break;
		}
		polls++;
		if (err > 0)
			bench_mark_polled();
		if (count && bs.received >= (uint64_t)count)
			break;
		if (idle_ms && bs.received) {
			int64_t now = bench_clock_ns(CLOCK_MONOTONIC);

			if (err > 0 || !last_activity)
				last_activity = now;
			else if (now - last_activity >= idle_ms * 1000000LL)
				break;
		}
	}
	err = err < 0 ? err : 0;
	bench_report("wasm", mode,
		     bench_produced(seqs_fd, ring ? BENCH_DROP_RING : BENCH_DROP_PERF),
		     bench_kernel_drops(drops_fd, ring ? BENCH_DROP_RING : BENCH_DROP_PERF),
		     0, polls, err);
out:
	bpf_buffer__free(buf);
	wasm_bpf_object_close(obj);
	return err < 0 ? 1 : 0;
}
