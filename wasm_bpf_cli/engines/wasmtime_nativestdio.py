"""wasmtime's WASI `fd_write` defined as the C function `wb_wasmtime_fd_write`
(abi/_nativestdio.c): a guest's writes to stdout and stderr, where they go to
the host's own fds, are served without entering Python.

GuestStdio.fd_write (stdio.py) stays the reference and the fallback: the C
function calls it for every other fd, for a stream that goes to a Python
callable (the API's callbacks, the LineWriter), and for a call before the
guest's memory is known. It needs the helper built at install time (the
extension of abi/nativepoll.py; WASM_BPF_NATIVE_POLL=0 turns both C paths
off, WASM_BPF_NATIVE_STDIO=0 this one alone). wasmer has no C entry for host
functions (they are Python callables): it keeps the Python path.
"""
import ctypes
import os
from typing import Optional

import wasmtime

from wasm_bpf_cli.abi import nativepoll
from wasm_bpf_cli.abi.nativepoll import GuestMemoryRef
from wasm_bpf_cli.engines import wasmtime_internals as internals
from wasm_bpf_cli.engines.wasmtime_nativepoll import guest_memory

_CLOSED = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_int32)
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(0)


class StdioState(ctypes.Structure):
    """struct wb_stdio of _nativestdio.c (same order, same types)."""

    _fields_ = [("mem", GuestMemoryRef), ("direct", ctypes.c_int32 * 3), ("pad", ctypes.c_int32),
                ("fallback", ctypes.c_void_p), ("closed", ctypes.c_void_p), ("served", ctypes.c_uint64)]


def library() -> Optional[ctypes.CDLL]:
    """The helper, if it was built with the C fd_write and neither switch is 0."""
    if os.environ.get("WASM_BPF_NATIVE_STDIO", "1") == "0":
        return None
    lib = nativepoll.library()
    return lib if lib is not None and hasattr(lib, "wb_wasmtime_fd_write") else None


def _address(obj) -> int:
    return ctypes.cast(obj, ctypes.c_void_p).value or 0


class NativeStdioGlue:
    """Per instance: the fd_write import in C, and what it needs to know."""

    def __init__(self, instance, streams, lib: ctypes.CDLL):
        self.instance = instance
        self.streams = streams
        self.lib = lib
        self.state = StdioState()
        for fd in (1, 2):  # a Python sink (callable) must see every write: Python serves it
            self.state.direct[fd] = int(streams.sinks[fd] is None)
        self._closed = _CLOSED(self._on_closed)
        self.state.closed = _address(self._closed)

    def define(self, python_callback, functype) -> wasmtime.Func:
        """The fd_write import: C first, `python_callback` (the host
        trampoline over GuestStdio.fd_write) for what C does not serve."""
        self.state.fallback = _address(python_callback)
        handle = internals.FuncHandle()
        internals.func_new_unchecked(
            self.instance.context, functype.ptr(),
            ctypes.cast(_address(self.lib.wb_wasmtime_fd_write), internals.UncheckedCallback),
            ctypes.addressof(self.state), _NO_FINALIZER, ctypes.byref(handle))
        return internals.func_from_handle(handle)

    def bind(self) -> None:
        """The instance's memory exists: C may serve writes from now on."""
        self.state.mem.set(*guest_memory(self.instance))

    def unbind(self) -> None:
        self.state.mem.set(None, None, None, None)

    @property
    def served(self) -> int:
        """fd_write calls the C function answered itself."""
        return self.state.served

    def _on_closed(self, fd: int) -> int:
        """A write got EPIPE: what the Python path does then (the runner stops
        the run); an exception makes the guest trap, as from the Python path."""
        try:
            if self.streams.on_closed_output is not None:
                self.streams.on_closed_output(fd)
            return 0
        except BaseException as exc:  # noqa: B902 - must not unwind through wasm
            self.instance.pending = exc
            return internals.new_trap_address("host function raised")
