// SPDX-License-Identifier: MIT
/* bootstrap: wasm-bpf guest printing process exec/exit events.
 * Usage: bootstrap [-d MIN_MS] [-v] [-h] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wasm_bpf.h"
#include "example_util.h" /* ../common: argument checks, poll loops */
#include "bootstrap.h"
#include "bootstrap.skel.h" /* bootstrap_bpf_obj[], bootstrap_bpf_obj_len */

static int verbose;

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"BPF bootstrap demo application.\n"
		"\n"
		"It traces process start and exits and shows associated\n"
		"information (filename, process duration, PID and PPID, etc).\n"
		"\n"
		"USAGE: %s [-d <min-duration-ms>] [-v] [-h]\n"
		"  -d MIN_MS  only report exits of processes that lived at least\n"
		"             MIN_MS milliseconds (exec events are then hidden)\n"
		"  -v         verbose debug output (to stderr)\n"
		"  -h         show this help\n",
		prog);
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = data;
	char ts[32];

	(void)ctx;
	if (size < sizeof(*e)) {
		fprintf(stderr, "short event: %zu bytes\n", size);
		return 0;
	}
	example_time(ts, sizeof(ts));

	if (e->exit_event) {
		printf("%-8s %-5s %-16.16s %-7d %-7d [%u]", ts, "EXIT", e->comm,
		       e->pid, e->ppid, e->exit_code);
		if (e->duration_ns)
			printf(" (%llums)",
			       (unsigned long long)(e->duration_ns / 1000000));
		printf("\n");
	} else {
		printf("%-8s %-5s %-16.16s %-7d %-7d %.127s\n", ts, "EXEC",
		       e->comm, e->pid, e->ppid, e->filename);
	}
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long long min_duration_ns = 0;
	struct bpf_buffer *rb = NULL;
	struct bpf_object *obj;
	int opt, err = 0;

	while ((opt = getopt(argc, argv, "d:vh")) != -1) {
		switch (opt) {
		case 'd': {
			char *end;
			long long ms;

			errno = 0;
			ms = strtoll(optarg, &end, 0);
			if (errno || end == optarg || *end || ms <= 0)
				return example_invalid(usage, argv[0],
						       "duration", optarg);
			min_duration_ns = (unsigned long long)ms * 1000000ULL;
			break;
		}
		case 'v':
			verbose = 1;
			break;
		default:
			return example_help_or_usage(usage, argv[0], opt);
		}
	}

	if (example_set_rodata(bootstrap_bpf_obj, bootstrap_bpf_obj_len,
			       "min_duration_ns", &min_duration_ns,
			       sizeof(min_duration_ns)))
		return 1;
	if (verbose)
		fprintf(stderr, "bpf object: %u bytes, min_duration_ns=%llu\n",
			bootstrap_bpf_obj_len, min_duration_ns);

	obj = example_load(bootstrap_bpf_obj, bootstrap_bpf_obj_len);
	if (!obj)
		return 1;
	err = wasm_bpf_attach_program(obj, "handle_exec", NULL);
	if (err < 0) {
		fprintf(stderr, "Failed to attach handle_exec: %d\n", err);
		goto cleanup;
	}
	err = wasm_bpf_attach_program(obj, "handle_exit", NULL);
	if (err < 0) {
		fprintf(stderr, "Failed to attach handle_exit: %d\n", err);
		goto cleanup;
	}
	if (verbose)
		fprintf(stderr, "attached handle_exec, handle_exit\n");

	rb = bpf_buffer__open(obj, "rb", handle_event, NULL);
	if (!rb) {
		err = -errno;
		fprintf(stderr, "Failed to create ring buffer: %d\n", err);
		goto cleanup;
	}

	printf("%-8s %-5s %-16s %-7s %-7s %s\n", "TIME", "EVENT", "COMM", "PID",
	       "PPID", "FILENAME/EXIT CODE");
	fflush(stdout);

	err = example_poll_events(rb, "ring", NULL, 0);
	if (err == -EINTR) { /* Ctrl-C / SIGTERM: clean shutdown */
		err = 0;
		if (verbose)
			fprintf(stderr, "interrupted, exiting\n");
	}

cleanup:
	bpf_buffer__free(rb);
	wasm_bpf_object_close(obj);
	return err < 0 ? 1 : 0;
}
