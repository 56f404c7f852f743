"""The engine contract: what the runner needs from a wasm engine.

One adapter per engine (wasmtime, wasmer) implements it. The host ABI code
(`wasm_bpf_cli.abi`) knows only these types, never an engine.
"""
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

from wasm_bpf_cli.abi.signatures import Signature

# Writes the guest made to its stdout/stderr; called on the guest's thread.
OutputSink = Callable[[bytes], None]


@dataclass
class WasiOptions:
    """What the guest sees of the host through WASI. Nothing is inherited by default."""

    argv: List[str] = field(default_factory=list)
    env: List[Tuple[str, str]] = field(default_factory=list)
    preopens: List[Tuple[str, str]] = field(default_factory=list)  # (host dir, guest path)
    stdout: Optional[OutputSink] = None  # None: the process's own fd 1, byte for byte
    stderr: Optional[OutputSink] = None  # None: the process's own fd 2
    stdin_path: Optional[str] = None  # None: empty stdin; a path (may be /proc/self/fd/N)
    buffering: str = "line"  # stdio.LINE: fds 1/2 look like a terminal to the guest; stdio.LIBC: like the host's
    on_closed_output: Optional[Callable[[int], None]] = None  # called with 1 or 2 when a write gets EPIPE


@dataclass
class HostFunction:
    """One import the host provides. `func` takes and returns Python ints and
    must not raise except to abort the guest (GuestExit / GuestAbort).
    A `func` with a `native_poll` attribute (abi/nativepoll.NativePolls) is
    the buffer poll: an engine that can may define the import as the C loop
    of that object instead, calling `func` for what the loop does not serve."""

    module: str
    name: str
    signature: Signature
    func: Callable[..., int]


class GuestExit(BaseException):
    """The guest called proc_exit(code), possibly deep inside a host call.
    BaseException so that no `except Exception` in host code swallows it."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class GuestTrap(Exception):
    """The guest trapped (unreachable, out-of-bounds, stack overflow, interrupt)."""

    def __init__(self, message: str, interrupted: bool = False):
        super().__init__(message)
        self.interrupted = interrupted


class GuestMemory:
    """Bounds-checked view of the guest's linear memory.

    `host_address(ptr, size)` is the only way host code turns a guest pointer
    into a native address: it returns None unless [ptr, ptr+size) lies inside
    the memory as it is now. Addresses stay valid until the guest grows its
    memory (i.e. until control returns to wasm).
    """

    def size(self) -> int:
        raise NotImplementedError

    def size_seen(self) -> Optional[int]:
        """The size as the guest's thread last saw it (None: not yet), from
        the `_size` both engines' memories cache. Unlike size(), safe from
        any thread: wasmer panics when its objects are used from another."""
        size = getattr(self, "_size", -1)
        return size if size >= 0 else None

    def base_address(self) -> int:
        raise NotImplementedError

    def base_and_size(self):
        """(base address, size in bytes) as they are now."""
        return self.base_address(), self.size()

    def grow(self, pages: int) -> Optional[int]:
        """Grow by `pages` 64 KiB pages from the host; the old size in pages,
        or None if the memory cannot grow (limit, engine)."""
        return None

    def host_address(self, ptr: int, size: int) -> Optional[int]:
        if ptr < 0 or size < 0:
            return None
        if ptr + size > self.size():
            return None
        return self.base_address() + ptr

    def read(self, ptr: int, size: int) -> Optional[bytes]:
        import ctypes

        addr = self.host_address(ptr, size)
        return None if addr is None else ctypes.string_at(addr, size)

    def read_cstring(self, ptr: int, limit: int = 4096) -> Optional[str]:
        """A NUL-terminated UTF-8 string at `ptr`, or None if it runs off memory
        or past `limit` bytes, or is not valid UTF-8."""
        import ctypes

        if ptr <= 0:
            return None
        avail = min(limit, self.size() - ptr)
        addr = self.host_address(ptr, max(avail, 0))
        if addr is None or avail <= 0:
            return None
        raw = ctypes.string_at(addr, avail)
        end = raw.find(b"\0")
        if end < 0:
            return None
        try:
            return raw[:end].decode("utf-8")
        except UnicodeDecodeError:
            return None


class Instance:
    """An instantiated guest."""

    memory: GuestMemory

    def run_main(self) -> int:
        """Call `_start`; return the exit code (0 if it returns, proc_exit's code
        otherwise). Raises GuestTrap on a trap."""
        raise NotImplementedError

    def table_caller(self, index: int, signature: Signature) -> Optional[Callable[..., int]]:
        """A callable for entry `index` of the exported function table, or None
        if there is no such entry of that signature."""
        raise NotImplementedError

    def export_caller(self, name: str, signature: Signature) -> Optional[Callable[..., int]]:
        """A callable for the exported function `name`, or None if absent or of
        another signature."""
        raise NotImplementedError

    def ring_dispatcher(self, name: str) -> Optional[Callable[..., int]]:
        """A callable for a ring-buffer batch dispatch loop the engine added
        at compile time (rewrite.add_ring_dispatch; `name` is its export), or
        None if this module has none: the host then delivers per sample."""
        return None

    def native_poll_entry(self, name: str):
        """For the C poll loop (abi/nativepoll.py), where this engine defined
        the poll import in C: (call, call_env, mem_base, (data, size, a, b)
        of the guest memory, nativepoll.GuestMemoryRef) for the dispatch
        export `name`; None otherwise."""
        return None

    def serve_poll_in_wasm(self, slot: int) -> bool:
        """Whether the guest's poll calls go to the loop the engine added in
        wasm (rewrite.serve_poll_in_wasm: they reach the host as calls of
        rewrite.STAGE_IMPORT, abi/nativepoll.py `stage`); if so, the loop
        is told that its staging result slot is at guest address `slot`."""
        return False

    def stage_slot(self) -> Optional[int]:
        """The guest address of the staging result slot the loop added in
        wasm writes a poll's arguments into (0: none yet); None without it."""
        return None

    @staticmethod
    def dispatch_export(buffer_kind: str, callback_export: Optional[str]) -> str:
        """The export name of the loop the engine added over a `buffer_kind`
        ("ring" | "perf") buffer's records that calls the guest's table entry
        (callback_export None) or its exported callback `callback_export`."""
        from wasm_bpf_cli.engines import rewrite

        if buffer_kind == "ring":
            table, prefix = rewrite.RING_DISPATCH_TABLE, rewrite.RING_DISPATCH_EXPORT_PREFIX
        else:
            table, prefix = rewrite.PERF_DISPATCH_TABLE, rewrite.PERF_DISPATCH_EXPORT_PREFIX
        return table if callback_export is None else prefix + callback_export

    def batch_dispatcher(self, buffer_kind: str, callback_export: Optional[str]) -> Optional[Callable[..., int]]:
        """ring_dispatcher for the loop dispatch_export() names."""
        return self.ring_dispatcher(self.dispatch_export(buffer_kind, callback_export))

    def close(self) -> None:
        """Release the engine's store and WASI state (on the guest's thread,
        before interpreter shutdown). Idempotent."""


class Engine:
    name: str = "?"

    @classmethod
    def version(cls) -> str:
        raise NotImplementedError

    def compile(self, wasm: bytes, cache=True):
        """Compile a module; raises ModuleError with a one-line reason.
        `cache`: a module_cache.ModuleCache to read and fill, True for the
        default one, False for none."""
        raise NotImplementedError

    def compile_cached(self, wasm: bytes, cache, deserialize: Callable[[bytes], object],
                       build: Callable[[bytes], Tuple[object, Callable[[], bytes]]]):
        """What both adapters' compile() do around the engine: refuse what is
        not wasm, then the module from the on-disk cache (`deserialize(blob)`:
        the module, or None when this engine build refuses the entry, which
        is then overwritten), else `build(wasm)` -> (module, a function giving
        the bytes to cache), stored under the module's key (module_cache.py)."""
        from wasm_bpf_cli.engines import module_cache, rewrite
        from wasm_bpf_cli.errors import ModuleError

        wasm = bytes(wasm)
        if wasm[:4] != b"\0asm":
            raise ModuleError("not a wasm module (bad magic number)")
        disk = module_cache.resolve(cache)
        name = None
        if disk is not None:
            name = module_cache.key(wasm, self.name, self.version(), rewrite.cache_version())
            blob = disk.load(name)
            module = deserialize(blob) if blob is not None else None
            if module is not None:
                return module
        module, payload = build(wasm)
        if name is not None:
            disk.store(name, payload())
        return module

    def instantiate(self, module, wasi: WasiOptions,
                    host_functions: Sequence[HostFunction],
                    max_memory: Optional[int] = None) -> Instance:
        """Instantiate with WASI and the host functions. `max_memory` caps the
        guest's linear memory in bytes (growth past it fails in the guest)."""
        raise NotImplementedError

    def interrupt(self) -> bool:
        """Make running guest code trap soon, from any thread. False if this
        engine cannot interrupt wasm code."""
        return False
