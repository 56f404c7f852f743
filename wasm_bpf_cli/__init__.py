"""wasm-bpf: run WebAssembly eBPF programs (wasm-bpf guests) from Python.

The public API is `Runner` with `RunOptions`; the CLI (`wasm-bpf`) is built
on it. Heavy imports (engines, libbpf) happen only when a run starts.
"""
import logging

from wasm_bpf_cli.errors import (EngineError, ModuleError, PrivilegeError, UsageError,
                                 WasmBpfError)

__version__ = "0.1.0"

__all__ = [
    "Runner", "RunOptions", "RunResult", "RunStatus", "BufferResult", "Outcome", "LineWriter",
    "WasmBpfError", "ModuleError", "EngineError", "PrivilegeError", "UsageError",
    "__version__",
]

# A library logs; the application decides where it goes (the CLI: stderr).
logging.getLogger("wasm_bpf").addHandler(logging.NullHandler())


def __getattr__(name):  # lazy: `import wasm_bpf_cli` stays cheap for --help
    if name in ("Runner", "RunOptions", "RunResult", "RunStatus", "BufferResult", "Outcome"):
        from wasm_bpf_cli import runner

        return getattr(runner, name)
    if name == "LineWriter":
        from wasm_bpf_cli.lines import LineWriter

        return LineWriter
    raise AttributeError(name)
