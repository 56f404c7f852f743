"""The error `gen` raises for input it cannot turn into a header."""
from wasm_bpf_cli.errors import WasmBpfError


class GenError(WasmBpfError):
    """The object is unreadable, not BPF, or lacks what the header needs
    (e.g. BTF for its globals). The message is one line."""
