"""Bytes into and out of a component function, fast.

wasmtime-py's `component.Func.__call__` converts a `list<u8>` one element at
a time in Python (a ctypes pointer and a call per byte): ~1.6 ms for a
64-byte event, over a second for 64 KiB. The C API's value of a list is an
array of `wasmtime_component_val_t` (a kind byte, then the value): here the
array is written and read with two strided slice copies of a bytearray, the
same bytes the element-wise code would produce, then the C function is
called directly.
"""
import ctypes
from typing import Optional

from wasm_bpf_cli.engines import wasmtime_internals as internals

_VAL = internals.ComponentVal
_STRIDE = ctypes.sizeof(_VAL)
_OF = _VAL.of.offset  # where a u8 value sits inside one element
_KIND_U8 = internals.COMPONENT_U8
_KIND_LIST = internals.COMPONENT_LIST
_KIND_OPTION = internals.COMPONENT_OPTION
_KIND_BOOL = internals.COMPONENT_BOOL


def _delete(val) -> None:
    """Free what `val` owns and leave it a plain bool: the C API drops the old
    contents of a value it writes to (Rust assignment), so a value reused for
    the next call must not point at freed memory."""
    internals.component_val_delete(ctypes.byref(val))
    val.kind = _KIND_BOOL
    val.of.boolean = False


_LIST_DATA = _OF + internals.ComponentValList.data.offset  # the element array's address
_LIST_SIZE = _OF + internals.ComponentValList.size.offset


class _Staging:
    """A host buffer laid out as an array of u8 elements: kinds written once,
    each call writes only the value bytes (one strided copy) and copies the
    used part into the list wasmtime allocated."""

    def __init__(self) -> None:
        self.cap = 0
        self.buf = None
        self.view = None

    def fill(self, data: bytes) -> int:
        n = len(data)
        if n > self.cap:
            cap = max(n, 2 * self.cap, 256)
            raw = bytearray(cap * _STRIDE)
            raw[0::_STRIDE] = bytes((_KIND_U8,)) * cap
            self.buf = (ctypes.c_char * len(raw)).from_buffer_copy(raw)
            self.view = memoryview(self.buf).cast("B")
            self.cap = cap
        self.view[_OF:n * _STRIDE:_STRIDE] = data
        return ctypes.addressof(self.buf)


def _lower_bytes(data: bytes, val, staging: _Staging) -> None:
    """Make `val` a list<u8> holding `data` (freed by wasmtime_component_val_delete)."""
    n = len(data)
    val.kind = _KIND_LIST
    internals.component_vallist_new_uninit(ctypes.byref(val.of.list), n)
    if n:
        dst = ctypes.c_void_p.from_address(ctypes.addressof(val) + _LIST_DATA).value
        ctypes.memmove(dst, staging.fill(data), n * _STRIDE)


def _lift_bytes(val) -> bytes:
    if val.kind != _KIND_LIST:
        raise TypeError("the processor returned something other than a list<u8>")
    base = ctypes.addressof(val)
    n = ctypes.c_size_t.from_address(base + _LIST_SIZE).value
    if n == 0:
        return b""
    src = ctypes.c_void_p.from_address(base + _LIST_DATA).value
    raw = ctypes.string_at(src, n * _STRIDE)
    if raw[0::_STRIDE].count(_KIND_U8) != n:
        raise TypeError("the processor returned a list whose elements are not u8")
    return raw[_OF::_STRIDE]


class BytesCall:
    """Calls an export of type `func(list<u8>) -> option<list<u8>>` (checked
    by world.py before) of one instance. Raises WasmtimeError on a trap."""

    def __init__(self, func, store):
        self._func = internals.func_ref(func)
        self._post = func.post_return
        self._store = store
        self._params = (_VAL * 1)()
        self._result = _VAL()
        self._staging = _Staging()

    def __call__(self, data: bytes) -> Optional[bytes]:
        param = self._params[0]
        result = self._result
        _lower_bytes(data, param, self._staging)
        try:
            err = internals.component_func_call(self._func, internals.store_context(self._store),
                                                self._params, 1, ctypes.byref(result), 1)
        finally:
            _delete(param)
        if err:
            raise internals.error_from_ptr(err)
        try:
            if result.kind != _KIND_OPTION:
                raise TypeError("the processor returned something other than an option")
            some = result.of.option
            out = _lift_bytes(some.contents) if some else None
        finally:
            _delete(result)
        self._post(self._store)  # lets the processor free what it returned
        return out
