// SPDX-License-Identifier: MIT
/* opensnoop: wasm-bpf guest printing openat() calls received through a
 * perf buffer. Usage: opensnoop [-p PID] [-n NAME] [-c COUNT] [-h] */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "wasm_bpf.h"
#include "example_util.h" /* ../common: argument checks, poll loops */
#include "opensnoop.h"
#include "opensnoop.skel.h" /* opensnoop_bpf_obj[], opensnoop_bpf_obj_len */

static const char *name_filter;
static long max_events, printed;

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Trace openat() syscalls.\n"
		"\n"
		"USAGE: %s [-p PID] [-n NAME] [-c COUNT] [-h]\n"
		"  -p PID    only process PID (filtered in BPF)\n"
		"  -n NAME   only commands whose name contains NAME (filtered\n"
		"            in the guest)\n"
		"  -c COUNT  exit (status 0) after printing COUNT events\n"
		"  -h        show this help\n",
		prog);
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = data;
	char comm[TASK_COMM_LEN + 1], fname[NAME_MAX + 1];
	int fd, err;

	(void)ctx;
	if (size < sizeof(*e)) /* perf samples may carry trailing padding */
		return 0;
	if (max_events && printed >= max_events)
		return 0;
	memcpy(comm, e->comm, TASK_COMM_LEN);
	comm[TASK_COMM_LEN] = '\0';
	memcpy(fname, e->fname, NAME_MAX);
	fname[NAME_MAX] = '\0';
	if (name_filter && !strstr(comm, name_filter))
		return 0;
	/* ret is the kernel's: an fd, or a negative Linux errno */
	fd = e->ret >= 0 ? e->ret : -1;
	err = e->ret >= 0 ? 0 : -e->ret;
	printf("%-7d %-16s %3d %3d %s\n", e->pid, comm, fd, err, fname);
	fflush(stdout);
	printed++;
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_buffer *pb = NULL;
	struct bpf_object *obj;
	long pid = 0;
	int32_t targ_tgid;
	int opt, err = 0;

	while ((opt = getopt(argc, argv, "p:n:c:h")) != -1) {
		switch (opt) {
		case 'p':
			if (example_parse_long(optarg, 0, INT32_MAX, &pid))
				return example_invalid(usage, argv[0], "PID",
						       optarg);
			break;
		case 'n':
			name_filter = optarg;
			break;
		case 'c':
			if (example_parse_long(optarg, 0, INT32_MAX,
					       &max_events))
				return example_invalid(usage, argv[0], "count",
						       optarg);
			break;
		default:
			return example_help_or_usage(usage, argv[0], opt);
		}
	}
	if (optind < argc) {
		usage(stderr, argv[0]);
		return 1;
	}

	targ_tgid = (int32_t)pid;
	if (example_set_rodata(opensnoop_bpf_obj, opensnoop_bpf_obj_len, "targ_tgid",
			       &targ_tgid, sizeof(targ_tgid)))
		return 1;
	obj = example_load(opensnoop_bpf_obj, opensnoop_bpf_obj_len);
	if (!obj)
		return 1;
	err = wasm_bpf_attach_program(
		obj, "tracepoint__syscalls__sys_enter_openat", NULL);
	if (err < 0) {
		fprintf(stderr, "Failed to attach sys_enter_openat: %d\n", err);
		goto cleanup;
	}
	err = wasm_bpf_attach_program(
		obj, "tracepoint__syscalls__sys_exit_openat", NULL);
	if (err < 0) {
		fprintf(stderr, "Failed to attach sys_exit_openat: %d\n", err);
		goto cleanup;
	}
	pb = bpf_buffer__open(obj, "events", handle_event, NULL);
	if (!pb) {
		err = -errno;
		fprintf(stderr, "Failed to open perf buffer: %d\n", err);
		goto cleanup;
	}

	/* The reference runtimes create the perf buffer (open the per-CPU perf
	 * events and put them in the map) only on the first poll, and until then
	 * the kernel drops every event; wasm-bpf creates it when the guest asks
	 * for the map's fd. Poll once before announcing that tracing has started
	 * so the guest behaves the same on every runtime. */
	err = bpf_buffer__poll(pb, 0);
	if (err < 0 && err != -EINTR) {
		fprintf(stderr, "Error polling perf buffer: %d\n", err);
		goto cleanup;
	}
	err = 0;

	printf("%-7s %-16s %3s %3s %s\n", "PID", "COMM", "FD", "ERR", "PATH");
	fflush(stdout);

	err = example_poll_events(pb, "perf", &printed, max_events);
	if (err == -EINTR) /* Ctrl-C / SIGTERM: clean shutdown */
		err = 0;

cleanup:
	bpf_buffer__free(pb);
	wasm_bpf_object_close(obj);
	return err < 0 ? 1 : 0;
}
