#!/usr/bin/env python3
"""Run a guest under wasmtime with a FAKE `wasm_bpf` host (no kernel): for
checking that guests link, parse args, patch globals and print the right
format. Not the runner.

    fakehost.py GUEST.wasm [args...]

Fake behaviour: load -> handle 1 (the ELF passed is saved to
$FAKEHOST_DUMP if set); attach -> 0; map_fd_by_name -> 3 for any name but
"nope" (-44); map_operate -> -44; close -> 0; buffer_poll delivers the
samples given as hex in $FAKEHOST_SAMPLES (comma separated) on the first
call, then returns -27 (-EINTR)."""
import os
import sys

import wasmtime


def main() -> int:
    path, args = sys.argv[1], sys.argv[1:]
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    wasi = wasmtime.WasiConfig()
    wasi.argv = args
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    wasi.env = [("FAKE", "1")]
    store.set_wasi(wasi)
    module = wasmtime.Module(engine, open(path, "rb").read())
    inst = {}
    samples = [bytes.fromhex(s) for s in os.environ.get("FAKEHOST_SAMPLES", "").split(",") if s]
    state = {"polled": False}
    i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()

    def mem():
        return inst["i"].exports(store)["memory"]

    def load(p, n):
        if n <= 0:
            return 0
        data = mem().read(store, p, p + n)
        if os.environ.get("FAKEHOST_DUMP"):
            open(os.environ["FAKEHOST_DUMP"], "wb").write(data)
        return 1

    def cstr(p):
        m = mem().read(store, p, min(p + 256, mem().data_len(store)))
        return m.split(b"\0")[0].decode()

    def fd_by_name(h, p):
        return -44 if cstr(p) == "nope" else 3

    def poll(h, fd, fn, ctx, data, max_size, timeout):
        if state["polled"]:
            return -27
        state["polled"] = True
        table = inst["i"].exports(store)["__indirect_function_table"]
        f = table.get(store, fn)
        for s in samples:
            mem().write(store, s[:max_size], data)
            f(store, ctx, data, len(s))
        return len(samples)

    defs = {
        "wasm_load_bpf_object": ([i32, i32], [i64], load),
        "wasm_attach_bpf_program": ([i64, i32, i32], [i32], lambda h, n, t: 0),
        "wasm_bpf_buffer_poll": ([i64, i32, i32, i32, i32, i32, i32], [i32], poll),
        "wasm_bpf_map_fd_by_name": ([i64, i32], [i32], fd_by_name),
        "wasm_bpf_map_operate": ([i32, i32, i32, i32, i32, i64], [i32], lambda *a: -44),
        "wasm_close_bpf_object": ([i64], [i32], lambda h: 0),
    }
    for name, (p, r, fn) in defs.items():
        linker.define_func("wasm_bpf", name, wasmtime.FuncType(p, r), fn)
    inst["i"] = linker.instantiate(store, module)
    try:
        inst["i"].exports(store)["_start"](store)
    except wasmtime.ExitTrap as e:
        return e.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
