/* metricsfill: writes known entries into the maps of metricsfill.bpf.o for
 * the metrics tests, prints "filled", then waits until stopped. See README.md. */
#include "guest.h"
#include "metricsfill.skel.h"

#define MAX_CPUS 1024

struct labels_key {
	uint32_t pid;
	char comm[16];
	uint32_t ifindex;
	int32_t err;
	uint32_t syscall;
	uint64_t cgroup;
	uint64_t addr;
};

struct counts {
	uint64_t events;
	uint64_t bytes;
};

struct bucket_key {
	uint32_t op;
	uint32_t le;
};

static uint64_t percpu_values[MAX_CPUS];

static int map_fd(struct bpf_object *obj, const char *name)
{
	int fd = wasm_bpf_map_fd(obj, name);

	if (fd < 0)
		fail("map_fd", fd);
	return fd;
}

static void put(int fd, const void *key, const void *value)
{
	int err = bpf_map_update_elem(fd, key, value, BPF_ANY);

	if (err)
		fail("update", err);
}

static int on_sample(void *ctx, void *data, size_t size)
{
	return 0;
}

/* Args: CGROUP_ID KSYM_ADDR NCPUS (decimal) */
int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_buffer *buf;
	int err;

	if (argc != 4) {
		say("usage: metricsfill CGROUP_ID KSYM_ADDR NCPUS");
		return 2;
	}
	uint64_t cgroup = strtoull(argv[1], NULL, 10);
	uint64_t addr = strtoull(argv[2], NULL, 10);
	unsigned ncpus = (unsigned)strtoul(argv[3], NULL, 10);

	if (ncpus < 1 || ncpus > MAX_CPUS)
		fail("ncpus", ncpus);
	obj = wasm_bpf_object_load(metricsfill_bpf_obj, metricsfill_bpf_obj_len);
	if (!obj)
		fail("load", 0);

	/* decoded: two entries, all labels known to the test */
	struct labels_key key = { .pid = 4242, .comm = "wasm-guest", .ifindex = 1, .err = -2,
				  .syscall = 110, .cgroup = cgroup, .addr = addr };
	struct counts counts = { .events = 7, .bytes = 700 };
	put(map_fd(obj, "decoded"), &key, &counts);
	key.pid = 4343;
	key.err = -13;
	counts.events = 3;
	counts.bytes = 300;
	put(map_fd(obj, "decoded"), &key, &counts);

	/* percpu[1]: CPU i holds i + 1 */
	for (unsigned i = 0; i < ncpus; i++)
		percpu_values[i] = i + 1;
	uint32_t one = 1;
	put(map_fd(obj, "percpu"), &one, percpu_values);

	/* slots_hist[5] = {1, 2, 0, 4, 0...}: 7 values, 3 slots used */
	uint32_t slots[8] = { 1, 2, 0, 4 };
	uint32_t five = 5;
	put(map_fd(obj, "slots_hist"), &five, slots);

	/* keyed_hist: op 1 has 2 values <= 10 and 5 in (10, 100] */
	struct bucket_key bk = { .op = 1, .le = 10 };
	uint64_t n = 2;
	put(map_fd(obj, "keyed_hist"), &bk, &n);
	bk.le = 100;
	n = 5;
	put(map_fd(obj, "keyed_hist"), &bk, &n);

	buf = bpf_buffer__open(obj, "idle", on_sample, NULL);
	if (!buf)
		fail("buffer_open", 0);
	say("filled");
	while ((err = bpf_buffer__poll(buf, 100)) >= 0)
		;
	if (err != -EINTR)
		fail("poll", err);
	bpf_buffer__free(buf);
	wasm_bpf_object_close(obj);
	return 0;
}
