/* SPDX-License-Identifier: MIT */
/*
 * libbpf-wasm.h - upstream wasm-bpf's guest API (eunomia-bpf/wasm-bpf,
 * wasm-sdk/c/libbpf-wasm.h) on top of this project's SDK (wasm_bpf.h), so
 * guests written for upstream build unchanged:
 *
 *   struct bootstrap_bpf *skel = bootstrap_bpf__open();
 *   skel->rodata->min_duration_ns = ...;
 *   bootstrap_bpf__load(skel);
 *   bootstrap_bpf__attach(skel);
 *   struct bpf_buffer *rb = bpf_buffer__open(skel->maps.rb, handle_event, NULL);
 *   while (bpf_buffer__poll(rb, 100) >= 0) ...;
 *   int fd = bpf_map__fd(skel->maps.hists);  // then bpf_map_lookup_elem(fd, ...)
 *
 * Skeletons from `wasm-bpf gen skeleton` give `struct bpf_map *` maps and
 * `struct bpf_program *` programs when this header is included before them
 * (or when generated with `--api libbpf`, which includes it for you).
 *
 * What differs from upstream, on purpose:
 * - every negative errno is in the guest's own (WASI) numbering on every
 *   runtime (see wasm_bpf_portable_err() in wasm_bpf.h): compare with
 *   -ENOENT, -EINTR from <errno.h>;
 * - bpf_program__set_autoload(prog, false) before load really keeps the
 *   program out of the kernel (upstream only records it);
 * - a sample is delivered whole up to WASM_BPF_BUFFER_SIZE bytes (upstream:
 *   4096); bpf_buffer__free(NULL) is a no-op.
 */
#ifndef _LIBBPF_WASM_H
#define _LIBBPF_WASM_H

#if defined(WASM_BPF_H) && !defined(WASM_BPF_LIBBPF_API)
#error "libbpf-wasm.h after wasm_bpf.h: a file uses upstream's bpf_buffer API (libbpf-wasm.h) or the native one (wasm_bpf.h), not both"
#endif
#define WASM_BPF_LIBBPF_API 1
#include "wasm_bpf.h"

#include <stdbool.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define POLL_TIMEOUT_MS 100 /* bpf_buffer__poll() with a timeout <= 0 */

/* upstream's name for an object handle (the host's opaque i64) */
typedef uint64_t bpf_object_skel;

struct bpf_map {
	bpf_object_skel obj_ptr; /* 0 until the skeleton is loaded */
	char name[64];
};

struct bpf_program {
	bpf_object_skel obj_ptr; /* 0 until the skeleton is loaded */
	char name[64];
	char attach_target[128]; /* "" = from the section name */
	bool autoload;
};

/* --------------------------------------------------------------- programs */

/* Where the skeleton's attach() attaches `prog`: a cgroup path (sockops,
 * cgroup sections), an interface (xdp, socket), IFNAME[:ingress|:egress]
 * (tc), BINARY:FUNCTION (uprobes). NULL or "" = from the section name. */
static inline void bpf_set_prog_attach_target(struct bpf_program *prog,
					      const char *attach_target)
{
	if (!prog)
		return;
	prog->attach_target[0] = '\0';
	if (attach_target)
		strncat(prog->attach_target, attach_target,
			sizeof(prog->attach_target) - 1);
}

/* Load (and attach) `prog` or not; before the skeleton's load(), as in
 * libbpf (-EINVAL afterwards). */
static inline int bpf_program__set_autoload(struct bpf_program *prog,
					    bool autoload)
{
	if (!prog || prog->obj_ptr)
		return -EINVAL;
	prog->autoload = autoload;
	return 0;
}

static inline bool bpf_program__autoload(const struct bpf_program *prog)
{
	return prog && prog->autoload;
}

static inline const char *bpf_program__name(const struct bpf_program *prog)
{
	return prog ? prog->name : NULL;
}

/* ------------------------------------------------------------------- maps */

static inline int bpf_map__fd(const struct bpf_map *map)
{
	if (!map || !map->obj_ptr)
		return -EINVAL;
	return wasm_bpf_portable_err(
		wasm_bpf_map_fd_by_name(map->obj_ptr, map->name));
}

static inline const char *bpf_map__name(const struct bpf_map *map)
{
	return map ? map->name : NULL;
}

/* libbpf's helper: ret, or -errno when ret < 0 */
static inline int libbpf_err_errno(int ret)
{
	return ret < 0 ? -errno : ret;
}

/* bpf_map_lookup_elem/update/delete/get_next_key come from wasm_bpf.h */
static inline int bpf_map_lookup_elem_flags(int fd, const void *key,
					    void *value, uint64_t flags)
{
	return wasm_bpf_portable_err(wasm_bpf_map_operate(
		fd, WASM_BPF_MAP_LOOKUP_ELEM, (void *)key, value, NULL, flags));
}

static inline int bpf_map_delete_elem_flags(int fd, const void *key,
					    uint64_t flags)
{
	return wasm_bpf_portable_err(wasm_bpf_map_operate(
		fd, WASM_BPF_MAP_DELETE_ELEM, (void *)key, NULL, NULL, flags));
}

/* the map commands the host serves (the kernel's numbers) */
enum bpf_cmd {
	BPF_MAP_LOOKUP_ELEM = 1,
	BPF_MAP_UPDATE_ELEM = 2,
	BPF_MAP_DELETE_ELEM = 3,
	BPF_MAP_GET_NEXT_KEY = 4,
};

/* ------------------------------------------------- ring and perf buffers */

struct bpf_buffer {
	struct bpf_map *events;
	int fd;
	void *ctx;
	bpf_buffer_sample_fn sample_fn;
	void *data; /* scratch the host copies each sample to */
	size_t size;
};

/* A buffer on ring/perf buffer map `events` (loaded); bpf_buffer__open()
 * is the usual way. NULL on error (errno set). */
static inline struct bpf_buffer *bpf_buffer__new(struct bpf_map *events)
{
	struct bpf_buffer *b;
	void *data;
	int fd = bpf_map__fd(events);

	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	b = (struct bpf_buffer *)wasm_bpf__buffer_alloc(
		sizeof(*b), WASM_BPF_BUFFER_SIZE, &data);
	if (!b)
		return NULL;
	b->data = data;
	b->events = events;
	b->fd = fd;
	b->size = WASM_BPF_BUFFER_SIZE;
	return b;
}

/* Deliver the samples of ring/perf buffer map `events` to
 * sample_cb(ctx, data, size) from bpf_buffer__poll(). NULL on error. */
static inline struct bpf_buffer *bpf_buffer__open(struct bpf_map *events,
						  bpf_buffer_sample_fn sample_cb,
						  void *ctx)
{
	struct bpf_buffer *b;

	if (!sample_cb) {
		errno = EINVAL;
		return NULL;
	}
	b = bpf_buffer__new(events);
	if (b) {
		b->sample_fn = sample_cb;
		b->ctx = ctx;
	}
	return b;
}

/* Wait up to timeout_ms (POLL_TIMEOUT_MS when <= 0) and deliver samples.
 * The number delivered, or a negative errno: -EINTR = stop requested. */
static inline int bpf_buffer__poll(struct bpf_buffer *b, int timeout_ms)
{
	if (!b || !b->events || !b->sample_fn)
		return -EINVAL;
	if (timeout_ms <= 0)
		timeout_ms = POLL_TIMEOUT_MS;
	return wasm_bpf__poll(b->events->obj_ptr, b->fd, b->sample_fn, b->ctx,
			      b->data, b->size, timeout_ms);
}

/* the name upstream's execve example polls with */
static inline int perf_buffer__poll(struct bpf_buffer *b, int timeout_ms)
{
	return bpf_buffer__poll(b, timeout_ms);
}

static inline void bpf_buffer__free(struct bpf_buffer *b)
{
	if (!b)
		return;
	free(b->data);
	free(b);
}

/* ----------------------------------------- used by generated skeletons */

static inline struct bpf_map *wasm_bpf__skel_map(const char *name)
{
	struct bpf_map *m = (struct bpf_map *)calloc(1, sizeof(*m));

	if (m)
		strncat(m->name, name, sizeof(m->name) - 1);
	return m;
}

static inline struct bpf_program *wasm_bpf__skel_prog(const char *name)
{
	struct bpf_program *p = (struct bpf_program *)calloc(1, sizeof(*p));

	if (p) {
		strncat(p->name, name, sizeof(p->name) - 1);
		p->autoload = true;
	}
	return p;
}

/* attach() of a skeleton: loaded programs only, to their target */
static inline int wasm_bpf__skel_attach(struct bpf_object *obj,
					const struct bpf_program *prog)
{
	if (!prog->autoload)
		return 0;
	return wasm_bpf_attach_program(
		obj, prog->name, prog->attach_target[0] ? prog->attach_target : NULL);
}

#ifdef __cplusplus
}
#endif

#endif /* _LIBBPF_WASM_H */
