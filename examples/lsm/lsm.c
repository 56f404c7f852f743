// SPDX-License-Identifier: MIT
/* lsm: wasm-bpf guest that forbids rmdir of directories called NAME while
 * it runs and prints each refusal. Usage: lsm [-c COUNT] [-h] NAME */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "wasm_bpf.h"
#include "example_util.h" /* ../common: argument checks, poll loops */
#include "lsm.h"
#include "lsm.skel.h" /* lsm_bpf_obj[], lsm_bpf_obj_len */

static long max_events, seen;

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Deny rmdir of every directory named NAME (BPF LSM).\n"
		"\n"
		"USAGE: %s [-c COUNT] [-h] NAME\n"
		"  NAME      directory name (last path component, 1..%d bytes,\n"
		"            no '/')\n"
		"  -c COUNT  exit (status 0) after COUNT denials\n"
		"  -h        show this help\n",
		prog, DIR_NAME_LEN - 1);
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = data;
	char comm[TASK_COMM_LEN + 1], name[DIR_NAME_LEN];

	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	memcpy(comm, e->comm, TASK_COMM_LEN);
	comm[TASK_COMM_LEN] = '\0';
	memcpy(name, e->name, DIR_NAME_LEN);
	name[DIR_NAME_LEN - 1] = '\0';
	printf("%s rmdir %s by %s (%d)\n", e->denied ? "DENIED" : "ALLOWED",
	       name, comm, e->pid);
	fflush(stdout);
	seen++;
	return 0;
}

int main(int argc, char **argv)
{
	char dir_name[DIR_NAME_LEN];
	struct bpf_buffer *rb = NULL;
	struct bpf_object *obj;
	const char *name;
	int opt, err = 0;

	while ((opt = getopt(argc, argv, "c:h")) != -1) {
		switch (opt) {
		case 'c':
			if (example_parse_long(optarg, 0, LONG_MAX, &max_events))
				return example_invalid(usage, argv[0], "count",
						       optarg);
			break;
		default:
			return example_help_or_usage(usage, argv[0], opt);
		}
	}
	if (argc - optind != 1) {
		usage(stderr, argv[0]);
		return 1;
	}
	name = argv[optind];
	if (!*name || strlen(name) >= DIR_NAME_LEN || strchr(name, '/'))
		return example_invalid(usage, argv[0], "directory name", name);
	memset(dir_name, 0, sizeof(dir_name));
	strcpy(dir_name, name);
	if (example_set_rodata(lsm_bpf_obj, lsm_bpf_obj_len, "dir_name",
			       dir_name, sizeof(dir_name)))
		return 1;

	obj = example_load(lsm_bpf_obj, lsm_bpf_obj_len);
	if (!obj)
		return 1;
	err = wasm_bpf_attach_program(obj, "deny_rmdir", NULL);
	if (err < 0) {
		fprintf(stderr,
			"Failed to attach deny_rmdir: %d (is \"bpf\" in "
			"/sys/kernel/security/lsm?)\n",
			err);
		goto cleanup;
	}
	rb = bpf_buffer__open(obj, "rb", handle_event, NULL);
	if (!rb) {
		err = -errno;
		fprintf(stderr, "Failed to create ring buffer: %d\n", err);
		goto cleanup;
	}

	printf("Denying rmdir of directories named \"%s\"... Hit Ctrl-C to "
	       "end.\n",
	       name);
	fflush(stdout);

	err = example_poll_events(rb, "ring", &seen, max_events);
	if (err == -EINTR) /* Ctrl-C / SIGTERM: clean shutdown */
		err = 0;

cleanup:
	bpf_buffer__free(rb);
	wasm_bpf_object_close(obj);
	return err < 0 ? 1 : 0;
}
