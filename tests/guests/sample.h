/* Sample sent by perf.bpf.c / ringbuf.bpf.c; same layout on BPF and wasm32.
 * 20 bytes on purpose: a perf raw sample is padded so that size + 4 is a
 * multiple of 8, and 20 + 4 = 24 already is, so the size the guest sees is
 * 20 for both the perf buffer and the ring buffer. */
#ifndef SAMPLE_H
#define SAMPLE_H

#ifndef __bpf__
#include <stdint.h>
typedef uint32_t __u32;
#endif

struct test_sample {
	__u32 pid;  /* tgid of the process that called getppid() */
	__u32 seq;  /* best-effort running counter (racy across CPUs) */
	char tag[8]; /* "perfevt" or "ringevt" (NUL-terminated) */
	__u32 cpu;
};

_Static_assert(sizeof(struct test_sample) == 20, "struct test_sample layout");

#endif
