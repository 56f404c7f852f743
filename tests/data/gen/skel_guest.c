/* Guest for tests/test_gen_skeleton.py: `skel_guest TGID MAGIC`. Sets the
 * rodata knobs through the skeleton, loads, attaches, prints "ready", then
 * waits (up to 10 s) until the BPF side saw getppid() from TGID and prints
 * what it stored: the knobs as the kernel saw them. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "skel.skel.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct skel_bpf *skel;
	uint64_t v[4] = {0};
	uint32_t k;
	double end;
	int err;

	if (argc != 3)
		return 2;
	skel = skel_bpf__open();
	if (!skel)
		return 1;
	skel->rodata->target_tgid = (uint32_t)strtoul(argv[1], NULL, 10);
	skel->rodata->magic = strtoull(argv[2], NULL, 10);
	skel->rodata->flag8 = 3;
	skel->rodata->val16 = 500;
	skel->rodata->weights[0] = 100;
	skel->rodata->weights[2] = 1000;
	skel->data->hits = 41;
	err = skel_bpf__load(skel);
	if (err) {
		fprintf(stderr, "load: %d\n", err);
		skel_bpf__destroy(skel);
		return 1;
	}
	err = skel_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "attach: %d\n", err);
		skel_bpf__destroy(skel);
		return 1;
	}
	printf("ready maps=%d,%d\n", skel->maps.out >= 0, skel->maps.seen >= 0);
	fflush(stdout);
	end = now() + 10;
	while (now() < end) {
		k = 0;
		if (bpf_map_lookup_elem(skel->maps.out, &k, &v[0]) == 0 && v[0])
			break;
	}
	for (k = 1; k < 4; k++)
		bpf_map_lookup_elem(skel->maps.out, &k, &v[k]);
	printf("magic=%llu weights=%llu small=%llu hits=%llu\n", (unsigned long long)v[0],
	       (unsigned long long)v[1], (unsigned long long)v[2], (unsigned long long)v[3]);
	skel_bpf__destroy(skel);
	return v[0] ? 0 : 3;
}
