/* SPDX-License-Identifier: MIT */
/*
 * wasm_bpf.h - C SDK for wasm-bpf guests (wasm32-wasi modules that load and
 * drive eBPF programs through the host ABI of the `wasm_bpf` import module).
 *
 * Header-only: include it from one or more translation units.
 *
 * Build a guest:
 *   clang-14 --target=wasm32-wasi --sysroot=/usr -O2 -I<this dir> \
 *       -Wl,--allow-undefined,--export-table -o guest.wasm guest.c
 * `--export-table` is REQUIRED when using bpf_buffer: the host calls the
 * sample callback through the exported `__indirect_function_table`.
 *
 * Typical use:
 *   static unsigned char obj_elf[] = { ...bytes of prog.bpf.o... };
 *   static int on_sample(void *ctx, void *data, size_t size) { ...; return 0; }
 *
 *   unsigned long long min_ns = 1000000;
 *   wasm_bpf_set_global(obj_elf, sizeof(obj_elf), ".rodata",
 *                       "min_duration_ns", &min_ns, sizeof(min_ns));
 *   struct bpf_object *obj = wasm_bpf_object_load(obj_elf, sizeof(obj_elf));
 *   if (!obj) return 1;
 *   if (wasm_bpf_attach_program(obj, "handle_exec", NULL) < 0) ...;
 *   struct bpf_buffer *rb = bpf_buffer__open(obj, "rb", on_sample, NULL);
 *   for (;;) {
 *       int err = bpf_buffer__poll(rb, 100);
 *       if (err == -EINTR) break;   // stop requested (Ctrl-C / SIGTERM)
 *       if (err < 0) { ...error...; break; }
 *   }
 *   bpf_buffer__free(rb);
 *   wasm_bpf_object_close(obj);
 *
 * Errors: every negative value returned by the helpers below is a negative
 * errno in the guest's own (WASI) numbering on every runtime, so compare with
 * the constants from <errno.h>: e.g. -ENOENT, -EFAULT, -EINVAL. This runner
 * already returns WASI numbers; the reference runtimes (C++, Rust) return
 * Linux ones (-2 for ENOENT), which the helpers translate (see
 * wasm_bpf_portable_err()). The raw imports return the runtime's own numbers.
 *
 * upstream's API (libbpf-wasm.h, `bpf_buffer__open(skel->maps.rb, cb, ctx)`)
 * is offered by libbpf-wasm.h on top of this header; one file uses one of
 * the two bpf_buffer APIs.
 * A poll that returns -EINTR means "stop requested": the runner got Ctrl-C
 * or SIGTERM; clean up (free buffers, close objects) and return from main.
 * A guest that keeps going is forcibly interrupted after a grace period.
 *
 * `.rodata`/`.data` globals (`const volatile` knobs in the BPF program) are
 * set by patching the embedded ELF image with wasm_bpf_set_global() BEFORE
 * wasm_bpf_object_load(); the image must be writable (not `const`).
 */
#ifndef WASM_BPF_H
#define WASM_BPF_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Raw host imports (module "wasm_bpf"); see ABI.md.                          */
/* Pointers are 32-bit offsets into the guest memory (i32).                   */
/* ------------------------------------------------------------------------ */

#define WASM_BPF_IMPORT(n) \
	__attribute__((import_module("wasm_bpf"), import_name(n)))

/* Open + load an ELF eBPF object held in guest memory. Handle, 0 on error. */
WASM_BPF_IMPORT("wasm_load_bpf_object")
uint64_t wasm_load_bpf_object(const void *obj_buf, int32_t obj_buf_sz);

/* Attach program `name` (C function name). attach_target NULL/"" = auto. */
WASM_BPF_IMPORT("wasm_attach_bpf_program")
int32_t wasm_attach_bpf_program(uint64_t obj, const char *name,
				const char *attach_target);

/* Poll ring/perf buffer map `fd`; calls table entry `sample_func` as
 * int (*)(void *ctx, void *data, size_t size) per sample, after copying
 * min(size, max_size) bytes to `data`. Returns #samples or -errno. */
WASM_BPF_IMPORT("wasm_bpf_buffer_poll")
int32_t wasm_bpf_buffer_poll(uint64_t obj, int32_t fd, int32_t sample_func,
			     void *ctx, void *data, int32_t max_size,
			     int32_t timeout_ms);

/* fd of the map called `name` in `obj`; negative if none. */
WASM_BPF_IMPORT("wasm_bpf_map_fd_by_name")
int32_t wasm_bpf_map_fd_by_name(uint64_t obj, const char *name);

/* BPF_MAP_* command on map `fd`: 1 lookup, 2 update, 3 delete, 4 next key. */
WASM_BPF_IMPORT("wasm_bpf_map_operate")
int32_t wasm_bpf_map_operate(int32_t fd, int32_t cmd, void *key, void *value,
			     void *next_key, uint64_t flags);

/* Destroy links, poller, maps and programs of `obj`. 0 on success. */
WASM_BPF_IMPORT("wasm_close_bpf_object")
int32_t wasm_close_bpf_object(uint64_t obj);

/* This runner only (imported only by a guest that calls it): hand `len`
 * bytes at `data` to the processor component called `name` (given with
 * `wasm-bpf run --with NAME=FILE`; the WIT world: `wasm-bpf sdk --wit`).
 * Returns the length of its answer (min(that, out_len) bytes are copied to
 * `out`: a longer answer is cut, as snprintf does), -ENOMSG if it answered
 * `none`, -ENOENT if no processor has that name, -EFAULT for a bad pointer.
 * A processor that traps ends the run (one line naming it). */
WASM_BPF_IMPORT("wasm_bpf_call")
int32_t wasm_bpf_call(const char *name, const void *data, int32_t len,
		      void *out, int32_t out_len);

/* ------------------------------------------------------------------------ */
/* Errno numbering: the same on every runtime                                 */
/* ------------------------------------------------------------------------ */

/* 1 when the host returns Linux errno values (the C++ and Rust reference
 * runtimes), 0 for WASI ones (this runner). Probed once: handle 0 is invalid
 * on every runtime, and its EINVAL is -22 in Linux's numbering, -28 in WASI's. */
static inline int wasm_bpf_host_errno_is_linux(void)
{
	static int linux_numbers = -1;

	if (linux_numbers < 0)
		linux_numbers = wasm_bpf_map_fd_by_name(0, "") == -22;
	return linux_numbers;
}

/* Linux errno -> the guest's <errno.h> (WASI) number; EIO when WASI lacks it. */
static inline int wasm_bpf__errno_from_linux(int e)
{
	switch (e) {
	case 1: return EPERM;
	case 2: return ENOENT;
	case 3: return ESRCH;
	case 4: return EINTR;
	case 5: return EIO;
	case 7: return E2BIG;
	case 9: return EBADF;
	case 11: return EAGAIN;
	case 12: return ENOMEM;
	case 13: return EACCES;
	case 14: return EFAULT;
	case 16: return EBUSY;
	case 17: return EEXIST;
	case 19: return ENODEV;
	case 22: return EINVAL;
	case 24: return EMFILE;
	case 28: return ENOSPC;
	case 34: return ERANGE;
	case 38: return ENOSYS;
	case 95: return ENOTSUP;
	case 110: return ETIMEDOUT;
	default: return EIO;
	}
}

/* A host function's result with a negative errno in the guest's own (WASI)
 * numbering, whichever runtime returned it: compare with -ENOENT, -EINTR, ... */
static inline int wasm_bpf_portable_err(int ret)
{
	if (ret >= 0 || !wasm_bpf_host_errno_is_linux())
		return ret;
	return -wasm_bpf__errno_from_linux(-ret);
}

/* ------------------------------------------------------------------------ */
/* Objects and programs                                                       */
/* ------------------------------------------------------------------------ */

struct bpf_object {
	uint64_t handle; /* opaque host handle, never 0 */
};

/* Open and load an eBPF ELF image (like libbpf's bpf_object__open_mem() +
 * bpf_object__load()). Returns NULL on failure (errno = EINVAL/ENOMEM). */
static inline struct bpf_object *wasm_bpf_object_load(const void *buf,
						      size_t sz)
{
	struct bpf_object *obj;
	uint64_t h;

	if (!buf || sz == 0 || sz > INT32_MAX) {
		errno = EINVAL;
		return NULL;
	}
	obj = (struct bpf_object *)malloc(sizeof(*obj));
	if (!obj) {
		errno = ENOMEM;
		return NULL;
	}
	h = wasm_load_bpf_object(buf, (int32_t)sz);
	if (h == 0) {
		free(obj);
		errno = EINVAL;
		return NULL;
	}
	obj->handle = h;
	return obj;
}

/* Close the object (detaches everything) and free it. NULL is a no-op. */
static inline int wasm_bpf_object_close(struct bpf_object *obj)
{
	int err;

	if (!obj)
		return 0;
	err = wasm_close_bpf_object(obj->handle);
	free(obj);
	return wasm_bpf_portable_err(err);
}

/* Attach program `prog_name`; `target` is NULL/"" for auto-attach from the
 * section name, a cgroup path for cgroup sections, an ifname for xdp and
 * socket (the runner opens a packet socket on it for the filter), and
 * IFNAME[:ingress|:egress] for tc/classifier. */
static inline int wasm_bpf_attach_program(struct bpf_object *obj,
					  const char *prog_name,
					  const char *target)
{
	if (!obj || !prog_name)
		return -EINVAL;
	return wasm_bpf_portable_err(
		wasm_attach_bpf_program(obj->handle, prog_name, target));
}

/* Map fd by map name (like bpf_map__fd(bpf_object__find_map_by_name())). */
static inline int wasm_bpf_map_fd(struct bpf_object *obj, const char *name)
{
	if (!obj || !name)
		return -EINVAL;
	return wasm_bpf_portable_err(wasm_bpf_map_fd_by_name(obj->handle, name));
}
#define bpf_object__map_fd wasm_bpf_map_fd

/* ------------------------------------------------------------------------ */
/* Map operations (libbpf's bpf.h names). Key/value sizes are the map's.     */
/* ------------------------------------------------------------------------ */

#ifndef BPF_ANY
#define BPF_ANY 0     /* create new element or update existing */
#define BPF_NOEXIST 1 /* create new element if it didn't exist */
#define BPF_EXIST 2   /* update existing element */
#define BPF_F_LOCK 4
#endif

#define WASM_BPF_MAP_LOOKUP_ELEM 1
#define WASM_BPF_MAP_UPDATE_ELEM 2
#define WASM_BPF_MAP_DELETE_ELEM 3
#define WASM_BPF_MAP_GET_NEXT_KEY 4

static inline int bpf_map_lookup_elem(int fd, const void *key, void *value)
{
	return wasm_bpf_portable_err(wasm_bpf_map_operate(
		fd, WASM_BPF_MAP_LOOKUP_ELEM, (void *)key, value, NULL, 0));
}

static inline int bpf_map_update_elem(int fd, const void *key,
				      const void *value, uint64_t flags)
{
	return wasm_bpf_portable_err(wasm_bpf_map_operate(
		fd, WASM_BPF_MAP_UPDATE_ELEM, (void *)key, (void *)value, NULL,
		flags));
}

static inline int bpf_map_delete_elem(int fd, const void *key)
{
	return wasm_bpf_portable_err(wasm_bpf_map_operate(
		fd, WASM_BPF_MAP_DELETE_ELEM, (void *)key, NULL, NULL, 0));
}

/* key == NULL gets the first key; -ENOENT after the last one (on every
 * runtime: the map helpers return WASI errno numbers, see above). */
static inline int bpf_map_get_next_key(int fd, const void *key, void *next_key)
{
	return wasm_bpf_portable_err(wasm_bpf_map_operate(
		fd, WASM_BPF_MAP_GET_NEXT_KEY, (void *)key, NULL, next_key, 0));
}

/* ------------------------------------------------------------------------ */
/* Ring buffer / perf buffer                                                  */
/* ------------------------------------------------------------------------ */

/* Sample callback: `data` points at the guest scratch buffer holding
 * min(size, buffer size) bytes of the sample; `size` is the sample size.
 * Return 0 to continue; the value is passed back to the host. */
typedef int (*bpf_buffer_sample_fn)(void *ctx, void *data, size_t size);

#ifndef WASM_BPF_BUFFER_SIZE
#define WASM_BPF_BUFFER_SIZE (256 * 1024) /* default scratch buffer size */
#endif

/* Both bpf_buffer APIs: `struct_size` zeroed bytes, and a `data_size`
 * scratch buffer in *data; NULL (errno ENOMEM) when either fails. */
static inline void *wasm_bpf__buffer_alloc(size_t struct_size,
					   size_t data_size, void **data)
{
	void *b = calloc(1, struct_size);

	*data = b ? malloc(data_size) : NULL;
	if (!*data) {
		free(b);
		errno = ENOMEM;
		return NULL;
	}
	return b;
}

/* Poll ring/perf buffer map `fd` of object `handle` into `data` (both
 * bpf_buffer APIs); the result with a portable errno. */
static inline int wasm_bpf__poll(uint64_t handle, int fd,
				 bpf_buffer_sample_fn fn, void *ctx, void *data,
				 size_t size, int timeout_ms)
{
	return wasm_bpf_portable_err(wasm_bpf_buffer_poll(
		handle, fd, (int32_t)(uintptr_t)fn, ctx, data, (int32_t)size,
		timeout_ms));
}

/* libbpf-wasm.h defines upstream's bpf_buffer API (by map) instead. */
#ifndef WASM_BPF_LIBBPF_API

struct bpf_buffer {
	struct bpf_object *obj;
	int fd;                  /* map fd (RINGBUF or PERF_EVENT_ARRAY) */
	bpf_buffer_sample_fn fn; /* passed to the host as its table index */
	void *ctx;
	void *data; /* guest-side scratch buffer */
	size_t size;
};

/* Open the ring/perf buffer map `map_name` of `obj` with a scratch buffer of
 * `size` bytes. Returns NULL on error (errno set). */
static inline struct bpf_buffer *
bpf_buffer__open_sized(struct bpf_object *obj, const char *map_name,
		       bpf_buffer_sample_fn sample_cb, void *ctx, size_t size)
{
	struct bpf_buffer *b;
	void *data;
	int fd;

	if (!obj || !map_name || !sample_cb || size == 0 || size > INT32_MAX) {
		errno = EINVAL;
		return NULL;
	}
	fd = wasm_bpf_map_fd_by_name(obj->handle, map_name);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	b = (struct bpf_buffer *)wasm_bpf__buffer_alloc(sizeof(*b), size, &data);
	if (!b)
		return NULL;
	b->data = data;
	b->obj = obj;
	b->fd = fd;
	b->fn = sample_cb;
	b->ctx = ctx;
	b->size = size;
	return b;
}

/* Same with the default WASM_BPF_BUFFER_SIZE scratch buffer. */
static inline struct bpf_buffer *bpf_buffer__open(struct bpf_object *obj,
						  const char *map_name,
						  bpf_buffer_sample_fn sample_cb,
						  void *ctx)
{
	return bpf_buffer__open_sized(obj, map_name, sample_cb, ctx,
				      WASM_BPF_BUFFER_SIZE);
}

/* Wait up to timeout_ms for samples and deliver them to the callback.
 * Returns the number of samples consumed (>= 0) or a negative errno;
 * -EINTR means "stop requested: clean up and return". */
static inline int bpf_buffer__poll(struct bpf_buffer *b, int timeout_ms)
{
	if (!b)
		return -EINVAL;
	return wasm_bpf__poll(b->obj->handle, b->fd, b->fn, b->ctx, b->data,
			      b->size, timeout_ms);
}

/* Interruptible sleep: wait timeout_ms on `idle`, a ring/perf buffer that
 * nothing is submitted to (a guest has no other way to sleep that a stop
 * request can cut short). Returns 0 after the wait, -EINTR when a stop was
 * requested (Ctrl-C / SIGTERM: clean up and return), or another negative
 * errno. A sample that does arrive is delivered and ends the wait early. */
static inline int wasm_bpf_sleep_ms(struct bpf_buffer *idle, int timeout_ms)
{
	int err = bpf_buffer__poll(idle, timeout_ms);

	return err < 0 ? err : 0;
}

/* Free the guest-side buffer (the host poller lives until the object is
 * closed). NULL is a no-op. */
static inline void bpf_buffer__free(struct bpf_buffer *b)
{
	if (!b)
		return;
	free(b->data);
	free(b);
}
#endif /* !WASM_BPF_LIBBPF_API */

/* ------------------------------------------------------------------------ */
/* Patch a global of the embedded ELF before loading                          */
/* ------------------------------------------------------------------------ */

static inline uint64_t wasm_bpf__rd(const unsigned char *p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = n - 1; i >= 0; i--) /* ELF64 little-endian (EM_BPF, x86) */
		v = (v << 8) | p[i];
	return v;
}

/* In-bounds check: [off, off+len) within [0, size). */
static inline int wasm_bpf__in(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

/*
 * Write `size` bytes of `value` into the global `symbol` that lives in
 * section `section` (".rodata", ".data", ".rodata.xxx", ...) of the ELF64
 * relocatable object `elf` (elf_size bytes, writable memory).
 * Returns 0, or -EINVAL (not an ELF64 LE object / truncated / symbol larger
 * than its storage / section without file bytes such as .bss) or -ENOENT
 * (no such section or symbol). Every offset is bounds-checked.
 */
static inline int wasm_bpf_set_global(void *elf, size_t elf_size,
				      const char *section, const char *symbol,
				      const void *value, size_t size)
{
	unsigned char *e = (unsigned char *)elf;
	uint64_t shoff, shnum, shentsize, shstrndx, i;
	uint64_t str_off, str_size, sec_idx = 0, sym_idx = 0;
	const unsigned char *sh, *shstr;
	size_t name_len;

	if (!e || !section || !symbol || (!value && size))
		return -EINVAL;
	if (elf_size < 64 || memcmp(e, "\177ELF", 4) != 0 ||
	    e[4] != 2 /* ELFCLASS64 */ || e[5] != 1 /* ELFDATA2LSB */)
		return -EINVAL;
	shoff = wasm_bpf__rd(e + 0x28, 8);
	shentsize = wasm_bpf__rd(e + 0x3a, 2);
	shnum = wasm_bpf__rd(e + 0x3c, 2);
	shstrndx = wasm_bpf__rd(e + 0x3e, 2);
	if (shentsize < 64 || shnum == 0 || shstrndx >= shnum ||
	    !wasm_bpf__in(shoff, shnum * shentsize, elf_size))
		return -EINVAL;

#define WASM_BPF__SH(idx) (e + shoff + (idx) * shentsize)
	shstr = WASM_BPF__SH(shstrndx);
	str_off = wasm_bpf__rd(shstr + 0x18, 8);
	str_size = wasm_bpf__rd(shstr + 0x20, 8);
	if (!wasm_bpf__in(str_off, str_size, elf_size))
		return -EINVAL;

	/* find the target section and the symbol table */
	name_len = strlen(section);
	for (i = 1; i < shnum; i++) {
		uint64_t nm;

		sh = WASM_BPF__SH(i);
		nm = wasm_bpf__rd(sh, 4);
		if (!sec_idx && nm < str_size &&
		    name_len < str_size - nm &&
		    memcmp(e + str_off + nm, section, name_len + 1) == 0)
			sec_idx = i;
		if (!sym_idx && wasm_bpf__rd(sh + 4, 4) == 2 /* SHT_SYMTAB */)
			sym_idx = i;
	}
	if (!sec_idx || !sym_idx)
		return -ENOENT;

	{
		const unsigned char *tsec = WASM_BPF__SH(sec_idx);
		const unsigned char *ssec = WASM_BPF__SH(sym_idx);
		uint64_t t_type = wasm_bpf__rd(tsec + 4, 4);
		uint64_t t_off = wasm_bpf__rd(tsec + 0x18, 8);
		uint64_t t_size = wasm_bpf__rd(tsec + 0x20, 8);
		uint64_t s_off = wasm_bpf__rd(ssec + 0x18, 8);
		uint64_t s_size = wasm_bpf__rd(ssec + 0x20, 8);
		uint64_t s_link = wasm_bpf__rd(ssec + 0x28, 4);
		uint64_t s_ent = wasm_bpf__rd(ssec + 0x38, 8);
		uint64_t n_off, n_size, j;
		const unsigned char *strsec;

		if (t_type == 8 /* SHT_NOBITS */ ||
		    !wasm_bpf__in(t_off, t_size, elf_size))
			return -EINVAL;
		if (s_ent < 24 || s_link == 0 || s_link >= shnum ||
		    !wasm_bpf__in(s_off, s_size, elf_size))
			return -EINVAL;
		strsec = WASM_BPF__SH(s_link);
		n_off = wasm_bpf__rd(strsec + 0x18, 8);
		n_size = wasm_bpf__rd(strsec + 0x20, 8);
		if (!wasm_bpf__in(n_off, n_size, elf_size))
			return -EINVAL;

		name_len = strlen(symbol);
		for (j = 0; j + s_ent <= s_size; j += s_ent) {
			const unsigned char *sym = e + s_off + j;
			uint64_t st_name = wasm_bpf__rd(sym, 4);
			uint64_t st_shndx = wasm_bpf__rd(sym + 6, 2);
			uint64_t st_value = wasm_bpf__rd(sym + 8, 8);
			uint64_t st_size = wasm_bpf__rd(sym + 16, 8);

			if (st_shndx != sec_idx || st_name >= n_size ||
			    name_len >= n_size - st_name ||
			    memcmp(e + n_off + st_name, symbol,
				   name_len + 1) != 0)
				continue;
			if ((st_size && size > st_size) ||
			    !wasm_bpf__in(st_value, size, t_size))
				return -EINVAL;
			if (size)
				memcpy(e + t_off + st_value, value, size);
			return 0;
		}
	}
#undef WASM_BPF__SH
	return -ENOENT;
}

/* For generated skeletons: write `size` bytes of a guest-side `.bss` image
 * to its map (`section`, e.g. ".bss") after load when any byte is set.
 * 0 or a negative errno. */
static inline int wasm_bpf__push_bss(struct bpf_object *obj,
				     const char *section, const void *buf,
				     size_t size)
{
	const unsigned char *p = (const unsigned char *)buf;
	uint32_t key = 0;
	size_t i;
	int fd;

	for (i = 0; i < size && !p[i]; i++)
		;
	if (i == size)
		return 0;
	fd = wasm_bpf_map_fd(obj, section);
	if (fd < 0)
		return fd;
	return bpf_map_update_elem(fd, &key, buf, BPF_ANY);
}

/*
 * Whether the program `prog_name` (its C function name) of the ELF image is
 * loaded, like libbpf's bpf_program__set_autoload(); call before
 * wasm_bpf_object_load(). A program that is not loaded is not attached
 * either, so e.g. one of two alternative programs (tp_btf / raw_tp) can be
 * chosen at run time. How: libbpf only treats sections flagged executable
 * as programs, so the flag of the program's section is cleared (or set back):
 * every program of that section goes with it (one per SEC() is the norm).
 * Returns 0, -EINVAL (not an ELF64 LE object, or a symbol without a valid
 * section) or -ENOENT (no such function symbol).
 */
static inline int wasm_bpf_set_autoload(void *elf, size_t elf_size,
					const char *prog_name, int autoload)
{
	unsigned char *e = (unsigned char *)elf;
	uint64_t shoff, shnum, shentsize, i, j;
	size_t name_len;

	if (!e || !prog_name || elf_size < 64 || memcmp(e, "\177ELF", 4) != 0 ||
	    e[4] != 2 || e[5] != 1)
		return -EINVAL;
	shoff = wasm_bpf__rd(e + 0x28, 8);
	shentsize = wasm_bpf__rd(e + 0x3a, 2);
	shnum = wasm_bpf__rd(e + 0x3c, 2);
	if (shentsize < 64 || shnum == 0 ||
	    !wasm_bpf__in(shoff, shnum * shentsize, elf_size))
		return -EINVAL;
	name_len = strlen(prog_name);
	for (i = 1; i < shnum; i++) {
		const unsigned char *ssec = e + shoff + i * shentsize;
		uint64_t s_off, s_size, s_link, s_ent, n_off, n_size;
		const unsigned char *strsec;

		if (wasm_bpf__rd(ssec + 4, 4) != 2 /* SHT_SYMTAB */)
			continue;
		s_off = wasm_bpf__rd(ssec + 0x18, 8);
		s_size = wasm_bpf__rd(ssec + 0x20, 8);
		s_link = wasm_bpf__rd(ssec + 0x28, 4);
		s_ent = wasm_bpf__rd(ssec + 0x38, 8);
		if (s_ent < 24 || s_link == 0 || s_link >= shnum ||
		    !wasm_bpf__in(s_off, s_size, elf_size))
			return -EINVAL;
		strsec = e + shoff + s_link * shentsize;
		n_off = wasm_bpf__rd(strsec + 0x18, 8);
		n_size = wasm_bpf__rd(strsec + 0x20, 8);
		if (!wasm_bpf__in(n_off, n_size, elf_size))
			return -EINVAL;
		for (j = 0; j + s_ent <= s_size; j += s_ent) {
			const unsigned char *sym = e + s_off + j;
			uint64_t st_name = wasm_bpf__rd(sym, 4);
			uint64_t st_shndx = wasm_bpf__rd(sym + 6, 2);
			unsigned char *flags;

			if ((sym[4] & 0xf) != 2 /* STT_FUNC */ ||
			    st_name >= n_size || name_len >= n_size - st_name ||
			    memcmp(e + n_off + st_name, prog_name, name_len + 1))
				continue;
			if (st_shndx == 0 || st_shndx >= shnum)
				return -EINVAL;
			flags = e + shoff + st_shndx * shentsize + 8;
			if (autoload)
				flags[0] |= 0x4; /* SHF_EXECINSTR */
			else
				flags[0] &= (unsigned char)~0x4;
			return 0;
		}
	}
	return -ENOENT;
}

#ifdef __cplusplus
}
#endif

#endif /* WASM_BPF_H */
