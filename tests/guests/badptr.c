/* badptr: call every host function with bad pointers, sizes, handles, fds
 * and commands; print "<label>: <ret>" per call, then "survived". The host
 * must return errors, never crash. Expected values: see README.md. */
#include "guest.h"
#include "maps.skel.h"
#include "ringbuf.skel.h"

#define BAD ((void *)(uintptr_t)0xfffffff0u) /* far beyond memory */
#define IDX(f) ((int32_t)(uintptr_t)(f))

static int cb(void *ctx, void *data, size_t size)
{
	(void)ctx, (void)data, (void)size;
	return 0;
}

#define R(label, expr) say("%s: %lld", label, (long long)(expr))

int main(void)
{
	static unsigned char garbage[64] = "\177ELF garbage, not an object";
	static unsigned char scratch[256];
	static const char unterminated_init[8] = { 'h', 'a', 'n', 'd', 'l', 'e',
						   '_', 'g' };
	uint64_t mobj, robj;
	uint32_t key = 1;
	uint64_t val = 5;
	char *end, *unterminated;
	unsigned long mem_end;
	int kv, rb;

	mobj = wasm_load_bpf_object(maps_bpf_obj, maps_bpf_obj_len);
	if (!mobj)
		fail("load maps", 0);
	robj = wasm_load_bpf_object(ringbuf_bpf_obj, ringbuf_bpf_obj_len);
	if (!robj)
		fail("load ringbuf", 0);
	kv = wasm_bpf_map_fd_by_name(mobj, "kv");
	rb = wasm_bpf_map_fd_by_name(robj, "rb");
	if (kv < 0 || rb < 0)
		fail("map_fd", kv < 0 ? kv : rb);

	/* the host may grow memory when asked for a buffer's fd (its staging
	 * pages): take the end of memory after that */
	/* own the last page of memory: grow by one page (malloc never uses
	 * pages it did not grow itself) and fill its tail with non-NUL bytes */
	if (__builtin_wasm_memory_grow(0, 1) == (unsigned long)-1)
		fail("memory_grow", -1);
	mem_end = __builtin_wasm_memory_size(0) * 65536ul;
	end = (char *)mem_end;
	unterminated = end - sizeof(unterminated_init);
	memcpy(unterminated, unterminated_init, sizeof(unterminated_init));

	/* wasm_load_bpf_object: 0 (failure) expected for all */
	R("load_bad_ptr", wasm_load_bpf_object(BAD, 16));
	R("load_null", wasm_load_bpf_object(NULL, 16));
	R("load_neg_size", wasm_load_bpf_object(maps_bpf_obj, -1));
	R("load_zero_size", wasm_load_bpf_object(maps_bpf_obj, 0));
	R("load_huge_size", wasm_load_bpf_object(maps_bpf_obj, 0x7fffffff));
	R("load_past_end", wasm_load_bpf_object(end - 16, 64));
	R("load_garbage", wasm_load_bpf_object(garbage, sizeof(garbage)));
	R("load_truncated", wasm_load_bpf_object(maps_bpf_obj, 100));

	/* wasm_attach_bpf_program: negative expected */
	R("attach_handle_0", wasm_attach_bpf_program(0, "handle_getppid", NULL));
	R("attach_handle_12345",
	  wasm_attach_bpf_program(12345, "handle_getppid", NULL));
	R("attach_null_name", wasm_attach_bpf_program(mobj, NULL, NULL));
	R("attach_bad_name", wasm_attach_bpf_program(mobj, BAD, NULL));
	R("attach_unterminated_name",
	  wasm_attach_bpf_program(mobj, unterminated, NULL));
	R("attach_unknown_name", wasm_attach_bpf_program(mobj, "nope", NULL));
	R("attach_bad_target",
	  wasm_attach_bpf_program(mobj, "handle_getppid", BAD));
	R("attach_unterminated_target",
	  wasm_attach_bpf_program(mobj, "handle_getppid", unterminated));

	/* wasm_bpf_map_fd_by_name: negative expected */
	R("map_fd_handle_0", wasm_bpf_map_fd_by_name(0, "kv"));
	R("map_fd_handle_12345", wasm_bpf_map_fd_by_name(12345, "kv"));
	R("map_fd_null_name", wasm_bpf_map_fd_by_name(mobj, NULL));
	R("map_fd_bad_name", wasm_bpf_map_fd_by_name(mobj, BAD));
	R("map_fd_unterminated_name",
	  wasm_bpf_map_fd_by_name(mobj, unterminated));

	/* wasm_bpf_map_operate: negative expected */
	R("map_op_fd_9999", wasm_bpf_map_operate(9999, 1, &key, &val, NULL, 0));
	R("map_op_fd_0", wasm_bpf_map_operate(0, 1, &key, &val, NULL, 0));
	R("map_op_fd_1", wasm_bpf_map_operate(1, 1, &key, &val, NULL, 0));
	R("map_op_fd_2", wasm_bpf_map_operate(2, 1, &key, &val, NULL, 0));
	R("map_op_fd_neg", wasm_bpf_map_operate(-1, 1, &key, &val, NULL, 0));
	R("map_op_lookup_bad_key", wasm_bpf_map_operate(kv, 1, BAD, &val, NULL, 0));
	R("map_op_lookup_null_key",
	  wasm_bpf_map_operate(kv, 1, NULL, &val, NULL, 0));
	R("map_op_lookup_bad_value",
	  wasm_bpf_map_operate(kv, 1, &key, BAD, NULL, 0));
	R("map_op_lookup_key_past_end",
	  wasm_bpf_map_operate(kv, 1, end - 2, &val, NULL, 0));
	R("map_op_lookup_value_past_end",
	  wasm_bpf_map_operate(kv, 1, &key, end - 4, NULL, 0));
	R("map_op_update_bad_key",
	  wasm_bpf_map_operate(kv, 2, BAD, &val, NULL, 0));
	R("map_op_update_bad_value",
	  wasm_bpf_map_operate(kv, 2, &key, BAD, NULL, 0));
	R("map_op_update_bad_flags",
	  wasm_bpf_map_operate(kv, 2, &key, &val, NULL, 0x100));
	R("map_op_delete_bad_key", wasm_bpf_map_operate(kv, 3, BAD, NULL, NULL, 0));
	/* with one element present, get-next-key must write next_key */
	R("map_op_update_ok", wasm_bpf_map_operate(kv, 2, &key, &val, NULL, 0));
	R("map_op_next_bad_key", wasm_bpf_map_operate(kv, 4, BAD, NULL, &key, 0));
	R("map_op_next_bad_next", wasm_bpf_map_operate(kv, 4, NULL, NULL, BAD, 0));
	R("map_op_delete_ok", wasm_bpf_map_operate(kv, 3, &key, NULL, NULL, 0));
	R("map_op_cmd_99", wasm_bpf_map_operate(kv, 99, &key, &val, NULL, 0));
	R("map_op_cmd_0", wasm_bpf_map_operate(kv, 0, &key, &val, NULL, 0));
	R("map_op_cmd_neg", wasm_bpf_map_operate(kv, -1, &key, &val, NULL, 0));
	R("map_op_ringbuf_lookup",
	  wasm_bpf_map_operate(rb, 1, &key, &val, NULL, 0));

	/* wasm_bpf_buffer_poll (timeout 0): negative expected, except where
	 * README.md says 0 is allowed (nothing pending, nothing to check) */
	R("poll_handle_0", wasm_bpf_buffer_poll(0, rb, IDX(cb), NULL, scratch,
						sizeof(scratch), 0));
	R("poll_handle_12345",
	  wasm_bpf_buffer_poll(12345, rb, IDX(cb), NULL, scratch,
			       sizeof(scratch), 0));
	R("poll_fd_9999", wasm_bpf_buffer_poll(robj, 9999, IDX(cb), NULL,
					       scratch, sizeof(scratch), 0));
	R("poll_fd_1", wasm_bpf_buffer_poll(robj, 1, IDX(cb), NULL, scratch,
					    sizeof(scratch), 0));
	R("poll_fd_not_buffer", wasm_bpf_buffer_poll(mobj, kv, IDX(cb), NULL,
						     scratch, sizeof(scratch), 0));
	R("poll_bad_data", wasm_bpf_buffer_poll(robj, rb, IDX(cb), NULL, BAD,
						sizeof(scratch), 0));
	R("poll_data_past_end", wasm_bpf_buffer_poll(robj, rb, IDX(cb), NULL,
						     end - 16, 256, 0));
	R("poll_neg_size", wasm_bpf_buffer_poll(robj, rb, IDX(cb), NULL,
						scratch, -1, 0));
	R("poll_huge_size", wasm_bpf_buffer_poll(robj, rb, IDX(cb), NULL,
						 scratch, 0x7fffffff, 0));
	R("poll_bad_func_99999", wasm_bpf_buffer_poll(robj, rb, 99999, NULL,
						      scratch, sizeof(scratch),
						      0));

	/* wasm_close_bpf_object */
	R("close_handle_0", wasm_close_bpf_object(0));
	R("close_handle_12345", wasm_close_bpf_object(12345));
	R("close_maps", wasm_close_bpf_object(mobj));
	R("close_ringbuf", wasm_close_bpf_object(robj));
	R("close_twice", wasm_close_bpf_object(mobj));
	R("map_fd_after_close", wasm_bpf_map_fd_by_name(mobj, "kv"));
	R("poll_after_close", wasm_bpf_buffer_poll(robj, rb, IDX(cb), NULL,
						   scratch, sizeof(scratch), 0));

	say("survived");
	return 0;
}
