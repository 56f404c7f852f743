#!/usr/bin/env python3
"""check_imports.py X.wasm...: each module must import only from
wasi_snapshot_preview1 and wasm_bpf (plus callback-wrapper/mywrap for the
wrapper guests), with the ABI's signatures, and export memory (+ the function
table for non-wrapper guests). Exit 1 on any problem."""
import sys

import wasmtime

SIGS = {
    "wasm_load_bpf_object": (["i32", "i32"], ["i64"]),
    "wasm_attach_bpf_program": (["i64", "i32", "i32"], ["i32"]),
    "wasm_bpf_buffer_poll": (["i64", "i32", "i32", "i32", "i32", "i32", "i32"], ["i32"]),
    "wasm_bpf_map_fd_by_name": (["i64", "i32"], ["i32"]),
    "wasm_bpf_map_operate": (["i32", "i32", "i32", "i32", "i32", "i64"], ["i32"]),
    "wasm_close_bpf_object": (["i64"], ["i32"]),
}
WRAPPER_POLL = (["i64", "i32", "i32", "i32", "i32", "i32"], ["i32"])
WRAPPERS = {"wrapper.wasm": ("callback-wrapper", "go-callback"),
            "wrapper_custom.wasm": ("mywrap", "my-cb")}


def sig(ft):
    return ([str(t) for t in ft.params], [str(t) for t in ft.results])


def check(path):
    errs = []
    m = wasmtime.Module(wasmtime.Engine(), open(path, "rb").read())
    name = path.rsplit("/", 1)[-1]
    wrap = WRAPPERS.get(name)
    for i in m.imports:
        if i.module == "wasi_snapshot_preview1":
            continue
        if i.module == "wasm_bpf" and i.name in SIGS:
            if sig(i.type) != SIGS[i.name]:
                errs.append(f"{i.name}: signature {sig(i.type)}")
        elif wrap and i.module == wrap[0] and i.name == "wasm_bpf_buffer_poll":
            if sig(i.type) != WRAPPER_POLL:
                errs.append(f"wrapper poll: signature {sig(i.type)}")
        else:
            errs.append(f"unexpected import {i.module}.{i.name}")
    exports = {e.name: e.type for e in m.exports}
    need = ["memory", "_start"] + ([wrap[1]] if wrap else ["__indirect_function_table"])
    errs += [f"missing export {n}" for n in need if n not in exports]
    if wrap and wrap[1] in exports and sig(exports[wrap[1]]) != (["i32"] * 3, ["i32"]):
        errs.append("callback export has the wrong type")
    mods = sorted({f"{i.module}.{i.name}" for i in m.imports if i.module != "wasi_snapshot_preview1"})
    print(f"{name}: {'OK' if not errs else 'FAIL'} {' '.join(mods)}")
    for e in errs:
        print("   ", e)
    return not errs


if __name__ == "__main__":
    sys.exit(0 if all([check(p) for p in sys.argv[1:]]) else 1)
