// SPDX-License-Identifier: MIT
/* loadgen: calls getppid() for the bench BPF program.
 *
 * Usage: loadgen [-r RATE [-e]] [-d SECONDS] [-n CALLS]
 *   -r RATE    calls per second, paced in bursts: the calls due are made
 *              every ~100 us (default: flat out)
 *   -e         with -r: evenly paced, call i at start + i/RATE, the clock
 *              busy-waited (so most records wake the consumer on their own)
 *   -d SECONDS stop after this long; -n CALLS stop after this many calls
 * Prints its pid on a line, waits for one byte on stdin (the go signal: the
 * consumer must know this pid and be attached first), runs, then prints
 * {"calls":N,"duration_s":S,"rate":R}. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	double rate = 0, seconds = 0;
	long long max_calls = 0, calls = 0, t0, t1, end_ns;
	char go;
	int opt, even = 0;

	while ((opt = getopt(argc, argv, "r:ed:n:")) != -1) {
		switch (opt) {
		case 'r': rate = atof(optarg); break;
		case 'e': even = 1; break;
		case 'd': seconds = atof(optarg); break;
		case 'n': max_calls = atoll(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-r RATE [-e]] [-d SECONDS] [-n CALLS]\n", argv[0]);
			return 2;
		}
	}
	if (seconds <= 0 && max_calls <= 0) {
		fprintf(stderr, "loadgen: give -d SECONDS and/or -n CALLS\n");
		return 2;
	}
	printf("%d\n", (int)getpid());
	fflush(stdout);
	if (read(0, &go, 1) != 1)
		return 1;

	t0 = now_ns();
	end_ns = seconds > 0 ? t0 + (long long)(seconds * 1e9) : 0;
	if (rate <= 0) {
		/* flat out; the clock is read once per 1024 calls */
		for (;;) {
			int i;

			for (i = 0; i < 1024; i++) {
				if (max_calls && calls >= max_calls)
					goto done;
				syscall(SYS_getppid); /* not glibc's getppid(): never cached */
				calls++;
			}
			if (end_ns && now_ns() >= end_ns)
				break;
		}
	} else if (even) {
		/* evenly paced: spin until each call is due (a sleep would wake late
		 * and turn the stream into small bursts) */
		double period_ns = 1e9 / rate;

		for (;;) {
			long long due = t0 + (long long)(calls * period_ns), t;

			if (max_calls && calls >= max_calls)
				break;
			while ((t = now_ns()) < due)
				;
			if (end_ns && t >= end_ns)
				break;
			syscall(SYS_getppid);
			calls++;
		}
	} else {
		/* paced: catch up with rate * elapsed, sleeping ~100 us between bursts */
		for (;;) {
			long long t = now_ns(), due;

			if (end_ns && t >= end_ns)
				break;
			due = (long long)((double)(t - t0) * rate / 1e9) + 1;
			if (max_calls && due > max_calls)
				due = max_calls;
			while (calls < due) {
				syscall(SYS_getppid);
				calls++;
			}
			if (max_calls && calls >= max_calls)
				break;
			{
				struct timespec ts = {0, 100000};

				nanosleep(&ts, NULL);
			}
		}
	}
done:
	t1 = now_ns();
	printf("{\"calls\":%lld,\"duration_s\":%.6f,\"rate\":%.0f}\n", calls,
	       (t1 - t0) / 1e9, calls * 1e9 / (double)(t1 - t0));
	fflush(stdout);
	return 0;
}
