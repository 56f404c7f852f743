// SPDX-License-Identifier: MIT
/* native_consumer: the native baseline of `make bench`. Loads the same
 * bench.bpf.o as the wasm guest with libbpf (no skeleton), sets target_pid in
 * .rodata, attaches, consumes with ring_buffer__poll / perf_buffer__poll and
 * accounts and reports exactly like the guest (examples/bench/bench_stats.h).
 *
 * Usage: native_consumer [-p PID] [-n COUNT] [-i IDLE_MS] [-T TAI_OFF_NS]
 *                        [-t POLL_MS] [-w WALK_MS] OBJ.bpf.o ring|ring16|perf|mapwalk */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench_stats.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int on_ring(void *ctx, void *data, size_t size)
{
	(void)ctx;
	bench_account(data, size);
	return 0;
}

static unsigned long long perf_lost;

static void on_perf(void *ctx, int cpu, void *data, __u32 size)
{
	(void)ctx;
	(void)cpu;
	bench_account(data, size);
}

static void on_perf_lost(void *ctx, int cpu, __u64 cnt)
{
	(void)ctx;
	(void)cpu;
	perf_lost += cnt;
}

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_WARN)
		return vfprintf(stderr, fmt, args);
	return 0;
}

int main(int argc, char **argv)
{
	long long count = 0, idle_ms = 0, poll_ms = 100, walk_ms = 1000;
	unsigned int target_pid = 0;
	struct ring_buffer *rb = NULL;
	struct perf_buffer *pb = NULL;
	struct bpf_link *link = NULL;
	struct bpf_object *obj;
	struct bpf_map *rodata;
	const char *path, *mode;
	unsigned long long polls = 0;
	long long last_activity = 0;
	int opt, err = 0, drops_fd, seqs_fd, ring;

	while ((opt = getopt(argc, argv, "p:n:i:T:t:w:s:")) != -1) {
		switch (opt) {
		case 'p': target_pid = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'n': count = atoll(optarg); break;
		case 'i': idle_ms = atoll(optarg); break;
		case 'T': bs.tai_off_ns = atoll(optarg); break;
		case 't': poll_ms = atoll(optarg); break;
		case 's': bs.sample_every = (uint64_t)atoll(optarg); break;
		case 'w': walk_ms = atoll(optarg); break;
		default: return 2;
		}
	}
	if (optind != argc - 2) {
		fprintf(stderr, "usage: %s [options] OBJ.bpf.o ring|ring16|perf|mapwalk\n", argv[0]);
		return 2;
	}
	path = argv[optind];
	mode = argv[optind + 1];
	ring = !strcmp(mode, "ring") || !strcmp(mode, "ring16");
	libbpf_set_print(quiet_print);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		fprintf(stderr, "native_consumer: cannot open %s: %d\n", path, -errno);
		return 1;
	}
	/* skeleton-free .rodata: patch the initial value before load */
	rodata = bpf_object__find_map_by_name(obj, ".rodata");
	if (rodata) {
		size_t sz;
		const void *init = bpf_map__initial_value(rodata, &sz);
		char *copy;

		/* target_pid is the only .rodata global, at offset 0 */
		if (!init || sz < sizeof(target_pid) || !(copy = malloc(sz))) {
			fprintf(stderr, "native_consumer: no .rodata image\n");
			return 1;
		}
		memcpy(copy, init, sz);
		memcpy(copy, &target_pid, sizeof(target_pid));
		err = bpf_map__set_initial_value(rodata, copy, sz);
		free(copy);
		if (err) {
			fprintf(stderr, "native_consumer: set .rodata: %d\n", err);
			return 1;
		}
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "native_consumer: load: %d\n", err);
		goto out;
	}
	drops_fd = bpf_object__find_map_fd_by_name(obj, "drops");
	seqs_fd = bpf_object__find_map_fd_by_name(obj, "seqs");

	if (!strcmp(mode, "mapwalk")) {
		printf("attached\n");
		fflush(stdout);
		err = bench_mapwalk("native", bpf_object__find_map_fd_by_name(obj, "walk"),
				    BENCH_WALK_ENTRIES, walk_ms * 1000000LL);
		goto out;
	}
	link = bpf_program__attach(bpf_object__find_program_by_name(
		obj, !strcmp(mode, "ring16") ? "handle_ring16" : ring ? "handle_ring" : "handle_perf"));
	if (!link) {
		err = -errno;
		fprintf(stderr, "native_consumer: attach: %d\n", err);
		goto out;
	}
	if (ring)
		rb = ring_buffer__new(bpf_object__find_map_fd_by_name(obj, !strcmp(mode, "ring16") ? "rb16" : "rb"),
				      on_ring, NULL, NULL);
	else /* 64 pages per CPU, as the Python runner's PerfBuffer */
		pb = perf_buffer__new(bpf_object__find_map_fd_by_name(obj, "pb"), 64,
				      on_perf, on_perf_lost, NULL, NULL);
	if (!rb && !pb) {
		err = -errno;
		fprintf(stderr, "native_consumer: buffer: %d\n", err);
		goto out;
	}
	printf("attached\n");
	fflush(stdout);

	while (!stop) {
		err = ring ? ring_buffer__poll(rb, (int)poll_ms)
			   : perf_buffer__poll(pb, (int)poll_ms);
		if (err == -EINTR) {
			err = 0;
			if (stop)
				break;
			continue;
		}
		if (err < 0) {
			fprintf(stderr, "native_consumer: poll: %d\n", err);
			break;
		}
		polls++;
		if (err > 0)
			bench_mark_polled();
		if (count && bs.received >= (uint64_t)count)
			break;
		if (idle_ms && bs.received) {
			long long now = bench_clock_ns(CLOCK_MONOTONIC);

			if (err > 0 || !last_activity)
				last_activity = now;
			else if (now - last_activity >= idle_ms * 1000000LL)
				break;
		}
	}
	err = err < 0 ? err : 0;
	bench_report("native", mode,
		     bench_produced(seqs_fd, ring ? BENCH_DROP_RING : BENCH_DROP_PERF),
		     bench_kernel_drops(drops_fd, ring ? BENCH_DROP_RING : BENCH_DROP_PERF),
		     perf_lost, polls, err);
out:
	ring_buffer__free(rb);
	perf_buffer__free(pb);
	bpf_link__destroy(link);
	bpf_object__close(obj);
	return err < 0 ? 1 : 0;
}
