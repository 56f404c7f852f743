/* SPDX-License-Identifier: MIT */
/* The guest side shared by the sockfilter and xdp examples: the same
 * per-IP-protocol packet counter, attached two ways (a socket filter on a
 * raw packet socket the runner opens, or an XDP program). Attach the
 * program to the interface named on the command line, then every interval
 * print one line per protocol seen so far, from the `proto_count` array map.
 * Needs example_util.h. */
#ifndef PROTO_COUNTER_H
#define PROTO_COUNTER_H

#include <errno.h>
#include <stdio.h>

#include "wasm_bpf.h"
#include "example_util.h"

struct proto_counter {
	unsigned char *obj;       /* the embedded BPF object */
	unsigned int obj_len;
	const char *prog;         /* its program to attach to the interface */
	const char *counting;     /* banner: "Counting <counting> IFNAME every ..." */
	void (*usage)(FILE *f, const char *prog);
};

/* every interval: one line per protocol seen so far */
static int proto_counter_print(void *ctx)
{
	int map_fd = *(int *)ctx;
	char ts[32], name[24];
	unsigned long long v;
	unsigned int key;
	int err;

	example_time(ts, sizeof(ts));
	for (key = 0; key < 256; key++) {
		err = bpf_map_lookup_elem(map_fd, &key, &v);
		if (err < 0) {
			fprintf(stderr, "Error reading proto_count: %d\n", err);
			return err;
		}
		if (!v)
			continue;
		snprintf(name, sizeof(name), "%s(%u)", example_ip_proto_name(key), key);
		printf("%-8s %-12s %12llu\n", ts, name, v);
	}
	fflush(stdout);
	return 0;
}

/* main() of the example: [-i SECONDS] [-c COUNT] [-h] [IFNAME] (default lo) */
static int proto_counter_main(int argc, char **argv, const struct proto_counter *pc)
{
	long interval = 1, count = 0;
	const char *ifname = "lo";
	struct bpf_buffer *rb = NULL;
	struct bpf_object *obj;
	int map_fd, err;

	err = example_interval_args(argc, argv, pc->usage, &interval, &count,
				    &ifname);
	if (err >= 0)
		return err;

	obj = example_load(pc->obj, pc->obj_len);
	if (!obj)
		return 1;
	err = wasm_bpf_attach_program(obj, pc->prog, ifname);
	if (err < 0) {
		fprintf(stderr, "Failed to attach %s to %s: %d\n", pc->prog,
			ifname, err);
		goto cleanup;
	}
	map_fd = example_map_fd(obj, "proto_count");
	if (map_fd < 0) {
		err = map_fd;
		goto cleanup;
	}
	/* nothing is ever submitted to rb: polling it is the interval timer */
	rb = bpf_buffer__open_sized(obj, "rb", example_no_sample, NULL, 64);
	if (!rb) {
		err = -errno;
		fprintf(stderr, "Failed to open ring buffer: %d\n", err);
		goto cleanup;
	}

	printf("Counting %s %s every %lds (Ctrl-C to stop)\n", pc->counting,
	       ifname, interval);
	printf("%-8s %-12s %12s\n", "TIME", "PROTOCOL", "PACKETS");
	fflush(stdout);
	err = example_every_interval(rb, interval, count, proto_counter_print,
				     &map_fd);

cleanup:
	bpf_buffer__free(rb);
	wasm_bpf_object_close(obj);
	return err < 0 ? 1 : 0;
}

#endif
