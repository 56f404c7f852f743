/* SPDX-License-Identifier: MIT */
/* trace_helpers.c - definitions of trace_helpers.h for wasm32 guests. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "trace_helpers.h"

/* width '*' scaled to val / val_max, then '+' when val exceeds val_max */
static void print_stars(unsigned int val, unsigned int val_max, int width)
{
	int i, stars = 0;

	if (val_max)
		stars = (int)((unsigned long long)(val < val_max ? val : val_max) *
			      width / val_max);
	for (i = 0; i < width; i++)
		putchar(i < stars ? '*' : ' ');
	if (val > val_max)
		putchar('+');
}

void print_log2_hist(unsigned int *vals, int vals_size, const char *val_type)
{
	unsigned int val_max = 0;
	int i, idx_max = -1, wide;

	for (i = 0; i < vals_size; i++) {
		if (vals[i] > 0)
			idx_max = i;
		if (vals[i] > val_max)
			val_max = vals[i];
	}
	if (idx_max < 0)
		return;
	/* more than 32 slots: 64-bit bounds need wider columns, fewer stars */
	wide = idx_max > 32;
	printf("%*s%-*s : count    distribution\n", wide ? 15 : 5, "",
	       wide ? 29 : 19, val_type);
	for (i = 0; i <= idx_max; i++) {
		unsigned long long low = (1ULL << (i + 1)) >> 1;
		unsigned long long high = (1ULL << (i + 1)) - 1;

		if (low == high) /* slot 0 is 0 -> 1 */
			low -= 1;
		printf("%*llu -> %-*llu : %-8u |", wide ? 20 : 10, low,
		       wide ? 20 : 10, high, vals[i]);
		print_stars(vals[i], val_max, wide ? 20 : 40);
		printf("|\n");
	}
}

void print_linear_hist(unsigned int *vals, int vals_size, unsigned int base,
		       unsigned int step, const char *val_type)
{
	unsigned int val_max = 0;
	int i, idx_min = -1, idx_max = -1;

	for (i = 0; i < vals_size; i++) {
		if (vals[i] > 0) {
			idx_max = i;
			if (idx_min < 0)
				idx_min = i;
		}
		if (vals[i] > val_max)
			val_max = vals[i];
	}
	if (idx_max < 0)
		return;
	printf("     %-13s : count     distribution\n", val_type);
	for (i = idx_min; i <= idx_max; i++) {
		if (!vals[i])
			continue;
		printf("        %-10u : %-8u |", base + i * step, vals[i]);
		print_stars(vals[i], val_max, 40);
		printf("|\n");
	}
}

unsigned long long get_ktime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

bool tracepoint_exists(const char *category, const char *event)
{
	static const char *const roots[] = { "/sys/kernel/tracing",
					     "/sys/kernel/debug/tracing" };
	char path[256];
	unsigned i;

	for (i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		snprintf(path, sizeof(path), "%s/events/%s/%s/format", roots[i],
			 category, event);
		if (access(path, F_OK) == 0)
			return true;
	}
	return false;
}

bool probe_tp_btf(const char *name)
{
	(void)name;
	return true;
}

bool probe_ringbuf(void)
{
	return true;
}
