/* mapwalk: map walks (get-next-key + lookup) that the host may serve from
 * batch lookups, checked entry by entry. See README.md. */
#include <time.h>

#include "guest.h"
#include "mapwalk.skel.h"

#define KEYS 1000
#define ARRAY_KEYS 300
#define PCPU_KEYS 200
#define MAX_CPUS 1024
#define BAD_PTR ((void *)0xfffffff0u)

static int big, arr, pcpu, deletes, scratch;
static uint64_t expected[KEYS + 1]; /* the value each key of `big` must have */
static unsigned char seen[KEYS + 1];

struct tally {
	unsigned count, dup, bad;
	uint64_t sum;
};

static void find_maps(struct bpf_object *obj)
{
	const char *names[] = { "big", "arr", "pcpu", "deletes", "scratch" };
	int *fds[] = { &big, &arr, &pcpu, &deletes, &scratch };

	for (unsigned i = 0; i < 5; i++) {
		*fds[i] = wasm_bpf_map_fd(obj, names[i]);
		if (*fds[i] < 0)
			fail("map_fd", *fds[i]);
	}
}

static void put(int fd, uint32_t key, uint64_t val)
{
	int err = bpf_map_update_elem(fd, &key, &val, BPF_ANY);

	if (err)
		fail("update", err);
}

/* keys 1..KEYS of `big`, value key * 7 + salt */
static void fill_big(unsigned salt)
{
	for (uint32_t key = 1; key <= KEYS; key++) {
		expected[key] = (uint64_t)key * 7 + salt;
		put(big, key, expected[key]);
	}
}

/* one entry of `big` handed out by a walk: counted once, value as expected */
static void check_big(struct tally *t, uint32_t key, uint64_t val)
{
	t->count++;
	t->sum += val;
	if (key < 1 || key > KEYS) {
		t->bad++;
		return;
	}
	if (seen[key]++)
		t->dup++;
	if (val != expected[key])
		t->bad++;
}

static void walk_big(struct tally *t, uint32_t *order)
{
	uint32_t key, next;
	uint64_t val;
	int err, lerr;

	memset(t, 0, sizeof(*t));
	memset(seen, 0, sizeof(seen));
	err = bpf_map_get_next_key(big, NULL, &next);
	while (err == 0) {
		key = next;
		lerr = bpf_map_lookup_elem(big, &key, &val);
		if (lerr)
			fail("lookup", lerr);
		if (order && t->count < KEYS)
			order[t->count] = key;
		check_big(t, key, val);
		err = bpf_map_get_next_key(big, &key, &next);
	}
	if (err != -ENOENT)
		fail("get_next_key", err);
}

static unsigned count_left(int fd)
{
	uint32_t key, next;
	unsigned n = 0;
	int err = bpf_map_get_next_key(fd, NULL, &next);

	while (err == 0 && n < 100000) {
		n++;
		key = next;
		err = bpf_map_get_next_key(fd, &key, &next);
	}
	return n;
}

static void step_hash(void)
{
	struct tally t;

	fill_big(1);
	walk_big(&t, NULL);
	say("hash count=%u sum=%llu dup=%u bad=%u", t.count, (unsigned long long)t.sum, t.dup, t.bad);
}

/* Writes during a walk are seen by the lookups after them: the key just
 * handed out (every 37th), and the four keys the walk reaches next (at the
 * 6th key). */
static int updated_ahead(uint32_t key, const uint32_t *order)
{
	for (unsigned j = 6; j < 10; j++)
		if (order[j] == key)
			return 1;
	return 0;
}

static void step_update(void)
{
	static uint32_t order[KEYS];
	struct tally t;
	unsigned missed = 0;
	uint32_t key, next;
	uint64_t val;
	int err;

	fill_big(1);
	walk_big(&t, order); /* learns the walk order: the keys that come next */
	memset(&t, 0, sizeof(t));
	memset(seen, 0, sizeof(seen));
	err = bpf_map_get_next_key(big, NULL, &next);
	while (err == 0) {
		key = next;
		if (t.count == 5) {
			for (unsigned j = 6; j < 10; j++) {
				expected[order[j]] = 5000000 + order[j];
				put(big, order[j], expected[order[j]]);
			}
		}
		if (t.count % 37 == 3) {
			expected[key] = 7000000 + key;
			put(big, key, expected[key]);
		}
		if ((err = bpf_map_lookup_elem(big, &key, &val)))
			fail("lookup", err);
		check_big(&t, key, val);
		err = bpf_map_get_next_key(big, &key, &next);
	}
	if (err != -ENOENT)
		fail("get_next_key", err);
	/* The kernel moves an updated hash element to the head of its bucket: the
	 * walk may see keys of that bucket again, or miss an updated key it had
	 * not reached. Only those may be missed. */
	for (key = 1; key <= KEYS; key++)
		missed += !seen[key] && !updated_ahead(key, order);
	say("update missed=%u bad=%u", missed, t.bad);
}

/* the same on an array, whose updates are in place: every index once */
static void step_array_update(void)
{
	unsigned count = 0, order = 0, bad = 0;
	uint64_t want[ARRAY_KEYS], val;
	uint32_t key, next;
	int err;

	for (key = 0; key < ARRAY_KEYS; key++) {
		want[key] = (uint64_t)key * 5 + 3;
		put(arr, key, want[key]);
	}
	err = bpf_map_get_next_key(arr, NULL, &next);
	while (err == 0) {
		key = next;
		if (count == 5) {
			for (uint32_t ahead = 6; ahead < 10; ahead++) {
				want[ahead] = 5000000 + ahead;
				put(arr, ahead, want[ahead]);
			}
		}
		if (count % 37 == 3) {
			want[key] = 7000000 + key;
			put(arr, key, want[key]);
		}
		if ((err = bpf_map_lookup_elem(arr, &key, &val)))
			fail("lookup arr", err);
		order += key != count;
		bad += val != want[key];
		count++;
		err = bpf_map_get_next_key(arr, &key, &next);
	}
	if (err != -ENOENT)
		fail("get_next_key arr", err);
	say("arrupdate count=%u order=%u bad=%u", count, order, bad);
}

/* a walk slower than the host's batches stay fresh (2 ms pause every 50
 * keys): the batch is fetched again and the walk resumes after its key */
static void step_slow(void)
{
	struct timespec pause = { 0, 2000000 };
	struct tally t = { 0 };
	uint32_t key, next;
	uint64_t val;
	int err;

	fill_big(9);
	memset(seen, 0, sizeof(seen));
	err = bpf_map_get_next_key(big, NULL, &next);
	while (err == 0) {
		key = next;
		if (t.count % 50 == 7)
			nanosleep(&pause, NULL);
		if ((err = bpf_map_lookup_elem(big, &key, &val)))
			fail("lookup", err);
		check_big(&t, key, val);
		if (t.count % 50 == 20)
			nanosleep(&pause, NULL);
		err = bpf_map_get_next_key(big, &key, &next);
	}
	if (err != -ENOENT)
		fail("get_next_key", err);
	say("slow count=%u dup=%u bad=%u", t.count, t.dup, t.bad);
}

/* get the next key, then delete the current one */
static void step_walk_delete(void)
{
	struct tally t = { 0 };
	uint32_t key, next;
	uint64_t val;
	int err;

	fill_big(3);
	memset(seen, 0, sizeof(seen));
	err = bpf_map_get_next_key(big, NULL, &next);
	while (err == 0) {
		key = next;
		if ((err = bpf_map_lookup_elem(big, &key, &val)))
			fail("lookup", err);
		check_big(&t, key, val);
		err = bpf_map_get_next_key(big, &key, &next);
		int derr = bpf_map_delete_elem(big, &key);
		if (derr)
			fail("delete", derr);
	}
	if (err != -ENOENT)
		fail("get_next_key", err);
	say("walkdel count=%u dup=%u bad=%u left=%u", t.count, t.dup, t.bad, count_left(big));
}

/* restart from NULL after every delete */
static void step_restart_delete(void)
{
	struct tally t = { 0 };
	uint32_t key;
	uint64_t val;
	int err;

	fill_big(4);
	memset(seen, 0, sizeof(seen));
	while ((err = bpf_map_get_next_key(big, NULL, &key)) == 0 && t.count <= KEYS) {
		if ((err = bpf_map_lookup_elem(big, &key, &val)))
			fail("lookup", err);
		check_big(&t, key, val);
		if ((err = bpf_map_delete_elem(big, &key)))
			fail("delete", err);
	}
	say("restartdel count=%u dup=%u bad=%u left=%u", t.count, t.dup, t.bad, count_left(big));
}

/* a bpf(BPF_MAP_DELETE_ELEM) call: `deletes` changes under the walk */
static void bump_deletes(void)
{
	uint32_t missing = 12345;

	bpf_map_delete_elem(scratch, &missing);
}

static uint64_t lookup_deletes(void)
{
	uint32_t key = 0;
	uint64_t val;
	int err = bpf_map_lookup_elem(deletes, &key, &val);

	if (err)
		fail("lookup deletes", err);
	return val;
}

static void start_deletes_walk(void)
{
	uint32_t key;
	int err = bpf_map_get_next_key(deletes, NULL, &key);

	if (err || key != 0)
		fail("get_next_key deletes", err);
}

/* A second lookup of a key reads the kernel, and so does a first lookup
 * long (3 ms) after the walk handed the key out. */
static void step_reread(void)
{
	struct timespec pause = { 0, 3000000 };
	uint64_t first, second, before, later;

	start_deletes_walk();
	first = lookup_deletes();
	bump_deletes();
	second = lookup_deletes();
	say("reread first=%llu second=%llu", (unsigned long long)first, (unsigned long long)second);

	start_deletes_walk();
	before = lookup_deletes();
	start_deletes_walk();
	bump_deletes();
	nanosleep(&pause, NULL);
	later = lookup_deletes();
	say("stale before=%llu later=%llu", (unsigned long long)before, (unsigned long long)later);
}

/* bad pointers in the middle of a walk: -EFAULT, and the walk goes on */
static void step_bounds(void)
{
	struct tally t = { 0 };
	uint32_t key, next;
	uint64_t val;
	int err, bad_next = 0, bad_lookup = 0;

	fill_big(5);
	memset(seen, 0, sizeof(seen));
	err = bpf_map_get_next_key(big, NULL, &next);
	while (err == 0) {
		key = next;
		if (t.count == 2) {
			bad_next = bpf_map_get_next_key(big, &key, BAD_PTR);
			bad_lookup = bpf_map_lookup_elem(big, &key, BAD_PTR);
		}
		if ((err = bpf_map_lookup_elem(big, &key, &val)))
			fail("lookup", err);
		check_big(&t, key, val);
		err = bpf_map_get_next_key(big, &key, &next);
	}
	say("bounds next=%d lookup=%d count=%u dup=%u bad=%u", bad_next, bad_lookup, t.count,
	    t.dup, t.bad);
}

static void fill_array(void)
{
	for (uint32_t i = 0; i < ARRAY_KEYS; i++)
		put(arr, i, (uint64_t)i * 5 + 3);
}

static void step_array(void)
{
	unsigned count = 0, order = 0, bad = 0;
	uint32_t key, next;
	uint64_t val, sum = 0;
	int err;

	fill_array();
	err = bpf_map_get_next_key(arr, NULL, &next);
	while (err == 0) {
		key = next;
		if ((err = bpf_map_lookup_elem(arr, &key, &val)))
			fail("lookup arr", err);
		if (key != count)
			order++;
		if (val != (uint64_t)key * 5 + 3)
			bad++;
		sum += val;
		count++;
		err = bpf_map_get_next_key(arr, &key, &next);
	}
	if (err != -ENOENT)
		fail("get_next_key arr", err);
	say("array count=%u sum=%llu order=%u bad=%u", count, (unsigned long long)sum, order, bad);
}

/* u32 per CPU, each in an 8-byte slot (the kernel's layout) */
static void step_percpu(unsigned cpus)
{
	static uint64_t slots[MAX_CPUS];
	unsigned count = 0, bad = 0;
	uint32_t key, next;
	int err;

	for (key = 1; key <= PCPU_KEYS; key++) {
		for (unsigned c = 0; c < cpus; c++)
			slots[c] = key * 100 + c;
		if ((err = bpf_map_update_elem(pcpu, &key, slots, BPF_ANY)))
			fail("update pcpu", err);
	}
	err = bpf_map_get_next_key(pcpu, NULL, &next);
	while (err == 0) {
		key = next;
		memset(slots, 0xff, sizeof(slots));
		if ((err = bpf_map_lookup_elem(pcpu, &key, slots)))
			fail("lookup pcpu", err);
		for (unsigned c = 0; c < cpus; c++)
			if ((uint32_t)slots[c] != key * 100 + c)
				bad++;
		if (slots[cpus] != UINT64_MAX) /* nothing written past the map's value */
			bad++;
		count++;
		err = bpf_map_get_next_key(pcpu, &key, &next);
	}
	if (err != -ENOENT)
		fail("get_next_key pcpu", err);
	say("percpu count=%u bad=%u", count, bad);
}

/* two walks at once, one step of each in turn */
static void step_interleave(void)
{
	unsigned hash_n = 0, array_n = 0, bad = 0;
	uint32_t hkey, hnext, akey, anext;
	uint64_t val;
	int herr, aerr;

	fill_big(6);
	fill_array();
	herr = bpf_map_get_next_key(big, NULL, &hnext);
	aerr = bpf_map_get_next_key(arr, NULL, &anext);
	while (herr == 0 || aerr == 0) {
		if (herr == 0) {
			hkey = hnext;
			if (bpf_map_lookup_elem(big, &hkey, &val) || val != expected[hkey])
				bad++;
			hash_n++;
			herr = bpf_map_get_next_key(big, &hkey, &hnext);
		}
		if (aerr == 0) {
			akey = anext;
			if (bpf_map_lookup_elem(arr, &akey, &val) || val != (uint64_t)akey * 5 + 3)
				bad++;
			array_n++;
			aerr = bpf_map_get_next_key(arr, &akey, &anext);
		}
	}
	say("interleave hash=%u array=%u bad=%u", hash_n, array_n, bad);
}

/* a walk left half done when its object is closed; a new object's maps
 * (likely the same fd numbers) are walked from scratch */
static struct bpf_object *step_reopen(struct bpf_object *obj)
{
	struct tally t;
	uint32_t key, next;
	uint64_t val;
	int err;

	fill_big(7);
	err = bpf_map_get_next_key(big, NULL, &next);
	for (int i = 0; i < 10 && err == 0; i++) {
		key = next;
		bpf_map_lookup_elem(big, &key, &val);
		err = bpf_map_get_next_key(big, &key, &next);
	}
	if ((err = wasm_bpf_object_close(obj)))
		fail("close", err);
	obj = wasm_bpf_object_load(mapwalk_bpf_obj, mapwalk_bpf_obj_len);
	if (!obj)
		fail("load", 0);
	find_maps(obj);
	fill_big(8);
	walk_big(&t, NULL);
	say("reopen count=%u dup=%u bad=%u", t.count, t.dup, t.bad);
	return obj;
}

int main(int argc, char **argv)
{
	unsigned cpus = argc > 1 ? (unsigned)atoi(argv[1]) : 1;
	struct bpf_object *obj;
	uint32_t key;
	int err;

	if (cpus < 1 || cpus >= MAX_CPUS)
		fail("cpus", cpus);
	obj = wasm_bpf_object_load(mapwalk_bpf_obj, mapwalk_bpf_obj_len);
	if (!obj)
		fail("load", 0);
	err = wasm_bpf_attach_program(obj, "count_deletes", NULL);
	if (err < 0)
		fail("attach", err);
	find_maps(obj);

	step_hash();
	step_update();
	step_array_update();
	step_bounds();
	step_slow();
	step_reread();
	step_array();
	step_percpu(cpus);
	step_interleave();
	step_walk_delete();
	step_restart_delete();
	say("empty err=%d", bpf_map_get_next_key(big, NULL, &key));
	obj = step_reopen(obj);

	if ((err = wasm_bpf_object_close(obj)))
		fail("close", err);
	say("done");
	return 0;
}
