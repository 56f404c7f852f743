"""Builders shared by the inspect tests (no tests here): a real BPF object
compiled with clang, and wasm modules made with wasmtime.wat2wasm whose data
segments hold such objects."""
import functools
import os
import shutil
import subprocess
import tempfile

import pytest
import wasmtime

from wasm_bpf_cli.abi.signatures import REFERENCE_FUNCTIONS, WASM_BPF_FUNCTIONS

BPF_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct event { int pid; char comm[16]; };
struct task_lite { int tgid; } __attribute__((preserve_access_index));

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} rb SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8192);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, unsigned long long);
} exec_start SEC(".maps");

const volatile unsigned long long min_duration_ns = 0;
const volatile int target_pid = 42;
int counter = 7;
unsigned long long dropped;

SEC("tp/sched/sched_process_exec")
int handle_exec(void *ctx)
{
    struct task_lite *task = (void *)bpf_get_current_task();
    int tgid = BPF_CORE_READ(task, tgid);
    if (target_pid && tgid != target_pid)
        return 0;
    struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
    if (!e) {
        dropped++;
        return 0;
    }
    e->pid = tgid;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    counter++;
    if (min_duration_ns)
        e->pid = 0;
    bpf_ringbuf_submit(e, 0);
    return 0;
}

SEC("kprobe/do_unlinkat")
int on_unlink(void *ctx) { return 0; }

SEC("xdp")
int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }

char LICENSE[] SEC("license") = "GPL";
"""

CLANG = shutil.which("clang-14") or shutil.which("clang")


@functools.lru_cache(maxsize=None)
def bpf_object() -> bytes:
    """The compiled object's bytes (compiled once per test process)."""
    if CLANG is None:
        pytest.fail("clang-14 is required to build the inspect test inputs")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.bpf.c")
        out = os.path.join(tmp, "probe.bpf.o")
        with open(src, "w") as f:
            f.write(BPF_SOURCE)
        multiarch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True,
                                   text=True).stdout.strip() or "x86_64-linux-gnu"
        subprocess.run([CLANG, "-g", "-O2", "-target", "bpf", "-c", src, "-o", out,
                        f"-I/usr/include/{multiarch}"], check=True, capture_output=True)
        with open(out, "rb") as f:
            return f.read()


def _wat_bytes(data: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in data)


def _func_type(params, results) -> str:
    p = f" (param {' '.join(params)})" if params else ""
    r = f" (result {' '.join(results)})" if results else ""
    return p + r


def wasm_bpf_imports(names=None):
    names = REFERENCE_FUNCTIONS if names is None else names  # a guest of the reference ABI
    return [("wasm_bpf", n, WASM_BPF_FUNCTIONS[n].params, WASM_BPF_FUNCTIONS[n].results)
            for n in names]


WASI_IMPORTS = [
    ("wasi_snapshot_preview1", "fd_write", ("i32",) * 4, ("i32",)),
    ("wasi_snapshot_preview1", "proc_exit", ("i32",), ()),
]


def make_wasm(segments=(), imports=None, memory=True, table=True, start=True,
              exports=(), base=1024, extra="") -> bytes:
    """A module importing `imports` [(module, name, params, results)] (default:
    WASI + every wasm_bpf function), with active data segments `segments`
    placed from address `base` (a None entry is a passive empty segment),
    `exports` [(name, params, results)] as extra exported functions."""
    if imports is None:
        imports = WASI_IMPORTS + wasm_bpf_imports()
    lines = ["(module"]
    for module, name, params, results in imports:
        lines.append(f'  (import "{module}" "{name}" (func{_func_type(params, results)}))')
    if memory:
        lines.append('  (memory (export "memory") 2)')
    if table:
        lines.append('  (table (export "__indirect_function_table") 1 funcref)')
    if start:
        lines.append('  (func (export "_start"))')
    for name, params, results in exports:
        body = " ".join(f"({r}.const 0)" for r in results)
        lines.append(f'  (func (export "{name}"){_func_type(params, results)} {body})')
    addr = base
    for seg in segments:
        if seg is None:
            lines.append('  (data "")')
            continue
        lines.append(f'  (data (i32.const {addr}) "{_wat_bytes(seg)}")')
        addr += (len(seg) + 15) // 16 * 16
    lines.append(extra)
    lines.append(")")
    return bytes(wasmtime.wat2wasm("\n".join(lines)))
