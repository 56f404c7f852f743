/* SPDX-License-Identifier: MIT */
/*
 * wasm_bpf_processor.h - write a wasm-bpf processor component in C.
 *
 * A processor exports the world `processor` of the WIT package
 * `wasm-bpf:processor@0.1.0` (`wasm-bpf sdk --wit` prints its directory): a guest hands
 * it events through wasm_bpf_call(), or the runner runs it on each sample
 * of a buffer before the guest's callback (`wasm-bpf run --filter`).
 * This header is the canonical-ABI glue of that world: include it in ONE
 * translation unit and define the two functions below.
 *
 * Build (no WASI imports: a processor has no rights of its own):
 *   clang-14 --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=reactor \
 *       -I<this dir> -o core.wasm proc.c
 *   wasm-tools component embed $(wasm-bpf sdk --wit) --world processor core.wasm -o embedded.wasm
 *   wasm-tools component new embedded.wasm -o proc.wasm
 */
#ifndef WASM_BPF_PROCESSOR_H
#define WASM_BPF_PROCESSOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* What wasm_bpf_process() decided about one event. */
#define WASM_BPF_DROP 0    /* none: a filter drops it; a call returns -ENODATA */
#define WASM_BPF_KEEP 1    /* some(the event's bytes, unchanged) */
#define WASM_BPF_REPLACE 2 /* some(*out): malloc'd by you, freed after the host copied it */

/* Called once before any event with the arguments of `--with-arg NAME=ARG`.
 * Return 0, or set *error to a static message and return non-zero: the run
 * stops before the guest starts, with that message. */
int wasm_bpf_processor_init(int argc, const char *const *argv, const char **error);

/* Called per event; `event` is valid only during the call. */
int wasm_bpf_process(const uint8_t *event, size_t len, uint8_t **out, size_t *out_len);

/* ---- canonical ABI glue (the world's core exports) ------------------------ */

__attribute__((export_name("cabi_realloc")))
void *cabi_realloc(void *ptr, size_t old_size, size_t align, size_t new_size)
{
	(void)old_size;
	(void)align; /* malloc's 16-byte alignment covers every type of the world */
	if (new_size == 0)
		return (void *)align;
	return realloc(ptr, new_size);
}

/* option<list<u8>> / result<_, string>: tag byte, then (ptr, len). */
static struct { uint8_t tag; uint8_t *ptr; size_t len; } wasm_bpf__ret;
static uint8_t *wasm_bpf__in;

__attribute__((export_name("process")))
void *wasm_bpf__export_process(uint8_t *event, size_t len)
{
	uint8_t *out = NULL;
	size_t out_len = 0;
	int verdict = wasm_bpf_process(event, len, &out, &out_len);

	wasm_bpf__in = event;
	wasm_bpf__ret.tag = verdict != WASM_BPF_DROP;
	if (verdict == WASM_BPF_REPLACE) {
		wasm_bpf__ret.ptr = out;
		wasm_bpf__ret.len = out_len;
	} else {
		wasm_bpf__ret.ptr = event;
		wasm_bpf__ret.len = verdict == WASM_BPF_KEEP ? len : 0;
	}
	return &wasm_bpf__ret;
}

/* After the host copied the result: free the event and the output. */
__attribute__((export_name("cabi_post_process")))
void wasm_bpf__post_process(void *ret)
{
	(void)ret;
	if (wasm_bpf__ret.tag && wasm_bpf__ret.ptr != wasm_bpf__in)
		free(wasm_bpf__ret.ptr);
	if ((uintptr_t)wasm_bpf__in > 16) /* an empty list may come as a dangling pointer */
		free(wasm_bpf__in);
	wasm_bpf__in = NULL;
}

struct wasm_bpf__str { const char *ptr; size_t len; };

__attribute__((export_name("init")))
void *wasm_bpf__export_init(struct wasm_bpf__str *args, size_t n)
{
	const char **argv = calloc(n + 1, sizeof(*argv));
	const char *error = NULL;
	size_t i;
	int err;

	for (i = 0; argv && i < n; i++) { /* strings arrive without a NUL */
		char *s = malloc(args[i].len + 1);
		if (s) {
			memcpy(s, args[i].ptr, args[i].len);
			s[args[i].len] = 0;
		}
		argv[i] = s ? s : "";
	}
	err = argv ? wasm_bpf_processor_init((int)n, argv, &error) : 1;
	if (err && !error)
		error = argv ? "initialization failed" : "out of memory";
	wasm_bpf__ret.tag = err != 0;
	wasm_bpf__ret.ptr = (uint8_t *)error;
	wasm_bpf__ret.len = error && err ? strlen(error) : 0;
	return &wasm_bpf__ret;
}

#endif /* WASM_BPF_PROCESSOR_H */
