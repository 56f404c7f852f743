"""The wasmer adapter (PyPI `wasmer` 1.1 + `wasmer-compiler-cranelift`, CPython <= 3.10).

What wasmer-python cannot do, and how this adapter copes:
- No funcref from a table reaches the host: `compile` adds an exported
  `call_indirect` trampoline to the module binary (see `rewrite.py`), and
  `table_caller` calls that.
- No interruption of running wasm (no epochs, no interrupt handle):
  `interrupt()` returns False; the runner must stop a spinning guest some
  other way.
- No custom stdout/stderr/stdin in its WASI state builder: the guest's
  standard streams and proc_exit are served from Python (`stdio.py`, as on
  every engine); other fds go to wasmer's own WASI through the delegate
  instance stdio.py describes. wasmer-python's host functions can only be
  Python callables, so a guest's stdout/stderr writes always cross into
  Python here (on wasmtime, fd_write to the host's own fds runs in C,
  wasmtime_nativestdio.py).
- Every wasmer object (store, module, instance) is bound to the thread that
  created it (pyo3 `unsendable`; another thread gets a PanicException): the
  store is per thread, and compile, instantiate and run must happen on one.

Python exceptions raised by host functions cross wasm unchanged in wasmer
(pyo3 restores them), so host functions are registered as they are, with no
wrapper on the hot path; a trap is a RuntimeError raised by wasmer itself,
told apart by having no Python frame below the call that entered wasm.
"""
import ctypes
import os
import struct
import sys
import threading
import types
from typing import Callable, Dict, Optional, Sequence, Tuple

from wasm_bpf_cli.abi.errno import EFAULT, EIO_NEG
from wasm_bpf_cli.abi.signatures import (DEFAULT_CALLBACK_EXPORT, MEMORY_EXPORT, SAMPLE_CALLBACK,
                                         STAGE_POLL_NAME, TABLE_EXPORT, Signature)
from wasm_bpf_cli.engines import module_cache, rewrite, stdio
from wasm_bpf_cli.engines.base import (Engine, GuestExit, GuestMemory, GuestTrap, HostFunction,
                                       Instance, WasiOptions)
from wasm_bpf_cli.errors import EngineError, ModuleError

TRAMPOLINE_EXPORT = "__wasm_bpf_call_table"

def _wasmer():
    """Import wasmer and its Cranelift compiler, or say in one line why not."""
    try:
        import wasmer
        import wasmer_compiler_cranelift
    except ImportError:
        v = sys.version_info
        raise EngineError(
            "engine wasmer needs CPython <= 3.10 with `pip install 'wasm-bpf[wasmer]'` "
            f"(this is Python {v.major}.{v.minor}); use --engine wasmtime") from None
    return wasmer, wasmer_compiler_cranelift


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    if text.startswith("RuntimeError: "):
        text = text[len("RuntimeError: "):]
    lines = text.splitlines()
    return lines[0] if lines else type(err).__name__


def _from_wasmer(err: RuntimeError) -> bool:
    """True if wasmer raised `err` itself (a trap), False if Python code below
    the current frame did (a host function's own RuntimeError, passed through)."""
    tb = err.__traceback__
    return tb is None or tb.tb_next is None


def _exit_code(err: RuntimeError) -> Optional[int]:
    """wasmer's own proc_exit (not normally reached: proc_exit is ours)."""
    text = _one_line(err)
    prefix = "WASI exited with code: "
    if text.startswith(prefix):
        try:
            return int(text[len(prefix):])
        except ValueError:
            return None
    return None


def _converted(err: RuntimeError) -> BaseException:
    """What to raise for a RuntimeError out of wasm: a trap becomes GuestTrap
    (wasmer's own proc_exit GuestExit); a host function's own error stays."""
    if not _from_wasmer(err):
        return err
    code = _exit_code(err)
    if code is not None:
        return GuestExit(code)
    return GuestTrap(_one_line(err))


class WasmerMemory(GuestMemory):
    """The guest's linear memory. The base address is looked up again only
    when the size changed (growing is the only thing that can move it)."""

    def __init__(self, memory):
        self._mem = memory
        self._size = -1
        self._base = 0

    def size(self) -> int:
        return self._mem.data_size

    def base_address(self) -> int:
        size = self._mem.data_size
        if size != self._size:
            self._refresh(size)
        return self._base

    def _refresh(self, size: int) -> None:
        view = (ctypes.c_char * 1).from_buffer(self._mem.buffer)
        self._base = ctypes.addressof(view)
        self._size = size

    def base_and_size(self):
        now = self._mem.data_size  # one read of the size (a call into wasmer)
        if now != self._size:
            self._refresh(now)
        return self._base, now

    def host_address(self, ptr: int, size: int) -> Optional[int]:
        now = self._mem.data_size
        if ptr < 0 or size < 0 or ptr + size > now:
            return None
        if now != self._size:
            self._refresh(now)
        return self._base + ptr

    def grow(self, pages: int) -> Optional[int]:
        try:
            old = self._mem.grow(pages)
        except (RuntimeError, ValueError, OverflowError):
            return None
        self._refresh(self._mem.data_size)
        return old


class WasmerInstance(Instance):
    def __init__(self, instance, streams: stdio.GuestStdio):
        self._instance = instance
        self._exports = instance.exports
        self._streams = streams
        mem = self._export(MEMORY_EXPORT)
        wasmer, _ = _wasmer()
        if not isinstance(mem, wasmer.Memory):
            raise ModuleError("module does not export its memory as `memory`")
        self.memory = WasmerMemory(mem)
        table = self._export(TABLE_EXPORT)
        self._table_size = table.size if isinstance(table, wasmer.Table) else 0
        self._trampoline = self._export(TRAMPOLINE_EXPORT)
        self._table_callers: Dict[tuple, Optional[Callable[..., int]]] = {}

    def _export(self, name: str):
        try:
            return getattr(self._exports, name)
        except (LookupError, AttributeError, RuntimeError):
            return None

    def run_main(self) -> int:
        wasmer, _ = _wasmer()
        start = self._export("_start")
        if not isinstance(start, wasmer.Function):
            raise ModuleError("module exports no `_start` function (is it a WASI command?)")
        try:
            try:
                start()
            except RuntimeError as err:
                raised = _converted(err)
                if raised is err:
                    raise
                raise raised from None
        except GuestExit as exit_:
            return exit_.code
        finally:
            self._streams.close()
        return 0

    def export_caller(self, name: str, signature: Signature) -> Optional[Callable[..., int]]:
        wasmer, _ = _wasmer()
        func = self._export(name)
        if not isinstance(func, wasmer.Function) or _signature_of(func.type) != signature:
            return None
        return _caller(func, (), bool(signature.results))

    def ring_dispatcher(self, name: str) -> Optional[Callable[..., int]]:
        wasmer, _ = _wasmer()
        func = self._export(name)
        if not isinstance(func, wasmer.Function):
            return None
        return _caller(func, (), True)

    def serve_poll_in_wasm(self, slot: int) -> bool:
        wasmer, _ = _wasmer()
        glob = self._export(rewrite.STAGE_SLOT_EXPORT)
        if not isinstance(glob, wasmer.Global):
            return False
        glob.value = slot
        return True

    def stage_slot(self) -> Optional[int]:
        wasmer, _ = _wasmer()
        glob = self._export(rewrite.STAGE_SLOT_EXPORT)
        return glob.value if isinstance(glob, wasmer.Global) else None

    def table_caller(self, index: int, signature: Signature) -> Optional[Callable[..., int]]:
        """Entry `index` through the trampoline. Only the sample-callback
        signature has one; wasmer cannot read the entry, so a null entry or
        one of another type traps (GuestTrap) when called, not here."""
        key = (index, tuple(signature))
        if key in self._table_callers:
            return self._table_callers[key]
        caller = None
        if (self._trampoline is not None and tuple(signature) == tuple(SAMPLE_CALLBACK)
                and 0 <= index < self._table_size):
            caller = _table_entry_caller(self._trampoline, index)
        self._table_callers[key] = caller
        return caller


def _caller(func, prefix, has_result: bool) -> Callable[..., int]:
    def call(*args: int) -> int:
        try:
            result = func(*prefix, *args)
        except RuntimeError as err:
            raised = _converted(err)
            if raised is err:
                raise
            raise raised from None
        return result if has_result else 0
    return call


def _table_entry_caller(trampoline, index: int) -> Callable[[int, int, int], int]:
    """The hot path (one call per sample): no argument packing."""
    def call(ctx: int, data: int, size: int) -> int:
        try:
            return trampoline(index, ctx, data, size)
        except RuntimeError as err:
            raised = _converted(err)
            if raised is err:
                raise
            raise raised from None
    return call


_TYPE_NAMES = {}


def _signature_of(functype) -> Signature:
    wasmer, _ = _wasmer()
    if not _TYPE_NAMES:
        _TYPE_NAMES.update({wasmer.Type.I32: "i32", wasmer.Type.I64: "i64",
                            wasmer.Type.F32: "f32", wasmer.Type.F64: "f64"})
    return Signature(tuple(_TYPE_NAMES.get(t, str(t)) for t in functype.params),
                     tuple(_TYPE_NAMES.get(t, str(t)) for t in functype.results))


def prepare(wasm: bytes) -> Tuple[bytes, bool]:
    """The module as compiled: the table trampoline (if it exports its table)
    and the ring-buffer batch dispatch loops added, and the poll, fd_write
    and map imports (rewrite.HOST_SERVED_IMPORTS) made argument-free where
    they can be. (bytes, has trampoline)."""
    has_table = rewrite.export_index(wasm, TABLE_EXPORT, rewrite.KIND_TABLE) is not None
    if has_table:
        wasm = rewrite.add_table_trampoline(wasm, TRAMPOLINE_EXPORT, SAMPLE_CALLBACK.params,
                                            SAMPLE_CALLBACK.results)
    try:
        wasm, added = rewrite.add_ring_dispatch(wasm, (DEFAULT_CALLBACK_EXPORT,))
    except rewrite.RewriteError:
        added = []  # per-sample delivery only
    if rewrite.RING_DISPATCH_TABLE in added and rewrite.poll_in_wasm_enabled():
        # A call into wasm costs wasmer-python several times a host call:
        # the guest runs the dispatch loop of its polls itself.
        try:
            wasm = rewrite.serve_poll_in_wasm(wasm, stage=STAGE_POLL_NAME)
        except rewrite.RewriteError:
            pass  # the host calls the loop (abi/nativepoll.py, driven)
    if _go_wrapper_guest(wasm):
        return wasm, has_table
    if rewrite.fd_write_in_wasm_enabled():
        # One host call per printed line (a line-buffered guest): without
        # arguments, it leaves ~8 B in wasmer-python instead of ~150 B.
        try:
            wasm = rewrite.serve_fd_write_in_wasm(wasm, stage=stdio.FD_WRITE_STAGE_NAME)
        except rewrite.RewriteError:
            pass  # fd_write with its arguments (GuestStdio.fd_write)
    for served in rewrite.HOST_SERVED_IMPORTS:
        # Two host calls per entry of a map walk: ~8 B left each, not ~300 B.
        if rewrite.served_in_wasm_enabled(served):
            try:
                wasm = rewrite.serve_import_in_wasm(wasm, served)
            except rewrite.RewriteError:
                pass  # the import with its arguments (the module does not call it, ...)
    return wasm, has_table


_HOST_SERVED = {(s.module, s.name): s for s in rewrite.HOST_SERVED_IMPORTS}
_UNBOUND = types.SimpleNamespace(value=0)  # a stand-in global until _staged_call's bind


def _staged_call(func: Callable[..., int], served: "rewrite.ServedImport"
                 ) -> Tuple[Callable[[], int], Callable[..., None]]:
    """(stage, bind) for an import rewrite.serve_import_in_wasm made
    argument-free: `stage` calls `func`, the host function itself (its
    checks, its errnos), with the guest's arguments as the import would have
    had them (i32s signed, the i64s whole), read where `bind` says once the
    instance exists. Until then, or if the module has no such globals (a
    guest that imports the stage by its name itself), it answers EIO.

    served.in_slot (see rewrite._args_in_slot_body): from the arguments
    slot in memory, with one struct unpack over wasmer's Buffer of the
    memory, which gives the memory's current address and size each time it
    is read (growing may move the memory): nothing cached can outlive the
    memory, and a slot not wholly inside it answers EFAULT. The slot's
    address is read from its global until the guest's first call sets it,
    then kept (the global is the guest's to write, but only the added
    function does: one that moves the slot itself gets its arguments read
    from the old one, each pointer among them still checked as any). While
    the global is 0 (the memory could not grow for a slot): from the
    argument globals, as without in_slot."""
    target: Callable[..., int] = lambda *args: EIO_NEG  # noqa: E731
    arg_globals: list = []
    slot_global = _UNBOUND  # its value 0: no slot (the argument globals); without in_slot, always
    buffer = b""
    slot = 0
    unpack = struct.Struct(rewrite.slot_layout(served.params)[1]).unpack_from

    def stage() -> int:
        nonlocal slot
        if not slot:
            slot = slot_global.value & 0xFFFFFFFF
            if not slot:
                return target(*[g.value for g in arg_globals])
        try:
            values = unpack(buffer, slot)
        except struct.error:  # not wholly inside the memory
            return EFAULT
        return target(*values)

    def bind(globs: list, slot_glob=None, memory=None) -> None:
        """The argument globals; with in_slot also the slot's global and
        the memory (wasmer's)."""
        nonlocal target, slot_global, buffer
        arg_globals[:] = globs
        if slot_glob is not None:
            slot_global, buffer = slot_glob, memory.buffer
        target = func
    return stage, bind


def _go_wrapper_guest(wasm: bytes) -> bool:
    """Whether the module is a Go / TinyGo callback-wrapper guest (it exports
    the wrapper callback): they are left as they were, as for the poll
    (their allocators take pages memory.grow adds as their own, see
    abi/delivery.py's _polls_through_wrapper; fd_write's arguments go
    through globals and grow nothing, but the map imports' slot takes a
    page as the poll's does, and the rewriter has not been checked against
    their code)."""
    return rewrite.export_index(wasm, DEFAULT_CALLBACK_EXPORT, rewrite.KIND_FUNC) is not None


class _Compiled:
    """A compiled module, the bytes it was compiled from (after rewriting;
    None when it came from the module cache: `source` is rewritten again if
    a capped variant is needed), and the thread whose store owns it."""

    def __init__(self, module, wasm: Optional[bytes], thread: int, has_trampoline: bool,
                 source: Optional[bytes] = None):
        self.module = module
        self._wasm = wasm
        self.source = source
        self.thread = thread
        self.has_trampoline = has_trampoline
        self.capped: Dict[int, object] = {}  # max_memory -> module compiled with that cap

    @property
    def wasm(self) -> bytes:
        if self._wasm is None:
            self._wasm = prepare(self.source)[0]
        return self._wasm


class WasmerEngine(Engine):
    name = "wasmer"

    def __init__(self) -> None:
        _wasmer()  # fail now, in one line, if wasmer is missing
        self._local = threading.local()

    @classmethod
    def version(cls) -> str:
        wasmer, _ = _wasmer()
        return wasmer.__version__

    def _store(self):
        store = getattr(self._local, "store", None)
        if store is None:
            wasmer, cranelift = _wasmer()
            store = wasmer.Store(wasmer.engine.Universal(cranelift.Compiler))
            self._local.store = store
            self._local.cache = {}
        return store

    def compile(self, wasm: bytes, cache=True) -> _Compiled:
        """Compile (with the trampoline and the dispatch loops added, see
        prepare); with `cache`, once per thread and through the on-disk
        module cache (Engine.compile_cached), whose entry is a byte saying
        whether the module has the trampoline, then wasmer's serialization."""
        wasmer, _ = _wasmer()
        wasm = bytes(wasm)
        store = self._store()
        key = module_cache.sha256(wasm).digest()
        if cache and key in self._local.cache:
            return self._local.cache[key]

        def deserialize(blob: bytes) -> Optional[_Compiled]:
            if len(blob) <= 1:
                return None
            try:
                module = wasmer.Module.deserialize(store, blob[1:])
            except (RuntimeError, ValueError, TypeError):
                return None  # another engine build: recompile, overwrite
            return _Compiled(module, None, threading.get_ident(), blob[0] == 1, source=wasm)

        def build(source: bytes):
            prepared, has_table = prepare(source)
            compiled = _Compiled(self._module(store, prepared), prepared, threading.get_ident(), has_table,
                                 source=source)
            return compiled, lambda: bytes([int(has_table)]) + compiled.module.serialize()

        compiled = self.compile_cached(wasm, cache, deserialize, build)
        if cache:
            self._local.cache[key] = compiled
        return compiled

    @staticmethod
    def _module(store, wasm: bytes):
        wasmer, _ = _wasmer()
        try:
            return wasmer.Module(store, wasm)
        except (RuntimeError, ValueError, TypeError) as err:
            raise ModuleError(f"invalid wasm module: {_one_line(err)}") from None

    def instantiate(self, module: _Compiled, wasi: WasiOptions,
                    host_functions: Sequence[HostFunction],
                    max_memory: Optional[int] = None) -> WasmerInstance:
        """`max_memory` (bytes): wasmer has no store limits, so the cap is
        written into the module's memory maximum and that variant compiled
        (once per cap); growing past it fails in the guest."""
        wasmer, _ = _wasmer()
        if module.thread != threading.get_ident():
            raise EngineError("wasmer objects belong to the thread that made them: "
                              "compile, instantiate and run a guest on one thread")
        store = self._store()
        compiled = module.module
        if max_memory is not None:
            compiled = module.capped.get(max_memory)
            if compiled is None:
                compiled = self._module(store, rewrite.set_memory_max(module.wasm, max_memory))
                module.capped[max_memory] = compiled
        wasi_env = self._wasi_env(wasi)
        imports = wasi_env.generate_imports(store, wasmer.wasi.Version.SNAPSHOT1)
        streams = stdio.GuestStdio(wasi)
        ty = lambda sig: wasmer.FunctionType(  # noqa: E731
            [_wasm_type(wasmer, t) for t in sig.params], [_wasm_type(wasmer, t) for t in sig.results])
        for module_name, name, signature, func in streams.functions() + streams.staged_functions():
            imports.setdefault(module_name, {})[name] = wasmer.Function(store, func, ty(signature))
        staged = []  # (import served in wasm, how its stage learns its globals: below)
        for hf in host_functions:
            imports.setdefault(hf.module, {})[hf.name] = wasmer.Function(store, hf.func, ty(hf.signature))
            served = _HOST_SERVED.get((hf.module, hf.name))
            if served is not None:  # prepare() may have made the guest call this instead
                stage, bind = _staged_call(hf.func, served)
                imports[hf.module][served.stage] = wasmer.Function(store, stage, ty(stdio.STAGED))
                staged.append((served, bind))
        try:
            instance = wasmer.Instance(compiled, imports)
        except RuntimeError as err:
            streams.close()
            if not _from_wasmer(err):
                raise
            raise ModuleError(f"cannot instantiate module: {_one_line(err)}") from None
        except BaseException:
            streams.close()
            raise
        inst = WasmerInstance(instance, streams)
        streams.memory = inst.memory
        fd, iovs, count, nwritten = (inst._export(name) for name in rewrite.FD_WRITE_ARG_EXPORTS)
        if isinstance(nwritten, wasmer.Global):  # rewrite.serve_fd_write_in_wasm
            streams.staged_fd_write_args = lambda: (fd.value, iovs.value, count.value, nwritten.value)
        slot = inst._export(rewrite.ARGS_SLOT_EXPORT)
        for served, bind in staged:
            globs = [inst._export(name) for name in served.arg_exports]
            if not all(isinstance(g, wasmer.Global) for g in globs):  # rewrite.serve_import_in_wasm
                continue
            if served.in_slot and isinstance(slot, wasmer.Global):
                bind(globs, slot, inst.memory._mem)
            else:  # the globals only (a guest that imports the stage itself, with globals of these names)
                bind(globs)
        # wasmer's own WASI functions for every fd other than 0-2 (files, preopens).
        delegate_imports = wasi_env.generate_imports(store, wasmer.wasi.Version.SNAPSHOT1)
        delegate_imports["env"] = {"memory": inst.memory._mem}
        delegate = wasmer.Instance(self._delegate_module(store), delegate_imports)
        streams.delegate = delegate.exports
        return inst

    def _delegate_module(self, store):
        wasmer, _ = _wasmer()
        module = getattr(self._local, "delegate", None)
        if module is None:
            module = self._local.delegate = wasmer.Module(store, stdio.DELEGATE_WAT)
        return module

    @staticmethod
    def _wasi_env(opts: WasiOptions):
        """A WASI environment with exactly the given argv, env and preopens
        (wasmer inherits nothing from the host by itself)."""
        wasmer, _ = _wasmer()
        argv = list(opts.argv) or [""]
        builder = wasmer.wasi.StateBuilder(argv[0])
        for arg in argv[1:]:
            builder.argument(arg)
        for key, value in opts.env:
            builder.environment(key, value)
        for host, guest in opts.preopens:
            if not os.path.isdir(host):
                raise EngineError(f"cannot preopen {host!r} as {guest!r}: not a directory")
            builder.map_directory(guest, host)
        try:
            return builder.finalize()
        except RuntimeError as err:
            raise EngineError(f"cannot set up WASI: {_one_line(err)}") from None

    def interrupt(self) -> bool:
        return False


def _wasm_type(wasmer, name: str):
    return {"i32": wasmer.Type.I32, "i64": wasmer.Type.I64,
            "f32": wasmer.Type.F32, "f64": wasmer.Type.F64}[name]
