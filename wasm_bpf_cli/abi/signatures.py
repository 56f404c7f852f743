"""The host functions a wasm-bpf guest may import (see ABI.md), as data.

Shared by the runner (which provides them) and by `inspect` (which checks a
module against them). Types are wasm value types: "i32", "i64".
"""
from typing import Dict, NamedTuple, Tuple


class Signature(NamedTuple):
    params: Tuple[str, ...]
    results: Tuple[str, ...]


WASM_BPF_MODULE = "wasm_bpf"
WASI_MODULE = "wasi_snapshot_preview1"
DEFAULT_WRAPPER_MODULE = "callback-wrapper"
DEFAULT_CALLBACK_EXPORT = "go-callback"
TABLE_EXPORT = "__indirect_function_table"
MEMORY_EXPORT = "memory"

# The ABI of the reference runtimes (ABI.md).
REFERENCE_FUNCTIONS: Dict[str, Signature] = {
    "wasm_load_bpf_object": Signature(("i32", "i32"), ("i64",)),
    "wasm_attach_bpf_program": Signature(("i64", "i32", "i32"), ("i32",)),
    "wasm_bpf_buffer_poll": Signature(("i64", "i32", "i32", "i32", "i32", "i32", "i32"), ("i32",)),
    "wasm_bpf_map_fd_by_name": Signature(("i64", "i32"), ("i32",)),
    "wasm_bpf_map_operate": Signature(("i32", "i32", "i32", "i32", "i32", "i64"), ("i32",)),
    "wasm_close_bpf_object": Signature(("i64",), ("i32",)),
}

# What this runner provides: the reference ABI, and this project's own
# additions (a guest that imports them runs only here).
WASM_BPF_FUNCTIONS: Dict[str, Signature] = {
    **REFERENCE_FUNCTIONS,
    # hand bytes to a processor component (abi/calls.py, wasm_bpf.h's wasm_bpf_call)
    "wasm_bpf_call": Signature(("i32", "i32", "i32", "i32", "i32"), ("i32",)),
}

# The Go / TinyGo variant: imported from the wrapper module (name configurable);
# samples are delivered through the exported callback instead of the table.
WRAPPER_POLL_NAME = "wasm_bpf_buffer_poll"
WRAPPER_POLL = Signature(("i64", "i32", "i32", "i32", "i32", "i32"), ("i32",))
SAMPLE_CALLBACK = Signature(("i32", "i32", "i32"), ("i32",))

# The table-variant poll import renamed by an engine that makes the guest run
# the dispatch loop of its polls itself (engines/rewrite.serve_poll_in_wasm):
# no arguments (the guest writes the poll's into the staging slot: wasmer-python
# keeps each argument's object until the guest exits). Not part of the ABI: no
# guest imports it by this name.
STAGE_POLL_NAME = "wasm_bpf_buffer_poll_stage"
STAGE_POLL = Signature((), ("i32",))
# Where in the slot (rewrite.SLOT_ARGS) and how the poll's arguments are written.
STAGE_ARGS_OFFSET = 32
STAGE_ARGS_FORMAT = "<qiiiiii"
