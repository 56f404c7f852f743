"""wasmtime's entry points for the C poll loop (abi/nativepoll.py,
abi/_nativepoll.c): the guest's `wasm_bpf_buffer_poll` import defined as the
C function `wb_wasmtime_poll` (it calls the Python host function for what it
does not serve), and the dispatch loop called from C through wasmtime's own
`wasmtime_func_call_unchecked` (the library wasmtime-py loaded).

The C loop runs while the guest's thread is inside wasm, where wasmtime-py's
ctypes call released the GIL: a poll served there takes no Python at all.
"""
import ctypes
from typing import Optional

import wasmtime

from wasm_bpf_cli.engines import wasmtime_internals as internals

_FAILURE = ctypes.CFUNCTYPE(ctypes.c_void_p)
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(0)


class _Call(ctypes.Structure):
    """struct wb_wasmtime_call of _nativepoll.c."""

    _fields_ = [("call_unchecked", ctypes.c_void_p), ("ctx", ctypes.c_void_p), ("func", ctypes.c_void_p),
                ("error", ctypes.c_void_p), ("trap", ctypes.c_void_p)]


def _address(obj) -> int:
    return ctypes.cast(obj, ctypes.c_void_p).value or 0


def guest_memory(instance):
    """(data, size, a, b) of struct wb_guest_memory (abi/_guestmem.h) for a
    bound instance's memory: wasmtime's own memory_data and memory_data_size,
    the store's context and the memory's C struct. The C helpers read the
    base and size through them on every call."""
    return (_address(internals.c_memory_data), _address(internals.c_memory_data_size),
            _address(instance.context), internals.memory_address(instance.memory._memory))


class NativePollGlue:
    """Per instance: the poll import in C and the calls into dispatch loops."""

    def __init__(self, instance, native):
        self.instance = instance
        self.native = native
        self._calls = []  # _Call structs and the Funcs they point to: alive as long as the store
        self._failure = _FAILURE(self._on_failure)
        self._failed_call: Optional[_Call] = None

    def define(self, python_callback, functype) -> wasmtime.Func:
        """The poll import: C first, `python_callback` (the host trampoline)
        for what C does not serve."""
        lib = self.native.lib
        state = self.native.state
        state.fallback = _address(python_callback)
        state.failure = _address(self._failure)
        handle = internals.FuncHandle()
        internals.func_new_unchecked(
            self.instance.context, functype.ptr(),
            ctypes.cast(_address(lib.wb_wasmtime_poll), internals.UncheckedCallback),
            self.native.address, _NO_FINALIZER, ctypes.byref(handle))
        return internals.func_from_handle(handle)

    def entry(self, name: str):
        """(call, call_env, mem_base, guest_memory) for the dispatch export
        `name`, or None if the module has none."""
        inst = self.instance
        func = inst._exports.get(name) if inst._exports is not None else None
        if not isinstance(func, wasmtime.Func):
            return None
        call = _Call()
        call.call_unchecked = _address(internals.c_func_call_unchecked)
        call.ctx = _address(inst.context)
        call.func = internals.func_address(func)
        self._calls.append((call, func))
        return (_address(self.native.lib.wb_wasmtime_call), ctypes.addressof(call), inst.memory.base_address(),
                guest_memory(inst))

    def _on_failure(self) -> int:
        """The dispatch loop trapped or the guest exited inside it: the same
        exception as the Python path (stashed; the guest unwinds with a trap)."""
        error = trap = None
        for call, _ in self._calls:
            if call.error or call.trap:
                error, trap = call.error, call.trap
                call.error = call.trap = None
                break
        inst = self.instance
        try:
            inst.raise_failure(ctypes.cast(error, internals.ErrorPtr) if error else None,
                               ctypes.cast(trap, internals.TrapPtr) if trap else None)
            raise RuntimeError("native poll: a failed call without an error")
        except BaseException as exc:  # noqa: B902 - must not unwind through wasm
            inst.pending = exc
            return internals.new_trap_address("host function raised")
