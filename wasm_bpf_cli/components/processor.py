"""One processor component, loaded beside a guest.

Each processor gets a wasmtime store of its own (its own instance and
memory) with WASI 0.2 and no rights: no preopened directories, no
environment, no arguments, no stdin; its stdout is discarded, its stderr
(a Python processor's traceback, say) goes where the guest's stderr goes,
each line prefixed with `processor NAME: `. Its compiled code is cached like
a guest's (engines/module_cache.py): a componentize-py processor carries a
whole CPython and takes a minute to compile, well under a second to load
from the cache.
"""
import logging
import os
import threading
from typing import Callable, Optional, Sequence

import wasmtime
from wasmtime import component as wc

from wasm_bpf_cli.engines.base import GuestTrap
from wasm_bpf_cli.errors import ModuleError

from .values import BytesCall
from .world import ComponentWorld, describe, is_component

log = logging.getLogger("wasm_bpf.components")

CACHE_TAG = "component-epoch-1"  # what the engine config adds to a cache key


class ProcessorError(ModuleError):
    """A processor that cannot be used: unreadable, not a component, not the
    processor world, or its init refused. One line, exit status 1."""


class ProcessorTrap(GuestTrap):
    """A processor trapped (or was interrupted) while the guest waited on it:
    the run ends, with a message naming the processor."""

    def __init__(self, name: str, message: str, interrupted: bool = False):
        super().__init__(message, interrupted=interrupted)
        self.processor = name


class _StderrLines:
    """A processor's stderr: a pipe whose writing end the processor's WASI
    opens (by /proc/self/fd path), read by a thread that passes each line on
    to `sink` with the processor's name. Not wasmtime's stderr_custom: it
    calls Python from wasmtime's runtime threads (see engines/stdio.py)."""

    def __init__(self, name: str, sink: Callable[[bytes], None]):
        self._prefix = f"processor {name}: ".encode()
        self._sink = sink
        self._r, self._w = os.pipe2(os.O_CLOEXEC)
        self.path = f"/proc/self/fd/{self._w}"
        # started from the guest's thread: it inherits its blocked signals
        self._thread = threading.Thread(target=self._pump, name=f"wasm-bpf-processor-{name}", daemon=True)
        self._thread.start()

    def opened(self) -> None:
        """The processor holds its own descriptor now: ours goes, so that the
        pipe ends (EOF) when its store does."""
        if self._w >= 0:
            os.close(self._w)
            self._w = -1

    def _pump(self) -> None:
        pending = b""
        with os.fdopen(self._r, "rb", buffering=0) as pipe:
            while True:
                chunk = pipe.read(65536)
                if not chunk:
                    break
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    self._sink(self._prefix + line + b"\n")
        if pending:
            self._sink(self._prefix + pending + b"\n")

    def close(self, timeout: float = 2.0) -> None:
        """After the store is gone: the last lines are passed on."""
        self.opened()
        self._thread.join(timeout)


def new_engine() -> wasmtime.Engine:
    """An engine for the processors of one run: interrupt() advances its
    epoch, which traps every processor of that run and no other."""
    config = wasmtime.Config()
    config.epoch_interruption = True
    return wasmtime.Engine(config)


def compile_component(engine: wasmtime.Engine, data: bytes, cache=True) -> wc.Component:
    """The component compiled (or loaded from the cache: a
    module_cache.ModuleCache, True for the default one, False/None for
    none); wasmtime's error as ProcessorError."""
    from wasm_bpf_cli.engines import module_cache
    from wasm_bpf_cli.engines.wasmtime_engine import WasmtimeEngine

    name = module_cache.key(data, "wasmtime-component", WasmtimeEngine.version(), 0) + "-" + CACHE_TAG
    disk = module_cache.resolve(cache)
    if disk is not None:
        cached = disk.load(name)
        if cached is not None:
            try:
                return wc.Component.deserialize(engine, cached)
            except wasmtime.WasmtimeError:
                log.debug("component cache entry %s refused: compiling", name)
    try:
        component = wc.Component(engine, data)
    except wasmtime.WasmtimeError as err:
        raise ProcessorError(f"not a valid component: {_one_line(err)}") from None
    if disk is not None:
        disk.store(name, bytes(component.serialize()))
    return component


def _one_line(err: BaseException) -> str:
    from wasm_bpf_cli.engines.wasmtime_engine import _one_line as one_line

    return one_line(err)


def read_component(path: str, what: str) -> bytes:
    """The bytes of a component file; ProcessorError naming `what` otherwise."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise ProcessorError(f"{what}: cannot read {path}: {err.strerror or err}") from None
    if not is_component(data):
        kind = "a core wasm module" if data[:4] == b"\0asm" else "not wasm"
        raise ProcessorError(f"{what}: {path} is {kind}, not a component of the "
                             "wasm-bpf:processor world (see `wasm-bpf sdk --wit`)")
    return data


class Processor:
    """A processor instantiated and initialized: `process(bytes)` is its
    `process` export (None for `none`). Not thread-safe: the guest's thread
    calls it; only its engine's epoch is advanced from other threads."""

    def __init__(self, name: str, path: str, args: Sequence[str] = (),
                 engine: Optional[wasmtime.Engine] = None, cache: bool = True,
                 max_memory: Optional[int] = None, stderr: Optional[Callable[[bytes], None]] = None):
        self.name = name
        self.path = path
        self.interrupted = False  # set (with the engine's epoch advanced) by Processors.interrupt
        self.engine = engine or new_engine()
        what = f"processor {name}"
        data = read_component(path, what)
        try:
            component = compile_component(self.engine, data, cache)
        except ProcessorError as err:
            raise ProcessorError(f"{what}: {path}: {err}") from None
        self.world: ComponentWorld = describe(component, self.engine)
        if self.world.problems:
            raise ProcessorError(f"{what}: {path} does not fit the wasm-bpf:processor world: "
                                 + "; ".join(self.world.problems))
        self.store = wasmtime.Store(self.engine)
        self.store.set_epoch_deadline(1)  # only Processors.interrupt() advances the epoch
        if max_memory is not None:  # the guest's cap (--max-memory, policy) holds for each memory here too
            self.store.set_limits(memory_size=max_memory)
        wasi = wasmtime.WasiConfig()  # no dirs, env, args, stdin; stdout discarded
        self._stderr = _StderrLines(name, stderr) if stderr is not None else None
        if self._stderr is not None:
            wasi.stderr_file = self._stderr.path
            self._stderr.opened()
        self.store.set_wasi(wasi)
        linker = wc.Linker(self.engine)
        linker.add_wasip2()
        try:
            instance = linker.instantiate(self.store, component)
            init = instance.get_func(self.store, "init")
            failure = init(self.store, list(args))
            init.post_return(self.store)
        except wasmtime.WasmtimeError as err:
            self.close()
            raise ProcessorError(f"{what}: {path}: cannot start: {_one_line(err)}") from None
        if failure is not None:  # result<_, string>: None is ok, a str the error
            self.close()
            raise ProcessorError(f"{what}: init refused: {failure}")
        self._process = BytesCall(instance.get_func(self.store, "process"), self.store)

    def close(self) -> None:
        """Drop the store (and its WASI files); pass on the last of stderr."""
        self._process = None
        store, self.store = self.store, None
        if store is not None:
            store.close()
        if self._stderr is not None:
            self._stderr.close()

    def process(self, event: bytes) -> Optional[bytes]:
        try:
            return self._process(event)
        except wasmtime.WasmtimeError as err:
            if self.interrupted:
                raise ProcessorTrap(self.name, f"processor {self.name} was interrupted",
                                    interrupted=True) from None
            raise ProcessorTrap(self.name, f"processor {self.name} trapped: {_one_line(err)}") from None
        except TypeError as err:  # a value the checked type does not allow: a broken component
            raise ProcessorTrap(self.name, f"processor {self.name} failed: {err}") from None


def inspect_component(data: bytes) -> ComponentWorld:
    """The world of a component's bytes (compiled through the cache)."""
    engine = new_engine()
    return describe(compile_component(engine, data), engine)
