"""Can this runner run a module? Checks its imports and exports against the
host ABI (wasm_bpf_cli.abi.signatures) and returns the problems, each naming
the import or export and what was expected."""
from typing import List

from wasm_bpf_cli.abi import signatures as abi

from .wasi import WASI_PREVIEW1_FUNCTIONS
from .wasm_reader import WasmModule


def _sig(params, results) -> str:
    return f"({', '.join(params)}) -> ({', '.join(results)})"


def check_module(mod: WasmModule, wrapper_module: str = abi.DEFAULT_WRAPPER_MODULE,
                 callback_export: str = abi.DEFAULT_CALLBACK_EXPORT) -> List[str]:
    problems: List[str] = []
    table_poll = wrapper_poll = False
    for imp in mod.imports:
        where = f"import {imp.module}.{imp.name}"
        if imp.module == abi.WASI_MODULE:
            if imp.kind != "func":
                problems.append(f"{where}: is a {imp.kind}, WASI provides only functions")
            elif imp.name not in WASI_PREVIEW1_FUNCTIONS:
                problems.append(f"{where}: not a WASI preview1 function")
            continue
        if imp.module == abi.WASM_BPF_MODULE:
            expected = abi.WASM_BPF_FUNCTIONS.get(imp.name)
            if expected is None:
                problems.append(f"{where}: not a wasm_bpf host function")
                continue
            if imp.name == "wasm_bpf_buffer_poll":
                table_poll = True
        elif imp.module == wrapper_module:
            if imp.name != abi.WRAPPER_POLL_NAME:
                problems.append(f"{where}: the {wrapper_module} module provides only "
                                f"{abi.WRAPPER_POLL_NAME}")
                continue
            expected = abi.WRAPPER_POLL
            wrapper_poll = True
        else:
            problems.append(f"{where}: module {imp.module!r} is not provided by this runner")
            continue
        if imp.kind != "func":
            problems.append(f"{where}: is a {imp.kind}, expected a function {_sig(*expected)}")
        elif (tuple(imp.type.params), tuple(imp.type.results)) != (expected.params, expected.results):
            problems.append(f"{where}: signature {_sig(*imp.type)} does not match the expected "
                            f"{_sig(*expected)}")

    def need_export(name: str, kind: str, why: str, signature=None, fix: str = "") -> None:
        exp = mod.export(name)
        if exp is None:
            problems.append(f"export {name}: missing ({why}){fix}")
        elif exp.kind != kind:
            problems.append(f"export {name}: is a {exp.kind}, expected a {kind} ({why})")
        elif signature is not None:
            actual = mod.func_type(exp.index)
            if actual is None or (actual.params, actual.results) != (signature.params, signature.results):
                shown = _sig(*actual) if actual else "unknown"
                problems.append(f"export {name}: signature {shown} does not match the "
                                f"expected {_sig(*signature)} ({why})")

    need_export(abi.MEMORY_EXPORT, "memory", "host functions read and write guest memory")
    need_export("_start", "func", "the runner starts a WASI command", abi.Signature((), ()))
    if table_poll:
        need_export(abi.TABLE_EXPORT, "table",
                    "wasm_bpf.wasm_bpf_buffer_poll calls samples back through it",
                    fix=": link the guest with -Wl,--export-table (`wasm-bpf sdk --cflags` includes it)")
    if wrapper_poll:
        need_export(callback_export, "func",
                    f"{wrapper_module}.{abi.WRAPPER_POLL_NAME} delivers samples to it",
                    abi.SAMPLE_CALLBACK)
    return problems
