"""`wasm-bpf inspect`: read a wasm-bpf module or BPF object without a kernel.

Public API: `inspect_path`, `inspect_bytes` (the report document, keys in
`report.py`), `InspectError`. Lower layers: wasm_reader, elf_reader,
btf_reader, bpf_object, verdict."""
from .errors import InspectError

__all__ = ["InspectError", "inspect_bytes", "inspect_path"]


def __getattr__(name):  # lazy: the runner uses the readers, not the report
    if name in ("inspect_bytes", "inspect_path"):
        from . import report

        return getattr(report, name)
    raise AttributeError(name)
