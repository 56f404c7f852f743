"""Upstream's guest API (libbpf-wasm.h) on this SDK: the skeleton of an
object with every kind of section variable compiles for both C APIs with
-Wall -Werror, and tests/guests/upstream.c, written as upstream's examples
are (bpf_buffer__open(skel->maps.rb, ...), bpf_map__fd, set_autoload,
bpf_set_prog_attach_target, print_log2_hist), runs on the real kernel."""
import fnmatch
import os
import re
import subprocess
import time

import pytest

from conftest import ROOT, cli_env, finish_process, guest, wasm_bpf_cmd
from test_gen_skeleton import MULTIARCH, WASM_CC, run_gen

LIBC = f"/lib/{MULTIARCH}/libc.so.6"

# bpf_printk strings and static locals (BTF names `func.var`), several
# .rodata.* and .data.* sections, .data and .bss
VARIABLES_BPF = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
const volatile int knob = 3;
const volatile char flag = 1;
const volatile unsigned long long limit SEC(".rodata.limits") = 100;
const volatile char tag[4] SEC(".rodata.limits") = "abc";
const volatile short other SEC(".rodata.other") = 5;
int counter = 7;
long extra SEC(".data.extra") = 9;
unsigned long long hits;
char last;
SEC("tp/syscalls/sys_enter_getppid")
int handle(void *ctx)
{
	static int calls;
	static const char msg[] = "static %d";
	calls++;
	hits += knob + limit + tag[0] + counter + extra + flag + other;
	last = 1;
	bpf_printk("calls %d", calls);
	bpf_printk("knob %d flag %d", knob, flag);
	bpf_trace_printk(msg, sizeof(msg), calls);
	return 0;
}
"""

# main() of a guest of the vars skeleton: open, set knobs in several
# sections, then the API-specific part
OPEN = """
int main(void)
{
	struct vars_bpf *skel = vars_bpf__open();

	if (!skel)
		return 1;
	skel->rodata->knob = 4;
	skel->rodata_limits->limit = 5;
"""

USE_NATIVE = OPEN + """
	skel->rodata_other->other = 6;
	skel->data->counter = 1;
	skel->data_extra->extra = 2;
	skel->bss->hits = 3;
	if (vars_bpf__load(skel) || vars_bpf__attach(skel) || skel->progs.handle == 0)
		return 1;
	vars_bpf__destroy(skel);
	return 0;
}
"""

USE_LIBBPF = OPEN + """
	skel->bss->last = 2;
	bpf_program__set_autoload(skel->progs.handle, true);
	bpf_set_prog_attach_target(skel->progs.handle, "");
	if (vars_bpf__load(skel) || vars_bpf__attach(skel))
		return 1;
	int fd = bpf_map__fd(skel->maps.bss) + bpf_map__fd(skel->maps.rodata_other);
	vars_bpf__destroy(skel);
	return fd < 0;
}
"""


@pytest.fixture(scope="module")
def variables_skeleton(tmp_path_factory):
    d = tmp_path_factory.mktemp("vars")
    (d / "vars.bpf.c").write_text(VARIABLES_BPF)
    subprocess.run(["clang-14", "-g", "-O2", "-target", "bpf", f"-I/usr/include/{MULTIARCH}",
                    "-c", str(d / "vars.bpf.c"), "-o", str(d / "vars.bpf.o")], check=True)
    return d


@pytest.mark.parametrize("first,api,body", [
    ("", "native", USE_NATIVE),
    ('#include "wasm_bpf.h"\n', "libbpf", USE_NATIVE),
    ('#include "libbpf-wasm.h"\n', "native", USE_LIBBPF),
    ("", "libbpf", USE_LIBBPF),
])
def test_skeleton_of_every_variable_kind_compiles(variables_skeleton, first, api, body):
    d = variables_skeleton
    code, out, err = run_gen("skeleton", str(d / "vars.bpf.o"), "--api", api)
    assert (code, err) == (0, "")
    assert "____fmt" not in out and "handle.msg" not in out and "handle.calls" not in out
    for section in ("rodata", "rodata_limits", "rodata_other", "data", "data_extra", "bss"):
        assert f"\tstruct vars_bpf__{section} *{section};\n" in out
    (d / "vars.skel.h").write_text(out)
    (d / "g.c").write_text(first + '#include "vars.skel.h"\n' + body)
    subprocess.run(WASM_CC + [f"-I{d}", "-Wl,--allow-undefined,--export-table", "-o",
                              str(d / "g.wasm"), str(d / "g.c")], check=True)


def test_gen_types_of_every_variable_kind_compiles(variables_skeleton):
    d = variables_skeleton
    code, out, err = run_gen("types", str(d / "vars.bpf.o"))
    assert (code, err) == (0, "")
    (d / "types.h").write_text(out)
    (d / "t.c").write_text('#include "types.h"\n')
    subprocess.run(WASM_CC + [f"-I{d}", "-c", str(d / "t.c"), "-o", str(d / "t.o")], check=True)


def test_mixing_the_two_buffer_apis_is_a_clear_error(tmp_path):
    (tmp_path / "m.c").write_text('#include "wasm_bpf.h"\n#include "libbpf-wasm.h"\n')
    out = subprocess.run(WASM_CC + ["-c", str(tmp_path / "m.c"), "-o", str(tmp_path / "m.o")],
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "a file uses upstream's bpf_buffer API (libbpf-wasm.h) or the native one" in out.stderr


def run_upstream_guest(argv, calls: int):
    """Start the guest with `argv`, call getppid() `calls` times once it is
    ready, and return (exit status, stdout lines, stderr)."""
    proc = subprocess.Popen(argv, env=cli_env(), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    if first == "ready\n":
        for _ in range(calls):
            os.getppid()
            time.sleep(0.05)
    out, err = finish_process(proc, timeout=60)
    return proc.returncode, (first + out).splitlines(), err


def assert_upstream_output(code, lines, err, calls, uprobe=True):
    assert code == 0, (lines, err)
    me = os.getpid()
    comm = open("/proc/self/comm").read().strip()
    events = [line for line in lines if line.startswith("event ")]
    # one program of the two alternatives loaded: each call seen once
    assert events == [f"event {me} {n} {comm}" for n in range(1, calls + 1)], lines
    start = lines.index(f"pid = {me} {comm}")
    assert lines[start + 1] == "     calls               : count    distribution"
    assert lines[start + 2].startswith("         0 -> 1          : 1        |")
    assert lines[start + 3].startswith("         2 -> 3          : 2        |")
    assert lines[start + 4].startswith("         4 -> 7          : 2        |")
    assert "hists empty" in lines
    # 1000: set through skel->bss before load; + calls: the uprobe attached at
    # the BINARY:FUNCTION the guest gave
    assert lines[-1] == f"uprobe {1000 + calls if uprobe else 1000}", lines


@pytest.mark.kernel
@pytest.mark.engine
@pytest.mark.parametrize("program", ["tp", "raw"])
def test_upstream_style_guest(program, no_bpf_leaks):
    module = guest("upstream")
    argv = wasm_bpf_cmd("run", "--duration", "30", module, str(os.getpid()), program, LIBC, "5")
    assert_upstream_output(*run_upstream_guest(argv, 5), calls=5)


# an event header as upstream's bootstrap keeps it: natural C types, bool,
# implicit padding before duration_ns
EVENT_H = """
#define TASK_COMM_LEN 16
#define MAX_FILENAME_LEN 127
struct event {
	int pid;
	int ppid;
	unsigned exit_code;
	unsigned long long duration_ns;
	char comm[TASK_COMM_LEN];
	char filename[MAX_FILENAME_LEN];
	bool exit_event;
};
"""


def test_gen_types_from_a_header(tmp_path):
    (tmp_path / "event.h").write_text(EVENT_H)
    code, out, err = run_gen("types", "--header", str(tmp_path / "event.h"))
    assert (code, err) == (0, "")
    assert '_Static_assert(sizeof(struct event) == 168, "sizeof(struct event) as on BPF");' in out
    assert "offsetof(struct event, exit_code) == 8," in out
    assert "offsetof(struct event, duration_ns) == 16," in out
    code, named, err = run_gen("types", "--header", str(tmp_path / "event.h"), "event")
    assert (code, err) == (0, "") and named.split("\n", 2)[2] == out.split("\n", 2)[2]
    (tmp_path / "t.c").write_text('#include "types.h"\n')
    (tmp_path / "types.h").write_text(out)
    subprocess.run(WASM_CC + [f"-I{tmp_path}", "-c", str(tmp_path / "t.c"), "-o",
                              str(tmp_path / "t.o")], check=True)


def test_gen_types_says_why_a_type_is_missing(variables_skeleton):
    code, out, err = run_gen("types", str(variables_skeleton / "vars.bpf.o"), "event")
    assert (code, out) == (1, "")
    assert err == ("error: no type 'event' in the object's BTF: clang keeps only the types that "
                   "maps, global variables and programs use (one only passed to "
                   "bpf_ringbuf_reserve() is not kept); keep it with a global in the BPF program "
                   "(`struct event *unused_event __attribute__((unused));`) or read it from its "
                   "header: wasm-bpf gen types --header FILE event\n")


def test_skeleton_of_an_object_without_btf_hints_at_dash_g(tmp_path):
    src = ('#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'
           'SEC("socket") int f(void *ctx) { return 0; }\nchar LICENSE[] SEC("license") = "GPL";\n')
    (tmp_path / "plain.bpf.c").write_text(src)
    subprocess.run(["clang-14", "-O2", "-target", "bpf", f"-I/usr/include/{MULTIARCH}", "-c",
                    str(tmp_path / "plain.bpf.c"), "-o", str(tmp_path / "plain.bpf.o")], check=True)
    code, out, err = run_gen("skeleton", str(tmp_path / "plain.bpf.o"))
    assert code == 0 and "struct plain_bpf {" in out
    assert err == ('warning: plain.bpf.o has no BTF: maps defined in SEC(".maps") and global '
                   "variables need it (compile the BPF side with clang -g; llvm-strip -g keeps "
                   "BTF)\n")


def test_gen_types_header_with_vmlinux_beside_it(tmp_path):
    """A header that needs the vmlinux.h the BPF side includes first (pid_t)
    is compiled after the vmlinux.h next to it; typedefs of anonymous
    structs are kept under their typedef name, scalar typedefs are not."""
    (tmp_path / "vmlinux.h").write_text("typedef int pid_t;\ntypedef _Bool bool;\n")
    (tmp_path / "ev.h").write_text(
        "static inline int twice(int x) { return 2 * x; }\n"
        "typedef unsigned long long stamp_t;\n"
        "typedef struct { pid_t pid; stamp_t at; bool done; } rec_t;\n"
        "enum kind { K_A = 1, K_B = 7 };\n")
    code, out, err = run_gen("types", "--header", str(tmp_path / "ev.h"))
    assert (code, err) == (0, "")
    assert "} rec_t;" in out and 'sizeof(rec_t) == 24' in out and "enum kind {" in out
    assert "stamp_t" not in out


def test_every_sdk_file_is_packaged():
    """trace_helpers.c ships with the headers: package-data covers every
    file of sdk/include (an installed wasm-bpf has what the README names)."""
    text = open(os.path.join(ROOT, "pyproject.toml")).read()
    patterns = re.search(r'^wasm_bpf_cli = \[(.*)\]$', text, re.M).group(1)
    patterns = [p.strip().strip('"') for p in patterns.split(",")]
    for sub in ("include", "go/wasmbpf"):  # the C SDK and the Go module
        for name in sorted(os.listdir(os.path.join(ROOT, "wasm_bpf_cli", "sdk", sub))):
            assert any(fnmatch.fnmatch(f"sdk/{sub}/{name}", p) for p in patterns), name
