// SPDX-License-Identifier: MIT
/* uprobe_target: the native program the uprobe example probes.
 * Usage: uprobe_target [A [B [COUNT]]]
 * Calls uprobed_add(A + i, B + i) for i = 0, 1, ... every 100 ms, COUNT
 * times (default: forever); prints nothing. */
#include <stdlib.h>
#include <time.h>

/* exported, never inlined: the probe point (found by its ELF symbol) */
__attribute__((noinline)) int uprobed_add(int a, int b)
{
	return a + b;
}

volatile int sink;

int main(int argc, char **argv)
{
	int a = argc > 1 ? atoi(argv[1]) : 1;
	int b = argc > 2 ? atoi(argv[2]) : 2;
	long count = argc > 3 ? atol(argv[3]) : -1;
	struct timespec ts = { 0, 100 * 1000 * 1000 };

	for (long i = 0; count < 0 || i < count; i++) {
		sink = uprobed_add(a + (int)i, b + (int)i);
		nanosleep(&ts, NULL);
	}
	return 0;
}
