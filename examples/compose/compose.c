// SPDX-License-Identifier: MIT
/* compose: bootstrap's events, handed to processor components written in
 * other languages. Run it with
 *   wasm-bpf run --with longlived=longlived.wasm --filter rb=longlived \
 *                --with agg=agg.wasm compose.wasm
 * - `--filter rb=longlived` (Python, processors/longlived.py) runs on each
 *   event before handle_event sees it: it drops exec events and the exits
 *   of processes that lived less than its argument (default 100 ms);
 * - `agg` (C, processors/agg.c) gets each event this guest receives through
 *   wasm_bpf_call(), and at the end (Ctrl-C, --duration) an empty event,
 *   to which it answers with its summary per command name.
 * Without them it prints every event, as bootstrap does.
 * Usage: compose [-h] */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include "wasm_bpf.h"
#include "example_util.h"
#include "../bootstrap/bootstrap.h"
#include "compose.skel.h"

static int have_agg = 1; /* until wasm_bpf_call says there is no "agg" */

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"bootstrap's process events, handed to processor components.\n"
		"\n"
		"USAGE: %s [-h]\n"
		"  with --filter rb=NAME, processor NAME decides which events arrive;\n"
		"  with --with agg=FILE, processor agg aggregates them: its summary\n"
		"  is printed at the end\n",
		prog);
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = data;
	char ts[32];

	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	example_time(ts, sizeof(ts));
	if (e->exit_event)
		printf("%-8s %-5s %-16.16s %-7d %-7d [%u] (%llums)\n", ts, "EXIT", e->comm, e->pid,
		       e->ppid, e->exit_code, (unsigned long long)(e->duration_ns / 1000000));
	else
		printf("%-8s %-5s %-16.16s %-7d %-7d %.127s\n", ts, "EXEC", e->comm, e->pid,
		       e->ppid, e->filename);
	fflush(stdout);
	if (have_agg) {
		int ret = wasm_bpf_call("agg", e, sizeof(*e), NULL, 0);
		if (ret == -ENOENT)
			have_agg = 0; /* run without --with agg=... */
	}
	return 0;
}

static void print_summary(void)
{
	static char report[8192];
	int n = wasm_bpf_call("agg", "", 0, report, sizeof(report) - 1);

	if (n < 0)
		return;
	report[n < (int)sizeof(report) - 1 ? n : (int)sizeof(report) - 1] = '\0';
	fputs(report, stdout);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct bpf_buffer *rb = NULL;
	struct bpf_object *obj;
	int opt, err;

	while ((opt = getopt(argc, argv, "h")) != -1)
		return example_help_or_usage(usage, argv[0], opt);
	obj = example_load(compose_bpf_obj, compose_bpf_obj_len);
	if (!obj)
		return 1;
	err = wasm_bpf_attach_program(obj, "handle_exec", NULL);
	if (!err)
		err = wasm_bpf_attach_program(obj, "handle_exit", NULL);
	if (err < 0) {
		fprintf(stderr, "Failed to attach: %d\n", err);
		goto cleanup;
	}
	rb = example_open_buffer(obj, "rb", handle_event, &err);
	if (!rb)
		goto cleanup;
	printf("%-8s %-5s %-16s %-7s %-7s %s\n", "TIME", "EVENT", "COMM", "PID", "PPID",
	       "FILENAME/EXIT CODE");
	fflush(stdout);
	err = example_poll_events(rb, "ring", NULL, 0);
	if (err == -EINTR) /* Ctrl-C / SIGTERM / --duration: the summary, then a clean exit */
		err = 0;
	if (have_agg)
		print_summary();
cleanup:
	bpf_buffer__free(rb);
	wasm_bpf_object_close(obj);
	return err < 0 ? 1 : 0;
}
