// SPDX-License-Identifier: MIT
/* _nativepoll: a guest's ring-buffer poll served below Python.
 *
 * Why: on a steady stream most records wake the consumer on their own, and
 * each wake-up then paid the Python side of a poll (the host-function entry,
 * the epoll wait, the ring copy, the call into the dispatch loop) several
 * times over what the kernel costs. Here the whole poll runs without the GIL:
 * wait on the poller's epoll set, copy the committed records into the staging
 * pages twice (headers from the first copy, payloads from the second, see
 * rewrite._ring_dispatch_body), call the dispatch loop in wasm through the
 * engine's C entry, advance the consumer position past what it consumed.
 *
 * Engine-neutral core (nativepoll.py fills struct wb_host): wb_poll(); on an
 * engine without a C call API (wasmer) the Python host function calls it
 * through ctypes (the GIL is released while it waits and copies) and `call`
 * is a ctypes callback into the engine's Python call.
 * Engine glue: wb_wasmtime_poll (a wasmtime "unchecked" host callback) and
 * wb_wasmtime_call (the dispatch loop through wasmtime_func_call_unchecked,
 * whose address the Python side looked up in wasmtime-py's own library).
 *
 * Anything this code does not serve (an unknown buffer, a table index not
 * checked yet, a bad pointer, a nested poll while the staging pages are in
 * use, a record larger than the window) goes to the Python host function
 * unchanged: `fallback`. Built by setup.py as an optional extension (no
 * compiler: the Python path alone). */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "_guestmem.h"

#define WB_WASI_EINTR 27
#define WB_MAX_RINGS 16
#define WB_FALLBACK 1

struct wb_ring {
	int32_t handle, fd;  /* the guest's object handle and map fd */
	int32_t cb;          /* the table index the Python side checked; -1: none */
	int32_t in_batch;    /* a batch of this ring is being dispatched */
	int32_t epfd;        /* the poller's epoll set: the ring's epoll fd + the wake pipe */
	int32_t pad;
	volatile uint64_t *cons;     /* consumer position (read-write page) */
	const volatile uint64_t *prod; /* producer position (read-only page) */
	const uint8_t *data;         /* data area (mapped once: copies wrap in two pieces) */
	uint64_t mask;
	uint64_t delivered;          /* records delivered here (BufferStats adds them) */
	uint64_t polls;              /* polls served here */
};

/* A poll served by wb_stage: the guest's own wasm (rewrite.serve_poll_in_wasm)
 * runs the dispatch loop between two calls. */
struct wb_staged {
	int32_t ring;     /* index in rings of the poll in progress; -1: none */
	int32_t total;    /* records this poll delivered so far */
	int32_t phase;    /* 0: before the wait, 1: after it */
	uint32_t n;       /* bytes staged */
	uint32_t gen;     /* h->gen when staged */
	int32_t pad;
	uint64_t cons, avail, budget;
	int64_t deadline; /* ns; -1: none */
	uint64_t batches; /* batches staged for the guest's loop (a test sees the path taken) */
};

/* dispatch loop call: args = cb, ctx, data, max_size, hdrs, payload, n, res */
typedef int32_t (*wb_call_fn)(void *env, const uint32_t args[8], int32_t *failed);
typedef void *(*wb_host_fn)(void *env, void *caller, void *args, size_t nargs);
typedef void *(*wb_failure_fn)(void);
typedef void (*wb_refresh_fn)(void);

struct wb_host {
	volatile int32_t stop;     /* 1: stop requested (set before the wake pipe is written); 2: abort */
	int32_t busy;              /* the staging pages hold a batch being dispatched */
	int32_t max_timeout_ms;    /* policy max_poll_timeout_ms; -1: none */
	int32_t stop_epfd;         /* epoll set of the wake pipe alone (the coalescing wait) */
	int64_t max_delay_ns;      /* max_delivery_delay; 0: deliver at once */
	uint8_t *mem_base;         /* guest memory base (the engine never moves it) */
	struct wb_guest_memory mem; /* its current size: mem.size(mem.a, mem.b), */
	uint64_t mem_limit;        /* or, if mem.size is NULL, this (kept by the caller) */
	uint32_t hdrs, payload, res, window; /* staging pages, guest offsets; window 0: none */
	wb_call_fn call;           /* the table dispatch loop */
	void *call_env;
	wb_host_fn fallback;       /* the Python host function (same calling convention) */
	wb_failure_fn failure;     /* Python: the failed call's error -> a trap */
	wb_refresh_fn refresh;     /* or NULL: set mem_base again (a memory that moves when it grows) */
	int32_t nrings;
	uint32_t gen;              /* bumped when rings are dropped (a callback may close its object) */
	struct wb_ring rings[WB_MAX_RINGS];
	struct wb_staged stg;      /* the poll whose batch the guest dispatches itself (wb_stage) */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t pending(const struct wb_ring *r)
{
	return __atomic_load_n(r->prod, __ATOMIC_ACQUIRE) - *r->cons;
}

/* Copy the ring's next batch into the staging pages twice (headers are read
 * from the first copy, payloads from the second): the bytes staged, 0 if
 * nothing is committed (or the positions are corrupt). */
static uint32_t stage_batch(struct wb_host *h, struct wb_ring *r, uint64_t *cons_out, uint64_t *avail_out)
{
	uint64_t cons = *r->cons;
	uint64_t avail = __atomic_load_n(r->prod, __ATOMIC_ACQUIRE) - cons;
	uint64_t off, first;
	uint32_t n;

	if (avail == 0 || avail > r->mask + 1)
		return 0;
	n = avail < h->window ? (uint32_t)avail : h->window;
	off = cons & r->mask;
	first = r->mask + 1 - off;
	if (first >= n) {
		memcpy(h->mem_base + h->hdrs, r->data + off, n);    /* headers are read from this copy, */
		memcpy(h->mem_base + h->payload, r->data + off, n); /* payloads from this later one */
	} else { /* across the end of the data area (mapped once) */
		memcpy(h->mem_base + h->hdrs, r->data + off, first);
		memcpy(h->mem_base + h->hdrs + first, r->data, n - first);
		memcpy(h->mem_base + h->payload, r->data + off, first);
		memcpy(h->mem_base + h->payload + first, r->data, n - first);
	}
	*cons_out = cons;
	*avail_out = avail;
	return n;
}

enum { WB_MORE, WB_DONE, WB_LARGE };

/* After the dispatch loop returned `ret` for the n bytes staged at `cons`
 * (of `avail` committed): advance the consumer position past what it
 * consumed and count what it delivered. WB_MORE: stage the next batch;
 * WB_DONE: *result is the poll's answer; WB_LARGE: a record larger than the
 * window (libbpf's per-sample path in Python delivers it). */
static int commit_batch(struct wb_host *h, struct wb_ring *r, uint64_t cons, uint32_t n, uint64_t avail,
			int32_t ret, uint32_t gen, int32_t *total, uint64_t *budget, int32_t *result)
{
	uint32_t consumed, count;

	h->busy = 0;
	if (h->gen != gen) { /* the callback closed an object: this ring may be unmapped */
		if (ret < 0) {
			*result = ret;
			return WB_DONE;
		}
		if (h->refresh)
			h->refresh();
		memcpy(&count, h->mem_base + h->res + 4, 4);
		*result = *total + (int32_t)count;
		return WB_DONE;
	}
	r->in_batch = 0;
	memcpy(&consumed, h->mem_base + h->res, 4);
	memcpy(&count, h->mem_base + h->res + 4, 4);
	consumed &= ~7u;
	if (consumed > n) /* the guest scribbled over the result slot */
		consumed = 0;
	if (consumed)
		__atomic_store_n(r->cons, cons + consumed, __ATOMIC_RELEASE);
	*total += (int32_t)count;
	r->delivered += count;
	*result = *total;
	if (ret < 0) {
		*result = ret;
		return WB_DONE;
	}
	if (consumed == 0)
		return n < avail ? WB_LARGE : WB_DONE; /* else BUSY at the head */
	if (consumed < n && n == avail)
		return WB_DONE; /* BUSY */
	if (*budget <= consumed)
		return WB_DONE; /* about one ring's worth: let the guest have control */
	*budget -= consumed;
	return WB_MORE;
}

/* Records delivered (>= 0), the callback's negative return, or WB_FALLBACK
 * with *fallback set (a record larger than the window: libbpf's per-sample
 * path in Python delivers it). *failed: the call into wasm failed (trap, exit). */
static int32_t drain(struct wb_host *h, struct wb_ring *r, const uint32_t fixed[4],
		     int32_t *failed, int32_t *fallback)
{
	uint64_t budget = r->mask + 1;
	int32_t total = 0, result;
	int again = 0;

	for (;;) {
		uint32_t n, args[8], gen;
		uint64_t cons, avail;
		int32_t ret;
		int k;

		if (again++ && h->refresh) /* the last callback may have grown (moved) the memory */
			h->refresh();
		n = stage_batch(h, r, &cons, &avail);
		if (n == 0)
			return total;
		memcpy(args, fixed, sizeof(uint32_t) * 4);
		args[4] = h->hdrs;
		args[5] = h->payload;
		args[6] = n;
		args[7] = h->res;
		h->busy = r->in_batch = 1;
		gen = h->gen;
		ret = h->call(h->call_env, args, failed);
		if (*failed) {
			h->busy = 0;
			return -1;
		}
		k = commit_batch(h, r, cons, n, avail, ret, gen, &total, &budget, &result);
		if (k == WB_DONE)
			return result;
		if (k == WB_LARGE) {
			*fallback = 1;
			return total;
		}
	}
}

/* Wait on `epfd` until it is readable or `deadline` (ns; -1: none) passes.
 * 1 readable, 0 timed out. */
static int wait_until(int epfd, int64_t deadline)
{
	struct epoll_event ev[2];

	for (;;) {
		int timeout = -1, n;

		if (deadline >= 0) {
			int64_t left = deadline - now_ns();

			timeout = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
		}
		n = epoll_wait(epfd, ev, 2, timeout);
		if (n > 0)
			return 1;
		if (n == 0 && (deadline < 0 || now_ns() >= deadline))
			return 0;
		if (n < 0 && errno != EINTR)
			return 1; /* let the caller look: a consume is harmless */
	}
}

/* The coalescing wait: up to max_delay (and never past the poll's deadline)
 * unless a stop is requested, or a full window is already waiting. */
static void coalesce(struct wb_host *h, struct wb_ring *r, int64_t deadline)
{
	int64_t until;

	if (h->max_delay_ns <= 0 || pending(r) >= h->window)
		return;
	until = now_ns() + h->max_delay_ns;
	if (deadline >= 0 && deadline < until)
		until = deadline;
	wait_until(h->stop_epfd, until);
}

/* A stop was requested: -EINTR; or, once the host gave up waiting for the
 * guest to stop by itself (stop == 2, HostAbi.request_abort), the Python path,
 * which ends the guest. */

static int stopped(const struct wb_host *h, int32_t *result)
{
	if (h->stop > 1)
		return WB_FALLBACK;
	*result = -WB_WASI_EINTR;
	return 0;
}

#define WB_ADMITTED 2 /* admit(): serve this poll here */

/* What both polls (wb_poll, wb_stage) check before serving the poll of
 * arguments `a`: WB_FALLBACK (Python serves it), 0 with *result set
 * (answered here: a callback polling its own batch's buffer, or a stop), or
 * WB_ADMITTED with *ring and *timeout (bounded by the policy) set and the
 * ring's poll counted. `busy`: the caller's own reason to leave it to Python. */
static int admit(struct wb_host *h, const int32_t a[7], int busy, struct wb_ring **ring, int32_t *timeout,
		 int32_t *result)
{
	int32_t handle = a[0], fd = a[1], cb = a[2], max_size = a[5];
	uint32_t data = (uint32_t)a[4];
	struct wb_ring *r = NULL;
	int i;

	for (i = 0; i < h->nrings; i++) {
		if (h->rings[i].handle == handle && h->rings[i].fd == fd) {
			r = &h->rings[i];
			break;
		}
	}
	if (!r || h->window == 0)
		return WB_FALLBACK;
	if (r->in_batch) { /* a callback polls the buffer whose batch it is part of */
		*result = 0;
		return 0;
	}
	if (busy || h->busy || r->cb != cb || max_size <= 0 ||
	    (uint64_t)data + (uint64_t)max_size >
		    (h->mem.size ? h->mem.size(h->mem.a, h->mem.b) : h->mem_limit))
		return WB_FALLBACK;
	if (h->stop)
		return stopped(h, result);
	*timeout = a[6];
	if (h->max_timeout_ms >= 0 && (*timeout < 0 || *timeout > h->max_timeout_ms))
		*timeout = h->max_timeout_ms;
	r->polls++;
	*ring = r;
	return WB_ADMITTED;
}

/* Serve one poll: 0 with *result set, or WB_FALLBACK (untouched: Python serves
 * it; or after a partial delivery, see drain). */
int wb_poll(struct wb_host *h, const int32_t a[7], int32_t *result, int32_t *failed)
{
	uint32_t fixed[4] = {(uint32_t)a[2], (uint32_t)a[3], (uint32_t)a[4], (uint32_t)a[5]};
	struct wb_ring *r = NULL;
	int32_t got, fallback = 0, timeout = 0;
	int64_t deadline;
	int admitted = admit(h, a, 0, &r, &timeout, result);

	if (admitted != WB_ADMITTED)
		return admitted;
	deadline = timeout >= 0 ? now_ns() + (int64_t)timeout * 1000000 : -1;
	if (pending(r)) {
		coalesce(h, r, deadline);
		if (h->stop)
			return stopped(h, result);
		got = drain(h, r, fixed, failed, &fallback);
		if (*failed || fallback)
			return *failed ? 0 : WB_FALLBACK;
		if (got != 0) {
			*result = got;
			return 0;
		}
	}
	wait_until(r->epfd, deadline);
	if (h->stop)
		return stopped(h, result);
	if (pending(r)) {
		coalesce(h, r, deadline);
		if (h->stop)
			return stopped(h, result);
	}
	got = drain(h, r, fixed, failed, &fallback);
	if (*failed)
		return 0;
	if (fallback)
		return WB_FALLBACK;
	*result = got;
	return 0;
}

/* ---- the dispatch loop in the guest's own wasm ------------------------
 *
 * The guest's calls of its poll import go to a function the rewriter added
 * (rewrite.serve_poll_in_wasm), which calls the import under its new name
 * (STAGE_IMPORT; here, through the host function) until the answer is not
 * WB_STAGED_RESULT with the slot's state word STAGED: then it runs the table
 * dispatch loop over the staged batch, leaves the loop's return at
 * slot+SLOT_RET, sets the state word to COMMIT and calls again. One poll is
 * thus: stage (waits, copies), dispatch in wasm, commit (+ stage the next
 * batch, or answer). No call into wasm from the host. Same rules as wb_poll. */
#define WB_STAGED_RESULT (-0x7FFFFFA9) /* rewrite.STAGED */
#define WB_SLOT_STATE 12
#define WB_SLOT_HDRS 16
#define WB_SLOT_PAYLOAD 20
#define WB_SLOT_LEN 24
#define WB_SLOT_RET 28
#define WB_STATE_STAGED 1
#define WB_STATE_COMMIT 2

static void slot_put(struct wb_host *h, uint32_t at, uint32_t value)
{
	memcpy(h->mem_base + h->res + at, &value, 4);
}

static int staged_answer(struct wb_host *h, struct wb_ring *r, int32_t *result);

/* Stage the next batch of the poll in progress; or, with nothing to stage, its answer. */
static int stage_next(struct wb_host *h, struct wb_ring *r, int32_t *result)
{
	struct wb_staged *s = &h->stg;
	uint32_t n = stage_batch(h, r, &s->cons, &s->avail);

	if (n == 0)
		return staged_answer(h, r, result);
	s->n = n;
	s->gen = h->gen;
	s->batches++;
	slot_put(h, WB_SLOT_HDRS, h->hdrs);
	slot_put(h, WB_SLOT_PAYLOAD, h->payload);
	slot_put(h, WB_SLOT_LEN, n);
	slot_put(h, WB_SLOT_STATE, WB_STATE_STAGED);
	h->busy = r->in_batch = 1;
	*result = WB_STAGED_RESULT;
	return 0;
}

/* Nothing (more) to stage: before the wait with nothing delivered, wait
 * (wb_poll's second half); else answer what was delivered. */
static int staged_answer(struct wb_host *h, struct wb_ring *r, int32_t *result)
{
	struct wb_staged *s = &h->stg;

	if (s->phase == 0 && s->total == 0) {
		s->phase = 1;
		wait_until(r->epfd, s->deadline);
		if (!h->stop && pending(r))
			coalesce(h, r, s->deadline);
		if (h->stop) {
			s->ring = -1;
			return stopped(h, result);
		}
		return stage_next(h, r, result);
	}
	s->ring = -1;
	*result = s->total;
	return 0;
}

/* The commit call of the poll in progress. */
static int staged_commit(struct wb_host *h, int32_t *result)
{
	struct wb_staged *s = &h->stg;
	struct wb_ring *r = &h->rings[s->ring]; /* valid unless gen moved: commit_batch checks first */
	int32_t ret;
	int k;

	slot_put(h, WB_SLOT_STATE, 0);
	memcpy(&ret, h->mem_base + h->res + WB_SLOT_RET, 4);
	k = commit_batch(h, r, s->cons, s->n, s->avail, ret, s->gen, &s->total, &s->budget, result);
	if (k == WB_LARGE) {
		s->ring = -1;
		return WB_FALLBACK;
	}
	if (k == WB_DONE) {
		if (*result < 0 || h->gen != s->gen) {
			s->ring = -1;
			return 0;
		}
		return staged_answer(h, r, result);
	}
	return stage_next(h, r, result);
}

/* A call of the stage import: 0 with *result set (WB_STAGED_RESULT: a batch
 * is staged), or WB_FALLBACK (the Python path serves the poll). */
int wb_stage(struct wb_host *h, const int32_t a[7], int32_t *result)
{
	uint32_t state;
	struct wb_staged *s = &h->stg;
	struct wb_ring *r = NULL;
	int32_t timeout = 0;
	int admitted;

	if (s->ring >= 0 && h->window) {
		memcpy(&state, h->mem_base + h->res + WB_SLOT_STATE, 4);
		if (state == WB_STATE_COMMIT)
			return staged_commit(h, result);
	}
	admitted = admit(h, a, s->ring >= 0, &r, &timeout, result);
	if (admitted != WB_ADMITTED)
		return admitted;
	s->ring = (int32_t)(r - h->rings);
	s->total = s->phase = 0;
	s->budget = r->mask + 1;
	s->deadline = timeout >= 0 ? now_ns() + (int64_t)timeout * 1000000 : -1;
	if (!pending(r)) /* straight to the wait: a record arriving from now on is held too */
		return staged_answer(h, r, result);
	coalesce(h, r, s->deadline);
	if (h->stop) {
		s->ring = -1;
		return stopped(h, result);
	}
	return stage_next(h, r, result);
}

/* wb_stage for the stage import of type () -> i32: the poll's arguments are
 * in the slot (rewrite.SLOT_ARGS: handle as i64, then six i32), written by
 * the guest's wasm before each call; the memory's size is passed in 64 KiB
 * pages. The answer, or WB_STAGE_FALLBACK (the Python path serves the poll,
 * reading the same arguments). */
#define WB_STAGE_FALLBACK (1LL << 32)
#define WB_SLOT_ARGS 32
#define WB_SLOT_SIZE 64

int64_t wb_stage_slot(struct wb_host *h, int32_t pages)
{
	int32_t a[7], result = 0;
	int64_t handle;

	h->mem_limit = (uint64_t)(uint32_t)pages << 16;
	if (h->window == 0 || h->mem_base == NULL || (uint64_t)h->res + WB_SLOT_SIZE > h->mem_limit)
		return WB_STAGE_FALLBACK;
	memcpy(&handle, h->mem_base + h->res + WB_SLOT_ARGS, 8);
	if (handle < INT32_MIN || handle > INT32_MAX)
		return WB_STAGE_FALLBACK;
	a[0] = (int32_t)handle;
	memcpy(&a[1], h->mem_base + h->res + WB_SLOT_ARGS + 8, 6 * sizeof(int32_t));
	if (wb_stage(h, a, &result) == WB_FALLBACK)
		return WB_STAGE_FALLBACK;
	return result;
}

/* ---- wasmtime glue --------------------------------------------------- */

/* wasmtime_val_raw_t is a 16-byte union; an i32 is at offset 0. */
#define WT_RAW 16

typedef void *(*wt_call_unchecked_fn)(void *ctx, const void *func, void *args, size_t nargs,
				      void **trap);

struct wb_wasmtime_call {
	wt_call_unchecked_fn call_unchecked;
	void *ctx;        /* wasmtime_context_t * */
	const void *func; /* wasmtime_func_t * of the dispatch export */
	void *error;      /* the last failure, for wb_host.failure */
	void *trap;
};

int32_t wb_wasmtime_call(void *env, const uint32_t args[8], int32_t *failed)
{
	struct wb_wasmtime_call *c = env;
	uint8_t raw[8 * WT_RAW];
	void *trap = NULL, *err;
	int32_t ret;
	int i;

	memset(raw, 0, sizeof(raw));
	for (i = 0; i < 8; i++)
		memcpy(raw + i * WT_RAW, &args[i], 4);
	err = c->call_unchecked(c->ctx, c->func, raw, 8, &trap);
	if (err || trap) {
		c->error = err;
		c->trap = trap;
		*failed = 1;
		return -1;
	}
	memcpy(&ret, raw, 4);
	return ret;
}

/* wasmtime_func_unchecked_callback_t for wasm_bpf_buffer_poll; env: the wb_host */
void *wb_wasmtime_poll(void *env, void *caller, void *args, size_t nargs)
{
	struct wb_host *h = env;
	int32_t a[7], result = 0, failed = 0;
	int i;

	if (nargs < 7)
		return h->fallback(NULL, caller, args, nargs);
	for (i = 0; i < 7; i++)
		memcpy(&a[i], (uint8_t *)args + i * WT_RAW, 4);
	if (wb_poll(h, a, &result, &failed) == WB_FALLBACK)
		return h->fallback(NULL, caller, args, nargs);
	if (failed)
		return h->failure();
	memcpy(args, &result, 4);
	return NULL;
}
