"""Every use of wasmtime-py's private API, in one place.

The wasmtime adapter calls wasm functions and defines host functions through
wasmtime's raw `*_unchecked` C API (~20x cheaper per crossing than the
public `Func.__call__`, shared/PERF.md), which wasmtime-py exposes only in
its private modules and attributes. Nothing else in the package touches
them: a new wasmtime-py that renames one breaks here, and only here.

Checked against wasmtime-py 49.0.0 and 50.0.1, the ends of the range
pyproject.toml declares (`make test-deps` runs the engine's tests on both).
What each name is, in wasmtime-py's sources:
- `wasmtime._bindings`: ctypes declarations generated from wasmtime's C
  headers (`_wasmtime_func_call_unchecked`, `_wasmtime_func_new_unchecked`,
  `wasmtime_func_unchecked_callback_t`);
- `wasmtime._ffi`: the C types and a few functions (`wasmtime_val_raw_t`,
  `wasm_trap_t`, `wasmtime_func_t`, `wasmtime_memory_data`,
  `wasmtime_memory_data_size`; for components `wasmtime_component_val_t`,
  its kinds, `wasmtime_component_func_call` and the value helpers);
- `Store._context()`: the `wasmtime_context_t *` of a store;
- `Func._func` (also `component.Func._func`) / `Memory._memory`: the C
  structs behind a function and a memory;
- `Func._from_raw`, `WasmtimeError._from_ptr`, `Trap._from_ptr`,
  `Trap._consume`: wrapping a C handle in its Python class and back;
- `_ffi.dll`: the loaded wasmtime library (the C poll loop and the C
  fd_write call `wasmtime_func_call_unchecked`, `wasmtime_memory_data` and
  `wasmtime_memory_data_size` themselves).
"""
import ctypes

import wasmtime
from wasmtime import _bindings as _raw
from wasmtime import _ffi as _c

# wasmtime_func_call_unchecked(context, func, args_and_results, nargs_and_results, trap_ret)
func_call_unchecked = _raw._wasmtime_func_call_unchecked
# wasmtime_func_new_unchecked(context, functype, callback, env, finalizer, func_ret)
func_new_unchecked = _raw._wasmtime_func_new_unchecked
UncheckedCallback = _raw.wasmtime_func_unchecked_callback_t
ValRaw = _c.wasmtime_val_raw_t  # 16 bytes: one argument or result of an unchecked call
Trap = _c.wasm_trap_t
FuncHandle = _c.wasmtime_func_t
memory_data = _c.wasmtime_memory_data  # (context, memory) -> uint8_t *
memory_data_size = _c.wasmtime_memory_data_size  # (context, memory) -> size_t

# The component model's C values and call (components/values.py passes bytes
# to and from a processor component without wasmtime-py's per-element code).
ComponentVal = _c.wasmtime_component_val_t
ComponentValList = _c.wasmtime_component_vallist_t
COMPONENT_U8 = _c.WASMTIME_COMPONENT_U8.value
COMPONENT_LIST = _c.WASMTIME_COMPONENT_LIST.value
COMPONENT_OPTION = _c.WASMTIME_COMPONENT_OPTION.value
COMPONENT_BOOL = _c.WASMTIME_COMPONENT_BOOL.value
component_val_delete = _c.wasmtime_component_val_delete  # (val *)
component_vallist_new_uninit = _c.wasmtime_component_vallist_new_uninit  # (list *, n)
# (func, context, params, nparams, results, nresults) -> wasmtime_error_t *
component_func_call = _c.wasmtime_component_func_call


def store_context(store: wasmtime.Store):
    """The store's wasmtime_context_t pointer, for the raw calls."""
    return store._context()


def func_ref(func):
    """A pointer to the C struct of a wasmtime.Func (for func_call_unchecked)
    or of a wasmtime.component.Func (for component_func_call)."""
    return ctypes.byref(func._func)


def memory_ref(memory: wasmtime.Memory):
    """A pointer to the memory's wasmtime_memory_t, for memory_data(_size)."""
    return ctypes.byref(memory._memory)


def func_from_handle(handle) -> wasmtime.Func:
    """The Func for a wasmtime_func_t that func_new_unchecked filled in."""
    return wasmtime.Func._from_raw(handle)


def error_from_ptr(error) -> wasmtime.WasmtimeError:
    """The WasmtimeError (or ExitTrap) for a wasmtime_error_t * a call returned."""
    return wasmtime.WasmtimeError._from_ptr(error)


def trap_from_ptr(trap) -> wasmtime.Trap:
    """The Trap for a wasm_trap_t * a call returned."""
    return wasmtime.Trap._from_ptr(trap)


# For C code that calls wasmtime itself (abi/_nativepoll.c and
# abi/_nativestdio.c through engines/wasmtime_nativepoll.py and
# engines/wasmtime_nativestdio.py): the library's own entry points, and the
# addresses of the C structs behind a function and a memory.
ErrorPtr = ctypes.POINTER(_c.wasmtime_error_t)
TrapPtr = ctypes.POINTER(_c.wasm_trap_t)
c_func_call_unchecked = _c.dll.wasmtime_func_call_unchecked
c_memory_data = _c.dll.wasmtime_memory_data
c_memory_data_size = _c.dll.wasmtime_memory_data_size


def func_address(func: wasmtime.Func) -> int:
    """The address of a Func's wasmtime_func_t."""
    return ctypes.addressof(func._func)


def memory_address(memory: wasmtime.Memory) -> int:
    """The address of a Memory's wasmtime_memory_t."""
    return ctypes.addressof(memory._memory)


def new_trap_address(message: str) -> int:
    """The address of a new wasm_trap_t, owned by whoever it is returned to
    (a raw host callback returns it to make the guest trap)."""
    return ctypes.cast(wasmtime.Trap(message)._consume(), ctypes.c_void_p).value
