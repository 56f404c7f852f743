/* An upstream-style guest: written against upstream wasm-bpf's C API
 * (libbpf-wasm.h, a bpftool-style skeleton, trace_helpers), as upstream's
 * examples are. `upstream TGID tp|raw LIBC|- N`: traces N getppid() calls of
 * process TGID with the tracepoint program (tp) or the raw one (raw), the
 * other one kept out with bpf_program__set_autoload; a uprobe on LIBC's
 * getppid attached with bpf_set_prog_attach_target counts them too (not
 * loaded with `-`). Prints
 * "ready", one "event PID SEQ COMM" line per call, the histogram
 * (print_log2_hist), "hists empty" after deleting its keys, and "uprobe N"
 * (N = 1000 set in .bss before load + the calls the uprobe saw). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libbpf-wasm.h"
#include "upstream.h"
#include "upstream.skel.h"
#include "trace_helpers.h"

static int received;

static int handle_event(void *ctx, void *data, size_t data_sz)
{
	const struct event *e = data;

	printf("event %u %u %s\n", e->pid, e->seq, e->comm);
	fflush(stdout);
	received++;
	return 0;
}

/* walk, print and delete every histogram (upstream runqlat's way) */
static int print_hists(struct bpf_map *hists)
{
	int err, fd = bpf_map__fd(hists);
	__u32 lookup_key = -2, next_key;
	struct hist hist;

	while (!bpf_map_get_next_key(fd, &lookup_key, &next_key)) {
		err = bpf_map_lookup_elem(fd, &next_key, &hist);
		if (err < 0) {
			printf("error lookup %d\n", err);
			return err;
		}
		printf("pid = %u %s\n", next_key, hist.comm);
		print_log2_hist(hist.slots, MAX_SLOTS, "calls");
		lookup_key = next_key;
	}
	lookup_key = -2;
	while (!bpf_map_get_next_key(fd, &lookup_key, &next_key)) {
		err = bpf_map_delete_elem(fd, &next_key);
		if (err < 0) {
			printf("error delete %d\n", err);
			return err;
		}
		lookup_key = next_key;
	}
	/* a portable guest compares with -ENOENT on every runtime */
	err = bpf_map_get_next_key(fd, NULL, &next_key);
	printf(err == -ENOENT ? "hists empty\n" : "error walk %d\n", err);
	return err == -ENOENT ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct bpf_buffer *rb = NULL;
	struct upstream_bpf *skel;
	char target[256];
	__u32 zero = 0;
	int err, want;

	if (argc != 5) {
		fprintf(stderr, "usage: upstream TGID tp|raw LIBC|- N\n");
		return 2;
	}
	want = atoi(argv[4]);
	skel = upstream_bpf__open();
	if (!skel) {
		printf("error open\n");
		return 1;
	}
	skel->rodata->target_tgid = strtoul(argv[1], NULL, 0);
	skel->bss->uprobe_calls = 1000; /* .bss set before load reaches the kernel */
	if (strcmp(argv[2], "tp") == 0)
		bpf_program__set_autoload(skel->progs.handle_getppid_raw, false);
	else
		bpf_program__set_autoload(skel->progs.handle_getppid_tp, false);
	if (strcmp(argv[3], "-") == 0) { /* a runtime without uprobe targets */
		bpf_program__set_autoload(skel->progs.count_libc_getppid, false);
	} else {
		snprintf(target, sizeof(target), "%s:getppid", argv[3]);
		bpf_set_prog_attach_target(skel->progs.count_libc_getppid, target);
	}

	err = upstream_bpf__load(skel);
	if (err) {
		printf("error load %d\n", err);
		goto cleanup;
	}
	err = upstream_bpf__attach(skel);
	if (err) {
		printf("error attach %d\n", err);
		goto cleanup;
	}
	rb = bpf_buffer__open(skel->maps.rb, handle_event, NULL);
	if (!rb) {
		err = -errno;
		printf("error buffer_open %d\n", err);
		goto cleanup;
	}
	printf("ready\n");
	fflush(stdout);
	while (received < want) {
		err = bpf_buffer__poll(rb, 100);
		if (err == -EINTR) {
			err = 0;
			goto cleanup;
		}
		if (err < 0) {
			printf("error poll %d\n", err);
			goto cleanup;
		}
	}
	err = print_hists(skel->maps.hists);
	if (!err) {
		struct upstream_bpf__bss bss;

		err = bpf_map_lookup_elem(bpf_map__fd(skel->maps.bss), &zero, &bss);
		if (err < 0)
			printf("error bss %d\n", err);
		else
			printf("uprobe %u\n", bss.uprobe_calls);
	}
	fflush(stdout);

cleanup:
	bpf_buffer__free(rb);
	upstream_bpf__destroy(skel);
	return err < 0 ? 1 : 0;
}
