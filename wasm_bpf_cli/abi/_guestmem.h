// SPDX-License-Identifier: MIT
/* The guest's linear memory as the engine reports it at the moment of asking,
 * for the C helpers of this extension (_nativepoll.c, _nativestdio.c).
 *
 * On wasmtime `data`/`size` are the library's own wasmtime_memory_data and
 * wasmtime_memory_data_size, `a` the store's wasmtime_context_t and `b` the
 * memory's wasmtime_memory_t (filled by engines/wasmtime_nativepoll.py,
 * guest_memory). A memory may grow between two calls, and an engine whose
 * memory may move then moves its base: read both again on every call that
 * touches guest memory. */
#ifndef WB_GUESTMEM_H
#define WB_GUESTMEM_H

#include <stddef.h>
#include <stdint.h>

typedef size_t (*wb_size_fn)(void *a, void *b);
typedef uint8_t *(*wb_data_fn)(void *a, void *b);

struct wb_guest_memory {
	wb_data_fn data;  /* NULL: not known yet (or not given: the caller keeps it) */
	wb_size_fn size;
	void *a, *b;
};

/* Base and size now; 0 if the memory is not known yet. */
static inline int wb_guest_memory_now(const struct wb_guest_memory *m, uint8_t **base, uint64_t *size)
{
	if (!m->data || !m->size || !m->b)
		return 0;
	*base = m->data(m->a, m->b);
	*size = m->size(m->a, m->b);
	return *base != NULL;
}

#endif
