// SPDX-License-Identifier: MIT
/* _nativestdio: a guest's stdout/stderr writes served below Python.
 *
 * Why: fds 1 and 2 look like a terminal to the guest by default
 * (engines/stdio.py, line buffering), so a guest that prints with plain
 * printf makes one WASI fd_write per line. Served in Python, each line cost a
 * wasm -> Python host call on top of its writev, several times the write
 * itself, and a guest printing ~100,000 lines/s fell behind its ring buffer.
 * Here the whole call runs without the GIL: check the iovec array, each iovec
 * and the result slot against the guest memory, writev straight from guest
 * memory (the rest after a short write, in order; EINTR retried), store the
 * byte count.
 *
 * Same results as GuestStdio.fd_write (engines/stdio.py), which stays the
 * reference: EFAULT for any range outside the memory, the host errno turned
 * into the WASI one through the same table (EIO for the rest), nothing stored
 * on an error. On EPIPE, `closed` (Python: the runner's on_closed_output,
 * which stops the run as SIGPIPE stops a native tool) is called first.
 *
 * Only fds 1 and 2 whose output goes to the host's own fd (`direct`): other
 * fds, and streams that go to a Python callable (the API's callbacks), go to
 * the Python host function unchanged (`fallback`), as does a call before the
 * memory is known. Built into the same optional extension as _nativepoll.c
 * (no compiler: the Python path alone); only the wasmtime adapter can define
 * an import as a C function (engines/wasmtime_nativestdio.py). */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "_guestmem.h"

/* WASI errno numbers (wasi-libc's errno.h): engines/stdio.py's _LINUX_TO_WASI */
#define WASI_EAGAIN 6
#define WASI_EBADF 8
#define WASI_EFAULT 21
#define WASI_EINTR 27
#define WASI_EIO 29
#define WASI_EPIPE 64
#define MAX_IOVECS 1024 /* as the Python path (and Linux's IOV_MAX) */
#define WT_RAW 16       /* wasmtime_val_raw_t: 16 bytes, an i32 at offset 0 */

typedef void *(*ws_host_fn)(void *env, void *caller, void *args, size_t nargs);
typedef void *(*ws_closed_fn)(int32_t fd);

struct wb_stdio {
	struct wb_guest_memory mem; /* data NULL until the instance is bound */
	int32_t direct[3];          /* [1], [2]: 1 = this fd's output is the host's own fd */
	int32_t pad;
	ws_host_fn fallback;        /* the Python host function (same calling convention) */
	ws_closed_fn closed;        /* EPIPE: returns a trap to raise, or NULL */
	uint64_t served;            /* fd_write calls answered here, errors included (tests) */
};

static int32_t wasi_errno(int err)
{
	switch (err) {
	case EBADF: return WASI_EBADF;
	case EFAULT: return WASI_EFAULT;
	case EPIPE: return WASI_EPIPE;
	case EAGAIN: return WASI_EAGAIN;
	case EINTR: return WASI_EINTR;
	default: return WASI_EIO;
	}
}

/* Write all of iov[0..n) to fd, in order, across short writes and EINTR:
 * 0, or the errno that stopped it. */
static int write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t done = writev(fd, iov, n);

		if (done < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		while (n > 0 && (size_t)done >= iov->iov_len) {
			done -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + done;
			iov->iov_len -= (size_t)done;
		}
	}
	return 0;
}

/* fd_write(fd, iovs, count, nwritten) on a direct fd: the WASI errno (0: done,
 * nwritten stored), or -1: the Python path must serve it (untouched). *trap:
 * what `closed` returned. */
static int32_t serve(struct wb_stdio *s, const int32_t a[4], void **trap)
{
	int32_t fd = a[0], count = a[2];
	uint32_t iovs = (uint32_t)a[1], result = (uint32_t)a[3];
	struct iovec iov[MAX_IOVECS];
	uint64_t size, end, total = 0;
	uint8_t *base;
	uint32_t total32;
	int i, err;

	if (!wb_guest_memory_now(&s->mem, &base, &size))
		return -1;
	if (count < 0 || count > MAX_IOVECS || (uint64_t)iovs + 8ull * (uint64_t)count > size)
		return WASI_EFAULT;
	end = (uint64_t)result + 4;
	for (i = 0; i < count; i++) {
		uint32_t span[2];

		memcpy(span, base + iovs + 8u * (uint32_t)i, 8); /* little-endian, as wasm */
		if ((uint64_t)span[0] + span[1] > end)
			end = (uint64_t)span[0] + span[1];
		iov[i].iov_base = base + span[0];
		iov[i].iov_len = span[1];
		total += span[1];
	}
	if (end > size)
		return WASI_EFAULT;
	if (total > UINT32_MAX || total > SSIZE_MAX)
		return -1; /* the Python path fails the same way it always has */
	err = write_all(fd, iov, count);
	if (err) {
		if (err == EPIPE && s->closed)
			*trap = s->closed(fd);
		return wasi_errno(err);
	}
	total32 = (uint32_t)total;
	memcpy(base + result, &total32, 4);
	return 0;
}

/* wasmtime_func_unchecked_callback_t for wasi fd_write; env: the wb_stdio */
void *wb_wasmtime_fd_write(void *env, void *caller, void *args, size_t nargs)
{
	struct wb_stdio *s = env;
	int32_t a[4], ret;
	void *trap = NULL;
	int i;

	if (nargs < 4)
		return s->fallback(NULL, caller, args, nargs);
	for (i = 0; i < 4; i++)
		memcpy(&a[i], (uint8_t *)args + i * WT_RAW, 4);
	if (a[0] < 1 || a[0] > 2 || !s->direct[a[0]])
		return s->fallback(NULL, caller, args, nargs);
	ret = serve(s, a, &trap);
	if (ret < 0)
		return s->fallback(NULL, caller, args, nargs);
	s->served++;
	if (trap)
		return trap;
	memcpy(args, &ret, 4);
	return NULL;
}
