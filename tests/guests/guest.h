/* Helpers shared by the test guests. */
#ifndef GUEST_H
#define GUEST_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasm_bpf.h"

/* printf one line to stdout and flush it at once */
__attribute__((format(printf, 1, 2))) static inline void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* "error <what> <ret>" on stdout, exit 1 */
static inline void fail(const char *what, long long ret)
{
	say("error %s %lld", what, ret);
	exit(1);
}

/* patch `const volatile __u32 target_pid` in .rodata of an embedded object */
static inline void set_target_pid(unsigned char *elf, size_t len, const char *arg)
{
	uint32_t pid = arg ? (uint32_t)strtoul(arg, NULL, 0) : 0;
	int err = wasm_bpf_set_global(elf, len, ".rodata", "target_pid", &pid,
				      sizeof(pid));

	if (err)
		fail("set_global", err);
}

/* load + attach handle_getppid */
static inline struct bpf_object *load_attach(unsigned char *elf, size_t len)
{
	struct bpf_object *obj = wasm_bpf_object_load(elf, len);
	int err;

	if (!obj)
		fail("load", 0);
	err = wasm_bpf_attach_program(obj, "handle_getppid", NULL);
	if (err < 0)
		fail("attach", err);
	return obj;
}

/* Poll `buf` 100 ms at a time until *seen reaches `wanted` (seen NULL:
 * until stopped); -EINTR says "interrupted" and returns, another error
 * fails with "error poll ERR". */
static inline void poll_until(struct bpf_buffer *buf, const int *seen, int wanted)
{
	while (!seen || *seen < wanted) {
		int err = bpf_buffer__poll(buf, 100);

		if (err == -EINTR) {
			say("interrupted");
			return;
		}
		if (err < 0)
			fail("poll", err);
	}
}

#endif
