"""Processor components: WebAssembly components, written in any language,
that a guest hands its data to (the `wasm-bpf:processor` WIT world in
`wit/processor.wit`).

The runner loads each one given with `--with NAME=FILE` into a wasmtime
component store of its own, whatever engine runs the guest: the guest
reaches them through the engine-neutral host function `wasm_bpf_call`
(abi/calls.py), and a `--filter MAP=NAME` runs one on each sample of a
buffer before the guest's callback.

- `world.py`: the world a processor must export, and whether a component fits
- `values.py`: bytes in and out of a component call without per-byte Python
- `processor.py`: one loaded processor (compile, cache, init, call, interrupt)
- `processors.py`: the named set a run uses
"""
import os

WIT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wit")
WIT_PACKAGE = "wasm-bpf:processor@0.1.0"
WORLD = "processor"


def require_component_api() -> None:
    """EngineError, one line, when the installed wasmtime-py has no
    component API (wasmtime.component; tested with wasmtime-py 50)."""
    try:
        from wasmtime import component  # noqa: F401
    except ImportError:
        from wasm_bpf_cli.errors import EngineError

        raise EngineError("processor components need wasmtime-py with wasmtime.component "
                          "(tested: 50): pip install -U wasmtime") from None
