// gen types test object: every struct of layouts.h reaches BTF as a global
// or a map key/value type.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "layouts.h"

/* long double is 8 bytes on BPF: reproducible as double; the test patches
 * its BTF size to 16 to get a type wasm32 cannot reproduce. */
struct has_ld { long double x; };

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, tdef_t);
	__type(value, struct tricky);
} m SEC(".maps");

struct packed_s gp = {};
struct bits gbits = {};
struct gaps ggaps = {};
struct has_ld gld = {};
const volatile int knob = 1;

SEC("tp/syscalls/sys_enter_getppid")
int prog(void *ctx)
{
	return knob + gp.a + gbits.f1;
}

char LICENSE[] SEC("license") = "GPL";
