"""The public Python API: run a wasm-bpf guest, in the foreground or in the
background, and watch or stop it from any thread.

    from wasm_bpf_cli import Runner, RunOptions

    with Runner("bootstrap.wasm", RunOptions(args=["-d", "10"], stdout=print_bytes)) as r:
        r.start()
        ...                   # r.status(), r.maps() while it runs
        r.stop()
    print(r.result.exit_code)

The guest runs on a worker thread of its own. stop() makes its pending or
next `wasm_bpf_buffer_poll` return -EINTR; a guest that does not return by
itself within `grace_period` is interrupted by the engine, and one the engine
cannot interrupt is abandoned after all its BPF objects were destroyed.
Whatever happens, every link, poller and object the guest opened is destroyed
before the result is reported. A stop or kill that comes while the module is
still being prepared (read, compiled, instantiated) cancels the run: the
guest is never started, and the result (interrupted) comes once preparation
has ended and its BPF objects are closed.
"""
import enum
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Callable, List, Mapping, Optional, Sequence, Tuple, Union

from wasm_bpf_cli.abi.signatures import DEFAULT_CALLBACK_EXPORT, DEFAULT_WRAPPER_MODULE
from wasm_bpf_cli.errors import ModuleError, PrivilegeError, UsageError, WasmBpfError

if TYPE_CHECKING:
    from wasm_bpf_cli.metrics import MetricsConfig
    from wasm_bpf_cli.policy import Policy

log = logging.getLogger("wasm_bpf.runner")

Output = Union[None, Callable[[bytes], object], IO]
Input = Union[None, bytes, IO]


class Outcome(str, enum.Enum):
    EXITED = "exited"  # the guest returned from main or called proc_exit
    TRAPPED = "trapped"  # the guest trapped (or a host error aborted it)
    INTERRUPTED = "interrupted"  # stop() was needed to end it, the guest did not exit by itself
    TIMED_OUT = "timed_out"  # like INTERRUPTED, after RunOptions.duration


# Exit statuses for a guest that had to be interrupted, by stop reason
# ("output_closed": its stdout or stderr was a pipe whose reader went away,
# 128 + SIGPIPE as the shell shows a native tool that died of it).
STOP_EXIT_CODES = {"sigint": 130, "stop": 130, "sigterm": 143, "duration": 124, "output_closed": 141}


@dataclass
class RunOptions:
    """How to run a guest. Nothing of the host (environment, files, stdin)
    reaches the guest unless given here."""

    args: Sequence[str] = ()  # argv[1:] of the guest
    env: Union[Mapping[str, str], Sequence[Tuple[str, str]]] = ()
    dirs: Sequence[Tuple[str, str]] = ()  # (host dir, guest path) preopens
    engine: str = "auto"  # "auto" (wasmer where it imports, else wasmtime) | "wasmtime" | "wasmer"
    duration: Optional[float] = None  # seconds; then stop as with stop("duration")
    grace_period: float = 2.0  # seconds a stopped guest has to return by itself
    stdout: Output = None  # None: this process's fd 1, byte for byte; or a callable/file
    stderr: Output = None  # None: this process's fd 2
    stdin: Input = None  # None: empty; bytes; or a file object
    wrapper_module_name: str = DEFAULT_WRAPPER_MODULE
    callback_export_name: str = DEFAULT_CALLBACK_EXPORT
    max_memory: Optional[int] = None  # bytes of guest linear memory
    max_object_size: Optional[int] = None  # bytes of one BPF object the guest loads
    argv0: Optional[str] = None  # default: the module path
    cache: bool = True  # use the on-disk compiled-module cache (engines/module_cache.py)
    cache_dir: Optional[str] = None  # its directory (default: $WASM_BPF_CACHE_DIR or ~/.cache/wasm-bpf)
    cache_max_size: Optional[int] = None  # bytes it may hold (default: $WASM_BPF_CACHE_MAX_SIZE or 256 MiB)
    # what the guest may load/attach: a wasm_bpf_cli.policy.Policy, a mapping of
    # the policy file's keys, or the path of a TOML policy file
    policy: Union[None, "Policy", Mapping[str, object], str, os.PathLike] = None
    pull: str = "missing"  # module is an image reference: "always" | "missing" | "never" (see oci/)
    # "line": the guest's stdout/stderr look like a terminal to it, so its
    # libc writes each line as it is completed; "libc": they look like what
    # they are (a pipe, a file, a callback: fully buffered by the guest's
    # libc, fewer writes for guests that print in bulk).
    output_buffering: str = "line"
    metrics: Optional[str] = None  # "ADDR:PORT": serve Prometheus metrics while it runs (wasm_bpf_cli.metrics)
    metrics_config: Union[None, str, os.PathLike, "MetricsConfig"] = None  # default: the module's own
    bpf_stats: bool = False  # with metrics: per-program run counts (BPF_ENABLE_STATS while running)
    # processor components (wasm_bpf_cli.components): name -> component file
    # (the guest's wasm_bpf_call("name", ...)), name -> its init arguments,
    # buffer map name -> the processor run on each sample before the callback
    processors: Mapping[str, Union[str, os.PathLike]] = field(default_factory=dict)
    processor_args: Mapping[str, Sequence[str]] = field(default_factory=dict)
    filters: Mapping[str, str] = field(default_factory=dict)
    # Seconds a ring/perf buffer poll may hold records it found before crossing
    # into the guest, to deliver more per crossing (0: at once). Never past the
    # poll's own timeout; a stop still ends a poll at once. README "Performance".
    max_delivery_delay: float = 0.0


# A held record still sits in the ring: a long hold would only invite loss.
MAX_DELIVERY_DELAY = 1.0


@dataclass
class BufferResult:
    name: str  # the map's name
    kind: str  # "ringbuf" | "perf"
    delivered: int
    lost: int
    dropped: int = 0  # samples its --filter processor dropped (never delivered)


@dataclass
class RunStatus:
    phase: str  # "starting" | "running" | "stopping" | "finished"
    objects: int
    programs_attached: int
    buffers: List[BufferResult]


@dataclass
class RunResult:
    exit_code: int
    outcome: Outcome
    stop_reason: Optional[str]  # why stop() was called, if it was
    message: Optional[str]  # one line on a trap or runner error
    buffers: List[BufferResult] = field(default_factory=list)
    wall_time: float = 0.0
    cpu_time: float = 0.0
    abandoned: bool = False  # the guest thread could not be stopped (see module doc)
    denials: List[str] = field(default_factory=list)  # what the policy refused, one line each

    @property
    def delivered(self) -> int:
        return sum(b.delivered for b in self.buffers)

    @property
    def lost(self) -> int:
        return sum(b.lost for b in self.buffers)

    @property
    def dropped(self) -> int:
        return sum(b.dropped for b in self.buffers)


def _sink(out: Output) -> Optional[Callable[[bytes], None]]:
    """Turn a callable or a file into a guest output sink that never raises."""
    if out is None:
        return None
    write = out if callable(out) and not hasattr(out, "write") else None
    if write is None:
        target = getattr(out, "buffer", out)  # text files: write their binary buffer

        def write(data: bytes) -> None:
            target.write(data)
            flush = getattr(target, "flush", None)
            if flush is not None:
                flush()

    def sink(data: bytes) -> None:
        try:
            write(data)
        except Exception:  # noqa: BLE001 - the guest's write must not fail for our sake
            log.exception("guest output sink failed")

    isatty = getattr(out, "isatty", None)  # a file on a terminal, or the CLI's status-line sink
    sink.isatty = isatty if callable(isatty) else (lambda: False)
    return sink


def _write_stderr(data: bytes) -> None:
    """This process's fd 2 (a processor's stderr, when the guest's is fd 2 too)."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(2, view):]
    except OSError:
        pass  # a closed stderr: as for the guest's own writes


def _stdin_path(stdin: Input, cleanup: List[Callable[[], None]]) -> Optional[str]:
    """A path the engine can open for the guest's stdin."""
    if stdin is None:
        return None
    if not isinstance(stdin, (bytes, bytearray)):
        try:
            return f"/proc/self/fd/{stdin.fileno()}"
        except (AttributeError, OSError, ValueError):
            stdin = stdin.read()  # a file-like without a descriptor
            if isinstance(stdin, str):
                stdin = stdin.encode()
    read_fd, write_fd = os.pipe()
    data = bytes(stdin)

    def feed() -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(write_fd, view):]
        except OSError:
            pass  # the guest closed its stdin early
        finally:
            os.close(write_fd)

    _start_without_signals(threading.Thread(target=feed, name="wasm-bpf-stdin", daemon=True))
    cleanup.append(lambda: os.close(read_fd))
    return f"/proc/self/fd/{read_fd}"


def _has_bpf_privilege() -> bool:
    """CAP_BPF or CAP_SYS_ADMIN in the effective set (doctor reads the set)."""
    from wasm_bpf_cli.doctor import CAP_BPF, CAP_SYS_ADMIN, effective_caps

    return bool(effective_caps() & (1 << CAP_BPF | 1 << CAP_SYS_ADMIN))


# Signals a user or a supervisor sends to the process (not a fault of a thread).
_PROCESS_SIGNALS = {getattr(signal, name) for name in
                    ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2") if hasattr(signal, name)}


def _start_without_signals(thread: threading.Thread) -> None:
    """Start `thread` with the process signals blocked in it (a thread
    inherits its creator's mask; so do the engine's threads the guest thread
    starts). The kernel may deliver a process signal to any thread that does
    not block it, while Python runs handlers only in the main thread: one
    delivered to another thread would leave a main thread that waits without
    a timeout asleep, its Ctrl-C handler never run."""
    if not hasattr(signal, "pthread_sigmask"):
        thread.start()
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _PROCESS_SIGNALS)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _module_cache(options: RunOptions):
    """The compiled-module cache the options ask for, or None."""
    if not options.cache:
        return None
    from wasm_bpf_cli.engines.module_cache import ModuleCache

    try:
        return ModuleCache(options.cache_dir, options.cache_max_size)
    except ValueError as err:
        raise UsageError(str(err)) from None


def check_module(wasm: bytes, options: RunOptions) -> bool:
    """Raise ModuleError naming every import/export this runner cannot serve.
    True when the guest imports the BPF loader (so it needs privileges)."""
    return _needs_bpf(_checked_module(wasm, options))


def _needs_bpf(mod) -> bool:
    return any(i.module == "wasm_bpf" and i.name == "wasm_load_bpf_object" for i in mod.imports)


def _checked_module(wasm: bytes, options: RunOptions):
    """The parsed module (inspect.wasm_reader.WasmModule) once check_module's
    checks pass."""
    from wasm_bpf_cli.inspect.errors import InspectError
    from wasm_bpf_cli.inspect.verdict import check_module as verdict
    from wasm_bpf_cli.inspect.wasm_reader import read_wasm

    try:
        mod = read_wasm(wasm)
    except InspectError as err:
        if wasm[:4] == b"\x7fELF":  # the usual mix-up: the .bpf.o instead of the .wasm
            raise ModuleError("this is an ELF file (a BPF object: the kernel half of a guest), not a wasm "
                              "module: run the wasm user half that embeds it (`wasm-bpf new NAME` writes "
                              "one; `wasm-bpf gen skeleton` embeds an object)") from None
        raise ModuleError(f"not a valid wasm module: {err}") from None
    problems = verdict(mod, options.wrapper_module_name, options.callback_export_name)
    if problems:
        raise ModuleError("cannot run this module: " + "; ".join(problems))
    return mod


class _Cancelled(Exception):
    """A stop or kill came before the guest started (Runner._end_preparing)."""


class Runner:
    """Runs one guest once. Not reusable: make a new Runner per run."""

    def __init__(self, module: Union[str, os.PathLike, bytes], options: Optional[RunOptions] = None):
        self.options = options or RunOptions()
        if isinstance(module, (bytes, bytearray)):
            self._wasm: Optional[bytes] = bytes(module)
            self.path = "module.wasm"
        else:
            self._wasm = None
            self.path = os.fspath(module)
        self.result: Optional[RunResult] = None
        self._error: Optional[BaseException] = None
        self._phase = "starting"
        self._abi = None
        self._engine = None
        self._processors = None  # components.Processors, when options.processors
        self._thread: Optional[threading.Thread] = None
        self._done = threading.Event()
        self._stop_reason: Optional[str] = None
        self._stop_lock = threading.Lock()
        self._timers: List[threading.Timer] = []
        self._interrupted = False
        self._preparing = True  # no guest code has run yet (see _main)
        self._started_at = 0.0
        self._cpu_at_start = 0.0
        self.metrics_url: Optional[str] = None  # where RunOptions.metrics serves, once running

    # -- running --------------------------------------------------------
    def run(self) -> RunResult:
        """Run to completion on a worker thread; return how it ended. Raises
        WasmBpfError for what prevented the guest from running at all."""
        self.start()
        try:
            return self.wait()
        except BaseException:
            self.stop("stop")
            self.kill()
            raise

    def start(self) -> None:
        """Start the guest in the background and return at once."""
        if self._thread is not None:
            raise WasmBpfError("this Runner was already started; make a new one")
        self._started_at = time.monotonic()
        self._cpu_at_start = time.process_time()
        self._thread = threading.Thread(target=self._main, name="wasm-bpf-guest", daemon=True)
        _start_without_signals(self._thread)  # and the threads it starts (engine, preload)
        if self.options.duration is not None:
            self._timer(self.options.duration, lambda: self.stop("duration"))

    def wait(self, timeout: Optional[float] = None) -> Optional[RunResult]:
        """The result once the guest has ended (None if `timeout` passed first).
        Raises the WasmBpfError that kept the guest from running, if any."""
        if self._thread is None:
            raise WasmBpfError("the Runner was not started")
        if not self._done.wait(timeout):
            return None
        self._cancel_timers()
        if self._error is not None:
            raise self._error
        return self.result

    def stop(self, reason: str = "stop") -> None:
        """From any thread: ask the guest to stop (its poll returns -EINTR);
        interrupt it after the grace period. Later calls do nothing more."""
        with self._stop_lock:
            if self._stop_reason is not None or self._done.is_set():
                return
            self._stop_reason = reason
        self._phase = "stopping" if self._phase != "finished" else self._phase
        if self._abi is not None:
            self._abi.request_stop()
        self._timer(self.options.grace_period, self.kill)

    def kill(self) -> None:
        """Stop now: end the guest at its next buffer poll and interrupt its
        wasm code where the engine can; if neither ends it within the grace
        period (wasmer, a guest spinning in pure wasm), tear down its BPF
        objects from this thread and give up on the guest thread
        (RunResult.abandoned)."""
        if self._done.is_set():
            return
        with self._stop_lock:
            if self._stop_reason is None:
                self._stop_reason = "stop"
            self._interrupted = True
            preparing = self._preparing
        if self._abi is not None:
            self._abi.request_abort()  # a guest looping on polls ends at its next one
        if self._processors is not None:
            self._processors.interrupt()  # a guest waiting on a looping processor, or its init
        if preparing:
            # The guest has not started and never will (_main sees the stop
            # when preparation ends): wait for that, and give up on the thread
            # only if preparation itself hangs.
            if not self._done.wait(self.options.grace_period):
                self._abandon()
            return
        if self._engine is not None:
            # One spinning in wasm ends now where the engine can interrupt it;
            # elsewhere only a poll can end it, and a polling guest polls often.
            can_interrupt = self._engine.interrupt()
            if self._done.wait(self.options.grace_period if can_interrupt else min(self.options.grace_period, 0.5)):
                return
        self._abandon()

    def _abandon(self) -> None:
        if self._done.is_set():
            return
        log.warning("the guest did not stop; destroying its BPF objects and abandoning it")
        if self._abi is not None:
            self._abi.close_all()
        self._finish(self._stopped_result(abandoned=True))

    # -- observing ------------------------------------------------------
    def status(self) -> RunStatus:
        abi = self._abi
        if abi is None:
            return RunStatus(self._phase, 0, 0, [])
        return RunStatus(self._phase, len(abi.objects), abi.links_attached, self._buffers())

    def maps(self):
        """The maps of every BPF object the guest has loaded now (MapView list)."""
        from wasm_bpf_cli.mapview import MapView

        abi = self._abi
        if abi is None:
            return []
        return [MapView(m, gobj) for gobj in abi.loaded_objects() for m in gobj.obj.maps]

    async def run_async(self) -> RunResult:
        """Run without blocking the event loop; cancelling stops the guest."""
        import asyncio

        self.start()
        loop = asyncio.get_running_loop()
        try:
            while True:
                result = await loop.run_in_executor(None, self.wait, 0.1)
                if result is not None:
                    return result
        except asyncio.CancelledError:
            self.stop("stop")
            await loop.run_in_executor(None, self.wait)
            raise

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None and not self._done.is_set():
            self.stop("stop")
            self._done.wait(self.options.grace_period * 2 + 1)
            if not self._done.is_set():
                self.kill()
        self._cancel_timers()

    # -- internals ------------------------------------------------------
    def _timer(self, delay: float, action: Callable[[], None]) -> None:
        timer = threading.Timer(delay, action)
        timer.daemon = True
        self._timers.append(timer)
        _start_without_signals(timer)

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()

    def _buffers(self) -> List[BufferResult]:
        if self._abi is None:
            return []
        return [BufferResult(b.name, b.kind, b.delivered, b.lost, b.dropped) for b in list(self._abi.buffers)]

    def _stopped_result(self, abandoned: bool = False, message: Optional[str] = None) -> RunResult:
        reason = self._stop_reason or "stop"
        outcome = Outcome.TIMED_OUT if reason == "duration" else Outcome.INTERRUPTED
        return RunResult(STOP_EXIT_CODES.get(reason, 130), outcome, reason, message,
                         abandoned=abandoned)

    def _finish(self, result: Optional[RunResult], error: Optional[BaseException] = None) -> None:
        with self._stop_lock:
            if self._done.is_set():
                return
            if result is not None:
                result.buffers = self._buffers()
                result.denials = list(self._abi.denials) if self._abi is not None else []
                result.wall_time = time.monotonic() - self._started_at
                result.cpu_time = time.process_time() - self._cpu_at_start
            self.result = result
            self._error = error
            self._phase = "finished"
            self._done.set()

    def _main(self) -> None:
        from wasm_bpf_cli.engines.base import GuestTrap

        cleanup: List[Callable[[], None]] = []
        instance = None
        result: Optional[RunResult] = None
        error: Optional[BaseException] = None
        try:
            instance = self._prepare(cleanup)
            self._end_preparing()
            try:
                code = instance.run_main()
                result = RunResult(code, Outcome.EXITED, self._stop_reason, None)
            except GuestTrap as trap:
                if self._interrupted or trap.interrupted:
                    result = self._stopped_result()
                else:
                    message = str(trap) if getattr(trap, "processor", None) else f"guest trapped: {trap}"
                    result = RunResult(1, Outcome.TRAPPED, self._stop_reason, message)
        except _Cancelled:  # stopped while preparing: the guest never started
            result = self._stopped_result()
        except WasmBpfError as err:
            error = err
        except BaseException as err:  # noqa: BLE001 - reported, not lost on this thread
            log.debug("runner failed", exc_info=True)
            error = WasmBpfError(f"internal error: {type(err).__name__}: {err}")
        finally:
            if self._abi is not None:
                self._abi.close()
            if instance is not None:
                instance.close()
            for action in cleanup:
                action()
            self._flush_line_writers()
        self._finish(result, error)

    def _end_preparing(self) -> None:
        """From here on, kill() interrupts the guest; raises _Cancelled if a
        stop came while preparing (the guest must not start then)."""
        with self._stop_lock:
            self._preparing = False
            if self._stop_reason is not None:
                raise _Cancelled()
            self._phase = "running"

    def _flush_line_writers(self) -> None:
        """The unterminated last line of a LineWriter, once the guest is gone."""
        from wasm_bpf_cli.lines import LineWriter

        for out in (self.options.stdout, self.options.stderr):
            if isinstance(out, LineWriter):
                try:
                    out.flush()
                except Exception:  # noqa: BLE001 - as for any output sink
                    log.exception("guest output sink failed")

    def _prepare(self, cleanup: List[Callable[[], None]]):
        """Read, check and instantiate the module (on the guest's thread: some
        engines bind their objects to the thread that made them)."""
        from wasm_bpf_cli import engines
        from wasm_bpf_cli.abi.host import HostAbi
        from wasm_bpf_cli.abi.preload import embedded_images
        from wasm_bpf_cli.engines.base import WasiOptions
        from wasm_bpf_cli.engines.stdio import BUFFERING_MODES
        from wasm_bpf_cli.pipewatch import watch_closed_pipes
        from wasm_bpf_cli.policy import as_policy

        opts = self.options
        if opts.output_buffering not in BUFFERING_MODES:
            raise UsageError(f"output_buffering {opts.output_buffering!r}: expected one of "
                             + ", ".join(BUFFERING_MODES))
        policy = as_policy(opts.policy)
        if policy is not None and opts.dirs and not policy.allow_preopens:
            raise UsageError(f"preopened directories are not allowed by {policy.source} (allow_preopens)")
        if not 0 <= opts.max_delivery_delay <= MAX_DELIVERY_DELAY:
            raise UsageError(f"max_delivery_delay must be between 0 and {MAX_DELIVERY_DELAY:g} s, "
                             f"not {opts.max_delivery_delay!r}")
        caps = [n for n in (opts.max_memory, policy and policy.max_memory) if n is not None]
        max_memory = min(caps) if caps else None
        wasm = self._wasm if self._wasm is not None else self._read_module(policy)
        parsed = _checked_module(wasm, opts)
        needs_bpf = _needs_bpf(parsed)
        if opts.processors or opts.filters:  # a processor that does not fit stops the run here
            from wasm_bpf_cli.components.processors import Processors

            self._processors = Processors(opts.processors, opts.processor_args, opts.filters,
                                          _module_cache(opts), max_memory, _sink(opts.stderr) or _write_stderr)
            cleanup.append(self._processors.close)
            self._processors.load()  # kill() interrupts an init that does not return
        if needs_bpf:
            if not _has_bpf_privilege():
                raise PrivilegeError("loading BPF programs needs root or CAP_BPF and CAP_PERFMON: "
                                     "this process has neither CAP_BPF nor CAP_SYS_ADMIN "
                                     f"(uid {os.geteuid()})")
            from wasm_bpf_cli.bpf import require_libbpf

            require_libbpf()
            if not os.path.exists("/sys/kernel/btf/vmlinux"):
                log.warning("this kernel has no BTF (/sys/kernel/btf/vmlinux): CO-RE programs will not load")
        stem = os.path.splitext(os.path.basename(self.path))[0] or "guest"
        abi = HostAbi(object_name=stem[:15], wrapper_module=opts.wrapper_module_name,
                      callback_export=opts.callback_export_name, max_object_size=opts.max_object_size,
                      policy=policy, max_delivery_delay=opts.max_delivery_delay)
        self._abi = abi
        if opts.metrics is not None or opts.metrics_config is not None or opts.bpf_stats:
            self._serve_metrics(wasm, abi, cleanup)  # checked and bound before anything is loaded
        abi.processors = self._processors
        stderr = _sink(opts.stderr)
        if stderr is not None:  # denials go where the guest's stderr goes, not to the log
            abi.on_denial = lambda message: stderr(f"wasm-bpf: warning: policy: {message}\n".encode())
        if self._stop_reason is not None:
            abi.request_stop()
        if needs_bpf:  # the kernel loads them while the engine starts
            abi.preload(embedded_images(wasm, abi.max_object_size, parsed))
        self._engine = engines.create(opts.engine)
        module = self._engine.compile(wasm, cache=_module_cache(opts))
        env = list(opts.env.items()) if isinstance(opts.env, Mapping) else [tuple(kv) for kv in opts.env]
        wasi = WasiOptions(
            argv=[opts.argv0 or self.path] + list(opts.args),
            env=env,
            preopens=list(opts.dirs),
            stdout=_sink(opts.stdout),
            stderr=stderr,
            stdin_path=_stdin_path(opts.stdin, cleanup),
            buffering=opts.output_buffering,
            on_closed_output=lambda _fd: self.stop("output_closed"),
        )
        own_fds = [fd for fd, out in ((1, opts.stdout), (2, opts.stderr)) if out is None]
        cleanup.append(watch_closed_pipes(own_fds, lambda: self.stop("output_closed"), _start_without_signals))
        instance = self._engine.instantiate(module, wasi, abi.host_functions(), max_memory=max_memory)
        abi.bind(instance)
        return instance

    def _serve_metrics(self, wasm: bytes, abi, cleanup: List[Callable[[], None]]) -> None:
        from wasm_bpf_cli import engines, metrics

        opts = self.options
        if opts.metrics is None:
            raise UsageError("metrics_config and bpf_stats need metrics (an ADDR:PORT to serve them at)")
        served = metrics.serve(opts.metrics, wasm, os.path.basename(self.path), engines.resolve(opts.engine),
                               self, abi, config=opts.metrics_config, bpf_stats=opts.bpf_stats)
        self.metrics_url = served.url
        cleanup.append(served.close)

    def _read_module(self, policy=None) -> bytes:
        from wasm_bpf_cli.oci.reference import is_reference

        if is_reference(self.path) and not os.path.exists(self.path):
            from wasm_bpf_cli.oci import load_module  # pulled, checked, signatures verified

            return load_module(self.path, self.options.pull, policy)[1]
        try:
            with open(self.path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise ModuleError(f"{self.path}: no such file") from None
        except IsADirectoryError:
            raise ModuleError(f"{self.path}: is a directory, not a wasm module") from None
        except OSError as err:
            raise ModuleError(f"{self.path}: cannot read: {err.strerror}") from None
