"""The one error type `inspect` raises for unreadable input."""
from wasm_bpf_cli.errors import ModuleError


class InspectError(ModuleError):
    """The input is not a readable wasm module or BPF object. The message names
    what is wrong and where (a file offset in hex), in one line."""
