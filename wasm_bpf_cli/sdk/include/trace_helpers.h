/* SPDX-License-Identifier: MIT */
/*
 * trace_helpers.h - the histogram printers and probes of libbpf-tools'
 * trace_helpers that upstream wasm-bpf examples (runqlat, opensnoop) call,
 * for wasm32 guests. Definitions: trace_helpers.c next to this header
 * (compile it with the guest: clang-14 $(wasm-bpf sdk --cflags) -o g.wasm
 * g.c $(wasm-bpf sdk --include)/trace_helpers.c), or an example's own copy.
 */
#ifndef __TRACE_HELPERS_H
#define __TRACE_HELPERS_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NSEC_PER_SEC 1000000000ULL

/* bcc's log2 histogram of vals[0..vals_size) on stdout: a header naming
 * val_type ("usecs"), then one "low -> high : count |****|" row per slot
 * up to the last non-empty one; nothing when every slot is 0. */
void print_log2_hist(unsigned int *vals, int vals_size, const char *val_type);

/* bcc's linear histogram: slot i covers base + i * step; empty slots are
 * skipped. */
void print_linear_hist(unsigned int *vals, int vals_size, unsigned int base,
		       unsigned int step, const char *val_type);

/* CLOCK_MONOTONIC in ns (comparable with bpf_ktime_get_ns()). */
unsigned long long get_ktime_ns(void);

/* Whether the tracepoint exists, from tracefs: the guest needs it preopened
 * (`wasm-bpf run --dir /sys/kernel/tracing ...`); false when unreadable. */
bool tracepoint_exists(const char *category, const char *event);

/* A wasm guest cannot load probe programs itself: both answer true, what
 * the kernels this runner supports (5.8+, with BTF) provide. */
bool probe_tp_btf(const char *name);
bool probe_ringbuf(void);

#ifdef __cplusplus
}
#endif

#endif /* __TRACE_HELPERS_H */
