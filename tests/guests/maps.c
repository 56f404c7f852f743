/* maps: map operations through wasm_bpf_map_operate. See README.md. */
#include "guest.h"
#include "maps.skel.h"

int main(void)
{
	struct bpf_object *obj;
	uint32_t key, next;
	uint64_t val;
	int fd, err, afd;

	obj = wasm_bpf_object_load(maps_bpf_obj, maps_bpf_obj_len);
	if (!obj)
		fail("load", 0);
	fd = wasm_bpf_map_fd(obj, "kv");
	if (fd < 0)
		fail("map_fd kv", fd);
	afd = wasm_bpf_map_fd(obj, "arr");
	if (afd < 0)
		fail("map_fd arr", afd);

	key = 1, val = 100;
	if ((err = bpf_map_update_elem(fd, &key, &val, BPF_ANY)))
		fail("update 1", err);
	key = 2, val = 200;
	if ((err = bpf_map_update_elem(fd, &key, &val, BPF_ANY)))
		fail("update 2", err);

	key = 1, val = 0;
	if ((err = bpf_map_lookup_elem(fd, &key, &val)))
		fail("lookup 1", err);
	say("lookup 1 = %llu", (unsigned long long)val);

	err = bpf_map_get_next_key(fd, NULL, &next);
	while (err == 0) {
		say("key %u", next);
		key = next;
		err = bpf_map_get_next_key(fd, &key, &next);
	}
	if (err != -ENOENT)
		fail("get_next_key", err);

	key = 1;
	if ((err = bpf_map_delete_elem(fd, &key)))
		fail("delete 1", err);
	err = bpf_map_lookup_elem(fd, &key, &val);
	say("lookup 1 err=%d", err);

	say("missing map fd=%d", wasm_bpf_map_fd(obj, "nope"));

	err = wasm_bpf_object_close(obj);
	if (err)
		fail("close", err);
	say("done");
	return 0;
}
