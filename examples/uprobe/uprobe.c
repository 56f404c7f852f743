// SPDX-License-Identifier: MIT
/* uprobe: wasm-bpf guest tracing uprobed_add() calls of a native program
 * (entry + return) through a ring buffer.
 * Usage: uprobe [-c COUNT] [-h] [BINARY] */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "wasm_bpf.h"
#include "example_util.h" /* ../common: argument checks, poll loops */
#include "uprobe.h"
#include "uprobe.skel.h" /* uprobe_bpf_obj[], uprobe_bpf_obj_len */

#define FUNC "uprobed_add"

static long max_calls, calls;

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Trace calls of " FUNC "(int a, int b) in BINARY.\n"
		"\n"
		"USAGE: %s [-c COUNT] [-h] [BINARY]\n"
		"  BINARY    program to probe (default: uprobe_target next to\n"
		"            this module)\n"
		"  -c COUNT  exit (status 0) after COUNT returns\n"
		"  -h        show this help\n",
		prog);
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = data;
	char comm[TASK_COMM_LEN + 1];

	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	if (max_calls && calls >= max_calls)
		return 0;
	memcpy(comm, e->comm, TASK_COMM_LEN);
	comm[TASK_COMM_LEN] = '\0';
	if (e->is_ret) {
		printf("%-7d %-16s " FUNC "(%d, %d) = %d\n", e->pid, comm,
		       e->a, e->b, e->ret);
		calls++;
	} else {
		printf("%-7d %-16s " FUNC "(%d, %d)\n", e->pid, comm, e->a,
		       e->b);
	}
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_buffer *rb = NULL;
	struct bpf_object *obj;
	char target[4096];
	const char *binary = NULL;
	int opt, err = 0;

	while ((opt = getopt(argc, argv, "c:h")) != -1) {
		switch (opt) {
		case 'c':
			if (example_parse_long(optarg, 0, LONG_MAX, &max_calls))
				return example_invalid(usage, argv[0], "count",
						       optarg);
			break;
		default:
			return example_help_or_usage(usage, argv[0], opt);
		}
	}
	if (argc - optind > 1) {
		usage(stderr, argv[0]);
		return 1;
	}
	if (optind < argc) {
		binary = argv[optind];
		err = snprintf(target, sizeof(target), "%s:" FUNC, binary);
	} else {
		/* argv[0] is the module path: the target is built next to it */
		const char *slash = strrchr(argv[0], '/');
		int dirlen = slash ? (int)(slash - argv[0]) : 1;

		err = snprintf(target, sizeof(target), "%.*s/uprobe_target:" FUNC,
			       dirlen, slash ? argv[0] : ".");
	}
	if (err < 0 || (size_t)err >= sizeof(target)) {
		fprintf(stderr, "Binary path too long\n");
		return 1;
	}

	obj = example_load(uprobe_bpf_obj, uprobe_bpf_obj_len);
	if (!obj)
		return 1;
	/* target BINARY:FUNCTION: the runner resolves FUNCTION's offset in
	 * BINARY and probes it in every process running BINARY */
	err = wasm_bpf_attach_program(obj, "uprobe_add", target);
	if (err < 0) {
		fprintf(stderr, "Failed to attach uprobe to %s: %d\n", target,
			err);
		goto cleanup;
	}
	err = wasm_bpf_attach_program(obj, "uretprobe_add", target);
	if (err < 0) {
		fprintf(stderr, "Failed to attach uretprobe to %s: %d\n",
			target, err);
		goto cleanup;
	}
	rb = bpf_buffer__open(obj, "rb", handle_event, NULL);
	if (!rb) {
		err = -errno;
		fprintf(stderr, "Failed to create ring buffer: %d\n", err);
		goto cleanup;
	}

	printf("Tracing %s\n", target);
	printf("%-7s %-16s %s\n", "PID", "COMM", "CALL");
	fflush(stdout);

	err = example_poll_events(rb, "ring", &calls, max_calls);
	if (err == -EINTR) /* Ctrl-C / SIGTERM: clean shutdown */
		err = 0;

cleanup:
	bpf_buffer__free(rb);
	wasm_bpf_object_close(obj);
	return err < 0 ? 1 : 0;
}
