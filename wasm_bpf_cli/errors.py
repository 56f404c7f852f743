"""The project's own exception types. Every layer raises these; the CLI maps
them to exit codes and prints their message as one line."""


class WasmBpfError(Exception):
    """Base of every error this package raises on purpose. The message is one
    printable line: names read from hostile input may hold any byte, so
    control characters are shown escaped."""

    exit_code = 1

    def __init__(self, message: str = "", *args):
        if isinstance(message, str) and not message.isprintable():
            message = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
        super().__init__(message, *args)


class UsageError(WasmBpfError):
    """The user asked for something malformed (bad option value, bad path)."""

    exit_code = 2


class ModuleError(WasmBpfError):
    """The .wasm file is missing, unreadable, not wasm, or needs imports we lack."""


class EngineError(WasmBpfError):
    """The wasm engine is unavailable or failed outside the guest's control."""


class PrivilegeError(WasmBpfError):
    """The process lacks what the kernel needs (root / CAP_BPF, BTF, mounts)."""
