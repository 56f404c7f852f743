/* SPDX-License-Identifier: MIT */
/* The guest side shared by the sockfilter and xdp examples: the same
 * per-IP-protocol packet counter, attached two ways (a socket filter on a
 * raw packet socket the runner opens, or an XDP program): the printer of
 * its `proto_count` array map, for example_counting_main(). */
#ifndef PROTO_COUNTER_H
#define PROTO_COUNTER_H

#include <stdio.h>

#include "wasm_bpf.h"
#include "example_util.h"

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

#endif
