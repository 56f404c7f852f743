"""The wasmtime adapter (PyPI `wasmtime`).

The hot crossings (host functions, guest callbacks) use wasmtime's raw
`*_unchecked` C API with preallocated argument arrays: ~20x cheaper per call
than wasmtime-py's `Func.__call__` (see shared/PERF.md). Everything else uses
the public Python API. Interruption uses epochs: the store's deadline is one
tick away and only `interrupt()` ever advances the epoch. What this needs of
wasmtime-py's private API goes through wasmtime_internals.py.
"""
import ctypes
import re
import struct
from typing import Callable, Dict, List, Optional, Sequence

import wasmtime

from wasm_bpf_cli.abi.signatures import DEFAULT_CALLBACK_EXPORT, Signature
from wasm_bpf_cli.engines.base import (Engine, GuestExit, GuestMemory, GuestTrap, HostFunction,
                                       Instance, WasiOptions)
from wasm_bpf_cli.engines import rewrite, stdio
from wasm_bpf_cli.engines import wasmtime_internals as internals
from wasm_bpf_cli.errors import EngineError, ModuleError

_VERSION: Optional[str] = None
_RAW_CALL = internals.func_call_unchecked
_RAW_NEW = internals.func_new_unchecked
# wasmtime_func_unchecked_callback_t, with the args array as a plain address
_ADDR_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                  ctypes.c_size_t)
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(0)
_VALTYPES = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64}


def prepare(wasm: bytes) -> bytes:
    """The module as compiled: with the ring-buffer batch dispatch loops
    (rewrite.add_ring_dispatch) where they apply, else as it is."""
    try:
        return rewrite.add_ring_dispatch(wasm, (DEFAULT_CALLBACK_EXPORT,))[0]
    except rewrite.RewriteError:
        return wasm  # the engine's own validation says what is wrong, if anything


def _functype(sig: Signature) -> wasmtime.FuncType:
    return wasmtime.FuncType([_VALTYPES[t]() for t in sig.params],
                             [_VALTYPES[t]() for t in sig.results])


def _signature_of(ft: wasmtime.FuncType) -> Signature:
    return Signature(tuple(str(t) for t in ft.params), tuple(str(t) for t in ft.results))


def _one_line(err: BaseException) -> str:
    """wasmtime's multi-line error as one line: the cause (the last line after
    'Caused by:') and the innermost named wasm function of the backtrace."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    if "Caused by:" not in lines:
        return lines[0]
    cause = re.sub(r"^\d+:\s*", "", lines[-1])
    cause = cause[len("wasm trap: "):] if cause.startswith("wasm trap: ") else cause
    for line in lines[1:lines.index("Caused by:")]:
        frame = re.search(r"!([^<>\s][^\s]*)$", line)
        if frame:
            return f"{cause} (in {frame.group(1)})"
    return cause


class WasmtimeMemory(GuestMemory):
    """The engine is configured with `memory_may_move(False)`: the base never
    changes, so it is read once. A linear memory never shrinks, so a range
    inside the last size seen is inside the memory now; the size is read again
    only when a range falls outside it."""

    def __init__(self, context, memory: wasmtime.Memory, store=None):
        self._ctx = context
        self._memory = memory
        self._store = store
        self._mem = internals.memory_ref(memory)
        self._base = ctypes.cast(internals.memory_data(self._ctx, self._mem), ctypes.c_void_p).value or 0
        self._size = internals.memory_data_size(self._ctx, self._mem)

    def size(self) -> int:
        self._size = internals.memory_data_size(self._ctx, self._mem)
        return self._size

    def base_address(self) -> int:
        return self._base

    def host_address(self, ptr: int, size: int) -> Optional[int]:
        if ptr < 0 or size < 0:
            return None
        if ptr + size > self._size:
            self._size = internals.memory_data_size(self._ctx, self._mem)
            if ptr + size > self._size:
                return None
        return self._base + ptr

    def grow(self, pages: int) -> Optional[int]:
        try:
            old = self._memory.grow(self._store, pages)
        except wasmtime.WasmtimeError:
            return None
        self.size()
        return old


class _RawCaller:
    """Calls one wasm function through the unchecked API; args are ints."""

    def __init__(self, instance: "WasmtimeInstance", func: wasmtime.Func, sig: Signature):
        self._instance = instance
        self._func = internals.func_ref(func)
        self._ctx = instance.context
        self._kinds = [t == "i64" for t in sig.params]
        self._result64 = bool(sig.results) and sig.results[0] == "i64"
        self._has_result = bool(sig.results)
        self._buf = (internals.ValRaw * max(1, len(sig.params), len(sig.results)))()
        self._nbuf = len(self._buf)

    def __call__(self, *args: int) -> int:
        buf = self._buf
        for i, (value, is64) in enumerate(zip(args, self._kinds)):
            if is64:
                buf[i].i64 = value
            else:
                buf[i].i32 = value
        trap = ctypes.POINTER(internals.Trap)()
        error = _RAW_CALL(self._ctx, self._func, buf, self._nbuf, ctypes.byref(trap))
        if error or trap:
            self._instance.raise_failure(error, trap)
        if not self._has_result:
            return 0
        return buf[0].i64 if self._result64 else buf[0].i32


class _Delegate:
    """The engine's own WASI functions, called through the delegate instance
    (stdio.DELEGATE_WAT) for the fds GuestStdio does not serve."""

    def __init__(self, instance: "WasmtimeInstance", exports) -> None:
        for name, signature in stdio.DELEGATED:
            setattr(self, name, _RawCaller(instance, exports[name], signature))


class WasmtimeInstance(Instance):
    def __init__(self, engine: "WasmtimeEngine", store: wasmtime.Store, streams: stdio.GuestStdio):
        self._engine = engine
        self.streams = streams
        self.store = store
        self.context = internals.store_context(store)
        self.pending: Optional[BaseException] = None  # raised by a host function
        self._keep: List[object] = []  # raw callbacks must outlive the store
        self._exports = None
        self._table_callers: Dict[int, Optional[Callable[..., int]]] = {}
        self._native_glue = None  # wasmtime_nativepoll.NativePollGlue, if the poll runs in C
        self.stdio_glue = None  # wasmtime_nativestdio.NativeStdioGlue, if fd_write runs in C

    # -- failures -------------------------------------------------------
    def raise_failure(self, error, trap) -> None:
        """Turn a failed call into the right Python exception. A Python
        exception from a nested host function wins: it is why wasm trapped."""
        pending, self.pending = self.pending, None
        if error:
            err = internals.error_from_ptr(error)
            if pending is not None:
                raise pending
            if isinstance(err, wasmtime.ExitTrap):
                raise GuestExit(err.code)
            raise GuestTrap(_one_line(err), interrupted=self._engine.interrupted)
        t = internals.trap_from_ptr(trap)
        if pending is not None:
            raise pending
        interrupted = t.trap_code == wasmtime.TrapCode.INTERRUPT
        raise GuestTrap(_one_line(t), interrupted=interrupted)

    def host_trampoline(self, func: Callable[..., int], sig: Signature, glue=None):
        """A raw host callback: reads args, calls `func`, writes its result.
        Any exception is stashed and the guest traps; the call that entered
        wasm re-raises it (see raise_failure). The args arrive as the address
        of the wasmtime_val_raw_t array (16 bytes per value): one precompiled
        unpack reads them all, through a byte array at that address (a third
        of the cost of ctypes.string_at, a libffi call).

        `glue` (or, for a poll with `native_poll`, a NativePollGlue) defines
        the import as a C function that calls this callback for what it does
        not serve itself."""
        nargs = len(sig.params)
        unpack_from = struct.Struct("<" + "".join("q8x" if t == "i64" else "i12x" for t in sig.params)).unpack_from
        args_at = (ctypes.c_char * (16 * nargs)).from_address
        has_result = bool(sig.results)
        result_type = ctypes.c_int64 if has_result and sig.results[0] == "i64" else ctypes.c_int32
        instance = self

        def callback(_env, _caller, args, _nargs):
            try:
                result = func(*unpack_from(args_at(args))) if nargs else func()
                if has_result:
                    result_type.from_address(args).value = result
                return None
            except BaseException as exc:  # noqa: B902 - must not unwind through wasm
                instance.pending = exc
                return internals.new_trap_address("host function raised")

        cb = _ADDR_CALLBACK(callback)
        self._keep.append(cb)
        functype = _functype(sig)  # must outlive the call below
        native = getattr(func, "native_poll", None)  # abi/nativepoll.py: this poll may run in C
        if glue is None and native is not None and native.lib is not None:
            from wasm_bpf_cli.engines.wasmtime_nativepoll import NativePollGlue

            glue = self._native_glue = NativePollGlue(self, native)
        if glue is not None:
            return glue.define(cb, functype)
        handle = internals.FuncHandle()
        _RAW_NEW(self.context, functype.ptr(), ctypes.cast(cb, internals.UncheckedCallback),
                 None, _NO_FINALIZER, ctypes.byref(handle))
        return internals.func_from_handle(handle)

    # -- the contract ---------------------------------------------------
    def bind(self, instance: wasmtime.Instance) -> None:
        self._exports = instance.exports(self.store)
        mem = self._exports.get("memory")
        if not isinstance(mem, wasmtime.Memory):
            raise ModuleError("module does not export its memory as `memory`")
        self.memory = WasmtimeMemory(self.context, mem, self.store)

    def run_main(self) -> int:
        start = self._exports.get("_start")
        if not isinstance(start, wasmtime.Func):
            raise ModuleError("module exports no `_start` function (is it a WASI command?)")
        try:
            _RawCaller(self, start, Signature((), ()))()
        except GuestExit as exit_:
            return exit_.code
        return 0

    def close(self) -> None:
        # Dropping the store runs wasmtime's WASI finalizers: do it now, on
        # this thread, not during interpreter shutdown.
        self.streams.close()
        self.streams.delegate = None
        if self.stdio_glue is not None:
            self.stdio_glue.unbind()  # the store goes: C must not read its memory (its count stays)
        self._exports = None
        self._table_callers.clear()
        self.memory = None
        self.store = None
        self.context = None
        import gc

        gc.collect()

    def export_caller(self, name: str, signature: Signature) -> Optional[Callable[..., int]]:
        func = self._exports.get(name) if self._exports is not None else None
        if not isinstance(func, wasmtime.Func) or _signature_of(func.type(self.store)) != signature:
            return None
        return _RawCaller(self, func, signature)

    def ring_dispatcher(self, name: str) -> Optional[Callable[..., int]]:
        func = self._exports.get(name) if self._exports is not None else None
        if not isinstance(func, wasmtime.Func):
            return None
        return _RawCaller(self, func, Signature(rewrite.RING_DISPATCH_PARAMS, ("i32",)))

    def native_poll_entry(self, name: str):
        return self._native_glue.entry(name) if self._native_glue is not None else None

    def table_caller(self, index: int, signature: Signature) -> Optional[Callable[..., int]]:
        if index in self._table_callers:
            return self._table_callers[index]
        caller = None
        table = self._exports.get("__indirect_function_table") if self._exports is not None else None
        if isinstance(table, wasmtime.Table) and 0 <= index < table.size(self.store):
            func = table.get(self.store, index)
            if isinstance(func, wasmtime.Func) and _signature_of(func.type(self.store)) == signature:
                caller = _RawCaller(self, func, signature)
        self._table_callers[index] = caller
        return caller


def _native_stdio(inst: WasmtimeInstance, streams: stdio.GuestStdio):
    """fd_write in C (wasmtime_nativestdio.py) where the helper is built and
    fd 1 or 2 goes to the host's own fd; None: GuestStdio.fd_write alone."""
    if all(streams.sinks[fd] is not None for fd in (1, 2)):
        return None
    from wasm_bpf_cli.engines import wasmtime_nativestdio

    lib = wasmtime_nativestdio.library()
    return None if lib is None else wasmtime_nativestdio.NativeStdioGlue(inst, streams, lib)


class WasmtimeEngine(Engine):
    name = "wasmtime"

    def __init__(self) -> None:
        config = wasmtime.Config()
        config.epoch_interruption = True
        config.memory_may_move = False  # WasmtimeMemory keeps the base address
        self._engine = wasmtime.Engine(config)
        self._delegate_module: Optional[wasmtime.Module] = None
        self.interrupted = False

    @classmethod
    def version(cls) -> str:
        global _VERSION
        if _VERSION is None:
            # The dist-info directory's name: importlib.metadata costs ~15 ms of imports.
            import os

            site = os.path.dirname(os.path.dirname(os.path.abspath(wasmtime.__file__)))
            found = [d[len("wasmtime-"):-len(".dist-info")] for d in os.listdir(site)
                     if d.startswith("wasmtime-") and d.endswith(".dist-info")]
            if len(found) == 1:
                _VERSION = found[0]
            else:
                from importlib.metadata import version

                _VERSION = version("wasmtime")
        return _VERSION

    def compile(self, wasm: bytes, cache=True) -> wasmtime.Module:
        """Compile (with the ring dispatch loops added, rewrite.py); with
        `cache`, through the on-disk module cache (Engine.compile_cached)."""
        def deserialize(blob: bytes) -> Optional[wasmtime.Module]:
            try:
                return wasmtime.Module.deserialize(self._engine, blob)
            except wasmtime.WasmtimeError:
                return None  # another engine build or config: recompile, overwrite

        def build(wasm: bytes):
            try:
                module = wasmtime.Module(self._engine, prepare(wasm))
            except wasmtime.WasmtimeError as err:
                raise ModuleError(f"invalid wasm module: {_one_line(err)}") from None
            return module, module.serialize

        return self.compile_cached(wasm, cache, deserialize, build)

    def instantiate(self, module: wasmtime.Module, wasi: WasiOptions,
                    host_functions: Sequence[HostFunction], max_memory: Optional[int] = None) -> WasmtimeInstance:
        store = wasmtime.Store(self._engine)
        store.set_epoch_deadline(1)
        if max_memory is not None:
            store.set_limits(memory_size=max_memory)
        store.set_wasi(self._wasi_config(wasi))
        streams = stdio.GuestStdio(wasi)
        inst = WasmtimeInstance(self, store, streams)
        linker = wasmtime.Linker(self._engine)
        linker.define_wasi()
        linker.allow_shadowing = True  # the standard streams and proc_exit are stdio.py's
        inst.stdio_glue = _native_stdio(inst, streams)
        for module_name, name, signature, func in streams.functions():
            glue = inst.stdio_glue if name == "fd_write" else None
            linker.define(store, module_name, name, inst.host_trampoline(func, signature, glue))
        for hf in host_functions:
            linker.define(store, hf.module, hf.name, inst.host_trampoline(hf.func, hf.signature))
        try:
            instance = linker.instantiate(store, module)
        except GuestExit:
            raise
        except wasmtime.WasmtimeError as err:
            if inst.pending is not None:  # a start function called into the host
                pending, inst.pending = inst.pending, None
                raise pending
            raise ModuleError(f"cannot instantiate module: {_one_line(err)}") from None
        inst.bind(instance)
        streams.memory = inst.memory
        if inst.stdio_glue is not None:
            inst.stdio_glue.bind()
        streams.delegate = self._delegate(store, inst, instance)
        return inst

    def _delegate(self, store: wasmtime.Store, inst: WasmtimeInstance, guest: wasmtime.Instance) -> _Delegate:
        if self._delegate_module is None:
            self._delegate_module = wasmtime.Module(self._engine, stdio.DELEGATE_WAT)
        linker = wasmtime.Linker(self._engine)
        linker.define_wasi()
        linker.define(store, "env", "memory", guest.exports(store)["memory"])
        return _Delegate(inst, linker.instantiate(store, self._delegate_module).exports(store))

    @staticmethod
    def _wasi_config(opts: WasiOptions) -> wasmtime.WasiConfig:
        cfg = wasmtime.WasiConfig()
        cfg.argv = list(opts.argv)
        cfg.env = [list(kv) for kv in opts.env]
        for host, guest in opts.preopens:
            try:
                cfg.preopen_dir(host, guest)
            except wasmtime.WasmtimeError as err:
                raise EngineError(f"cannot preopen {host!r} as {guest!r}: {_one_line(err)}") from None
        # fds 0-2 are served by stdio.GuestStdio; these are for the rare call
        # it passes on (e.g. fd_seek on fd 1). Never stdout_custom: wasmtime
        # calls it from a runtime thread, which panicked at interpreter exit.
        if opts.stdout is None:
            cfg.inherit_stdout()
        if opts.stderr is None:
            cfg.inherit_stderr()
        return cfg

    def interrupt(self) -> bool:
        self.interrupted = True
        self._engine.increment_epoch()
        return True
