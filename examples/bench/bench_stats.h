/* SPDX-License-Identifier: MIT */
/* bench: record accounting and the result line, shared by the wasm guest
 * (bench.c, wasm32-wasi) and the native consumer (bench/native_consumer.c),
 * so both count, time and report exactly the same way.
 *
 * The includer provides bpf_map_update_elem/lookup_elem/get_next_key (the
 * SDK's wasm_bpf.h or libbpf's bpf/bpf.h: same names and signatures). */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#define BENCH_HIST_US 100000 /* 1 us buckets up to 100 ms, */
#define BENCH_HIST_MS 10000  /* then 1 ms buckets up to 10.1 s, then one overflow bucket */

enum { BENCH_CLOCK_UNKNOWN, BENCH_CLOCK_MONO, BENCH_CLOCK_REAL };

struct bench_stats {
	uint64_t received, gaps, reorders, first_seq, last_seq, max_seq;
	int64_t t_first, t_last; /* in the clock of `clock` */
	int64_t tai_off_ns;      /* CLOCK_TAI - CLOCK_REALTIME, given by the harness */
	int clock;
	uint64_t sample_every; /* latency of every Nth record (0/1: every record) */
	uint64_t sampled;
	uint64_t short_records;
	uint32_t hist[BENCH_HIST_US];
	uint32_t hist_ms[BENCH_HIST_MS + 1];
};

static struct bench_stats bs;

static inline int64_t bench_clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One record. Latency = now - submit time. CLOCK_MONOTONIC against
 * bpf_ktime_get_ns() when this process's CLOCK_MONOTONIC is the host's (native,
 * wasmer); wasmtime's WASI counts CLOCK_MONOTONIC from instance creation, so
 * there CLOCK_REALTIME + tai_off is compared with bpf_ktime_get_tai_ns(). */
static inline void bench_account(const void *data, size_t size)
{
	const struct bench_record *r = (const struct bench_record *)data;
	int64_t now, lat;
	uint64_t us;

	if (size < sizeof(*r)) {
		bs.short_records++;
		return;
	}
	if (bs.clock == BENCH_CLOCK_UNKNOWN) {
		now = bench_clock_ns(CLOCK_MONOTONIC);
		bs.clock = (now >= (int64_t)r->ktime_ns &&
			    now - (int64_t)r->ktime_ns < 60000000000LL)
				   ? BENCH_CLOCK_MONO
				   : BENCH_CLOCK_REAL;
	}
	if (bs.sample_every > 1 && bs.received % bs.sample_every && bs.received) {
		now = 0; /* not sampled */
	} else {
		if (bs.clock == BENCH_CLOCK_MONO) {
			now = bench_clock_ns(CLOCK_MONOTONIC);
			lat = now - (int64_t)r->ktime_ns;
		} else {
			now = bench_clock_ns(CLOCK_REALTIME);
			lat = now + bs.tai_off_ns - (int64_t)r->tai_ns;
		}
		us = lat > 0 ? (uint64_t)lat / 1000 : 0;
		if (us < BENCH_HIST_US)
			bs.hist[us]++;
		else if ((us - BENCH_HIST_US) / 1000 < BENCH_HIST_MS)
			bs.hist_ms[(us - BENCH_HIST_US) / 1000]++;
		else
			bs.hist_ms[BENCH_HIST_MS]++;
		bs.sampled++;
	}
	if (bs.received == 0) {
		bs.first_seq = bs.max_seq = r->seq;
		bs.t_first = now;
	} else {
		if (r->seq != bs.last_seq + 1)
			bs.gaps++;
		if (r->seq <= bs.last_seq)
			bs.reorders++;
		if (r->seq > bs.max_seq)
			bs.max_seq = r->seq;
	}
	bs.last_seq = r->seq;
	if (now)
		bs.t_last = now;
	bs.received++;
}

/* After a poll that delivered records: the time the buffer was left empty. */
static inline void bench_mark_polled(void)
{
	if (bs.clock == BENCH_CLOCK_MONO)
		bs.t_last = bench_clock_ns(CLOCK_MONOTONIC);
	else if (bs.clock == BENCH_CLOCK_REAL)
		bs.t_last = bench_clock_ns(CLOCK_REALTIME);
}

static inline double bench_percentile_us(double p)
{
	uint64_t total = 0, want, acc = 0;
	int i;

	for (i = 0; i < BENCH_HIST_US; i++)
		total += bs.hist[i];
	for (i = 0; i <= BENCH_HIST_MS; i++)
		total += bs.hist_ms[i];
	if (!total)
		return -1;
	want = (uint64_t)(p * (double)total);
	if (want >= total)
		want = total - 1;
	for (i = 0; i < BENCH_HIST_US; i++) {
		acc += bs.hist[i];
		if (acc > want)
			return i + 0.5; /* bucket middle: [i, i+1) us */
	}
	for (i = 0; i <= BENCH_HIST_MS; i++) {
		acc += bs.hist_ms[i];
		if (acc > want) /* [i, i+1) ms past 100 ms; the last bucket: >= 10.1 s */
			return BENCH_HIST_US + i * 1000.0 + 500.0;
	}
	return BENCH_HIST_US + BENCH_HIST_MS * 1000.0;
}

/* Sum of one per-CPU counter of the `drops` map (value buffer sized for up to
 * 512 possible CPUs; unused slots stay 0). */
static inline uint64_t bench_kernel_drops(int drops_fd, uint32_t idx)
{
	static uint64_t vals[512];
	uint64_t sum = 0;
	int i;

	if (drops_fd < 0)
		return 0;
	memset(vals, 0, sizeof(vals));
	if (bpf_map_lookup_elem(drops_fd, &idx, vals) < 0)
		return (uint64_t)-1;
	for (i = 0; i < 512; i++)
		sum += vals[i];
	return sum;
}

/* Events the BPF program saw for the target (its next sequence number). */
static inline uint64_t bench_produced(int seqs_fd, uint32_t idx)
{
	uint64_t v = 0;

	if (seqs_fd < 0 || bpf_map_lookup_elem(seqs_fd, &idx, &v) < 0)
		return (uint64_t)-1;
	return v;
}

/* The one JSON result line of a buffer run. `lost` = produced - received:
 * the consumer's own loss count, to compare with the kernel's drop counter. */
static inline void bench_report(const char *consumer, const char *mode,
				uint64_t produced, uint64_t kernel_drops, uint64_t perf_lost,
				uint64_t polls, int err)
{
	int64_t t_first = bs.t_first, t_last = bs.t_last;

	if (bs.clock == BENCH_CLOCK_MONO) { /* report wall-clock times */
		int64_t off = bench_clock_ns(CLOCK_REALTIME) -
			      bench_clock_ns(CLOCK_MONOTONIC);
		t_first += off;
		t_last += off;
	}
	printf("{\"consumer\":\"%s\",\"mode\":\"%s\",\"produced\":%llu,"
	       "\"lost\":%lld,\"received\":%llu,"
	       "\"gaps\":%llu,\"reorders\":%llu,\"first_seq\":%lld,"
	       "\"last_seq\":%lld,\"max_seq\":%lld,\"missing\":%llu,"
	       "\"kernel_drops\":%llu,\"perf_lost\":%llu,\"short\":%llu,"
	       "\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
	       "\"duration_s\":%.6f,\"t_first_real_ns\":%lld,"
	       "\"t_last_real_ns\":%lld,\"clock\":\"%s\",\"polls\":%llu,"
	       "\"latency_samples\":%llu,\"err\":%d}\n",
	       consumer, mode, (unsigned long long)produced,
	       (long long)(produced - bs.received), (unsigned long long)bs.received,
	       (unsigned long long)bs.gaps, (unsigned long long)bs.reorders,
	       bs.received ? (long long)bs.first_seq : -1LL,
	       bs.received ? (long long)bs.last_seq : -1LL,
	       bs.received ? (long long)bs.max_seq : -1LL,
	       (unsigned long long)(bs.received ? bs.max_seq + 1 - bs.received : 0),
	       (unsigned long long)kernel_drops, (unsigned long long)perf_lost,
	       (unsigned long long)bs.short_records,
	       bench_percentile_us(0.50), bench_percentile_us(0.99),
	       bench_percentile_us(1.0),
	       bs.received > 1 ? (double)(bs.t_last - bs.t_first) / 1e9 : 0.0,
	       (long long)t_first, (long long)t_last,
	       bs.clock == BENCH_CLOCK_MONO ? "monotonic"
	       : bs.clock == BENCH_CLOCK_REAL ? "realtime-tai" : "none",
	       (unsigned long long)polls,
	       (unsigned long long)bs.sampled, err);
	fflush(stdout);
}

/* The map walk: fill `walk` with `entries` keys, then walk it with
 * get-next-key + lookup until at least min_ns passed (whole walks). */
static inline int bench_mapwalk(const char *consumer, int fd, uint32_t entries,
				int64_t min_ns)
{
	uint64_t val, walked = 0, walks = 0, sum = 0;
	uint32_t key, next, i;
	int64_t t0, t1, f0, f1;
	int err;

	f0 = bench_clock_ns(CLOCK_MONOTONIC);
	for (i = 0; i < entries; i++) {
		val = (uint64_t)i * 3;
		err = bpf_map_update_elem(fd, &i, &val, 0 /* BPF_ANY */);
		if (err < 0) {
			fprintf(stderr, "map update %u: %d\n", i, err);
			return err;
		}
	}
	f1 = bench_clock_ns(CLOCK_MONOTONIC);
	t0 = f1;
	do {
		uint64_t n = 0;

		err = bpf_map_get_next_key(fd, NULL, &next);
		while (err == 0) {
			key = next;
			if (bpf_map_lookup_elem(fd, &key, &val) < 0) {
				fprintf(stderr, "map lookup %u failed\n", key);
				return -1;
			}
			sum += val;
			n++;
			err = bpf_map_get_next_key(fd, &key, &next);
		}
		if (n != entries) {
			fprintf(stderr, "walked %llu entries, expected %u\n",
				(unsigned long long)n, entries);
			return -1;
		}
		walked += n;
		walks++;
		t1 = bench_clock_ns(CLOCK_MONOTONIC);
	} while (t1 - t0 < min_ns);
	printf("{\"consumer\":\"%s\",\"mode\":\"mapwalk\",\"entries\":%u,"
	       "\"walks\":%llu,\"walked\":%llu,\"walk_s\":%.6f,"
	       "\"entries_per_s\":%.0f,\"fill_per_s\":%.0f,\"checksum\":%llu}\n",
	       consumer, entries, (unsigned long long)walks,
	       (unsigned long long)walked, (double)(t1 - t0) / 1e9,
	       (double)walked * 1e9 / (double)(t1 - t0),
	       (double)entries * 1e9 / (double)(f1 - f0),
	       (unsigned long long)sum);
	fflush(stdout);
	return 0;
}

#endif
