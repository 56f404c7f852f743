/* The user half (wasm32-wasi): every INTERVAL seconds (default 1), print
 * "PID CALLS" for each process that called openat() and clear the counts.
 * Usage: @NAME@.wasm [INTERVAL] */
#include <stdio.h>
#include <stdlib.h>
#include "@NAME@.skel.h" /* wasm-bpf gen skeleton @NAME@.bpf.o */

/* Walk the map, printing and deleting each entry; the previous key is
 * deleted only once the next one is known, so the walk never restarts. */
static int print_and_clear(int fd)
{
	unsigned int key, next;
	unsigned long long calls;
	int have_key = 0, err;

	while ((err = bpf_map_get_next_key(fd, have_key ? &key : NULL, &next)) == 0) {
		if (bpf_map_lookup_elem(fd, &next, &calls) == 0)
			printf("%-7u %llu\n", next, calls);
		if (have_key)
			bpf_map_delete_elem(fd, &key);
		key = next;
		have_key = 1;
	}
	if (have_key)
		bpf_map_delete_elem(fd, &key);
	fflush(stdout);
	return err == -ENOENT ? 0 : err; /* -ENOENT: past the last key */
}

static int no_sample(void *ctx, void *data, size_t size)
{
	return 0;
}

int main(int argc, char **argv)
{
	int interval = argc > 1 ? atoi(argv[1]) : 1;
	struct @NAME@_bpf *skel;
	struct bpf_buffer *tick = NULL;
	int err, fd;

	if (interval <= 0 || interval > 86400) {
		fprintf(stderr, "usage: %s [INTERVAL_SECONDS]\n", argv[0]);
		return 2;
	}
	skel = @NAME@_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "cannot load the BPF object: %d\n", -errno);
		return 1;
	}
	err = @NAME@_bpf__attach(skel);
	if (err < 0) {
		fprintf(stderr, "cannot attach the BPF programs: %d\n", err);
		goto cleanup;
	}
	fd = wasm_bpf_map_fd(skel->obj, "counts");
	tick = bpf_buffer__open(skel->obj, "tick", no_sample, NULL);
	if (fd < 0 || !tick) {
		err = fd < 0 ? fd : -errno;
		fprintf(stderr, "cannot open the maps: %d\n", err);
		goto cleanup;
	}
	printf("%-7s %s\n", "PID", "CALLS");
	fflush(stdout);
	for (;;) {
		err = wasm_bpf_sleep_ms(tick, interval * 1000);
		if (err == -EINTR) { /* Ctrl-C, SIGTERM or --duration */
			err = 0;
			break;
		}
		if (err < 0 || (err = print_and_clear(fd)) < 0) {
			fprintf(stderr, "cannot read the map counts: %d\n", err);
			break;
		}
	}
cleanup:
	bpf_buffer__free(tick);
	@NAME@_bpf__destroy(skel);
	return err < 0 ? 1 : 0;
}
