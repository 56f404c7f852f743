"""Ring-buffer polls served below Python (`_nativepoll.c`), where the helper
was built at install time and the engine can call the dispatch loop from C.

The engine-neutral part is here: the state the C loop reads (`NativePolls`:
the stop flag, the staging pages, the coalescing delay, one entry per ring
buffer whose batches it may serve) and what it counts. The engine adapter
supplies the entry points that depend on the engine (`Instance.native_poll`):
the host function the guest calls, the memory size and the call into the
dispatch loop. Everything the C loop does not serve goes to the Python host
function unchanged, so without the helper, or on an engine that has no C
entry (wasmer), the Python path alone runs, with the same semantics.
"""
import ctypes
import glob
import importlib.machinery
import logging
import os
from typing import Callable, Optional

log = logging.getLogger("wasm_bpf.host")

MAX_RINGS = 16
NO_CB = -1
FALLBACK = 1  # wb_poll: the Python path must serve this poll
STAGE_FALLBACK = 1 << 32  # wb_stage_slot: the same
_CALL = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32),
                         ctypes.POINTER(ctypes.c_int32))
_REFRESH = ctypes.CFUNCTYPE(None)


class _Ring(ctypes.Structure):
    _fields_ = [
        ("handle", ctypes.c_int32), ("fd", ctypes.c_int32), ("cb", ctypes.c_int32),
        ("in_batch", ctypes.c_int32), ("epfd", ctypes.c_int32), ("pad", ctypes.c_int32),
        ("cons", ctypes.c_void_p), ("prod", ctypes.c_void_p), ("data", ctypes.c_void_p),
        ("mask", ctypes.c_uint64), ("delivered", ctypes.c_uint64), ("polls", ctypes.c_uint64),
    ]


class _Staged(ctypes.Structure):
    """struct wb_staged of _nativepoll.c: the poll wb_stage serves."""

    _fields_ = [
        ("ring", ctypes.c_int32), ("total", ctypes.c_int32), ("phase", ctypes.c_int32),
        ("n", ctypes.c_uint32), ("gen", ctypes.c_uint32), ("pad", ctypes.c_int32),
        ("cons", ctypes.c_uint64), ("avail", ctypes.c_uint64), ("budget", ctypes.c_uint64),
        ("deadline", ctypes.c_int64), ("batches", ctypes.c_uint64),
    ]


class GuestMemoryRef(ctypes.Structure):
    """struct wb_guest_memory of _guestmem.h: how the C helpers read the guest
    memory's base and size from the engine at the moment they need them
    (data(a, b), size(a, b)); data NULL: not known."""

    _fields_ = [("data", ctypes.c_void_p), ("size", ctypes.c_void_p),
                ("a", ctypes.c_void_p), ("b", ctypes.c_void_p)]

    def set(self, data: int, size: int, a: int, b: int) -> None:
        self.data, self.size, self.a, self.b = data, size, a, b


class HostState(ctypes.Structure):
    """struct wb_host of _nativepoll.c (same order, same types)."""

    _fields_ = [
        ("stop", ctypes.c_int32), ("busy", ctypes.c_int32), ("max_timeout_ms", ctypes.c_int32),
        ("stop_epfd", ctypes.c_int32), ("max_delay_ns", ctypes.c_int64),
        ("mem_base", ctypes.c_void_p), ("mem", GuestMemoryRef), ("mem_limit", ctypes.c_uint64),
        ("hdrs", ctypes.c_uint32), ("payload", ctypes.c_uint32), ("res", ctypes.c_uint32),
        ("window", ctypes.c_uint32),
        ("call", ctypes.c_void_p), ("call_env", ctypes.c_void_p),
        ("fallback", ctypes.c_void_p), ("failure", ctypes.c_void_p), ("refresh", ctypes.c_void_p),
        ("nrings", ctypes.c_int32), ("gen", ctypes.c_uint32),
        ("rings", _Ring * MAX_RINGS), ("stg", _Staged),
    ]


_LIB = None
_LOADED = False


def library() -> Optional[ctypes.CDLL]:
    """The helper built next to this module (setup.py), or None: not built
    (no compiler at install time) or WASM_BPF_NATIVE_POLL=0."""
    global _LIB, _LOADED
    if not _LOADED:
        _LOADED = True
        if os.environ.get("WASM_BPF_NATIVE_POLL", "1") == "0":
            return None
        here = os.path.dirname(os.path.abspath(__file__))
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            for path in glob.glob(os.path.join(here, "_nativepoll" + suffix)):
                try:
                    _LIB = ctypes.CDLL(path)
                except OSError as err:
                    log.debug("native poll helper %s not loadable: %s", path, err)
                    continue
                return _LIB
    return _LIB


class NativePolls:
    """The state the C loop shares with the host ABI of one guest. Python
    writes it only while the guest is in a host call (its own thread) or,
    for `stop`, from any thread (one aligned int)."""

    def __init__(self, lib: ctypes.CDLL, wake_fd: int, max_delay_s: float = 0.0,
                 max_timeout_ms: Optional[int] = None):
        import select

        self.lib = lib
        self.state = HostState()
        self.state.max_timeout_ms = -1 if max_timeout_ms is None else max_timeout_ms
        self.state.max_delay_ns = int(max_delay_s * 1e9)
        self._stop_epoll = select.epoll()
        self._stop_epoll.register(wake_fd, select.EPOLLIN)
        self.state.stop_epfd = self._stop_epoll.fileno()
        self._pollers = []  # the poller of each entry of state.rings
        self.enabled = False  # the dispatch loop and staging pages are wired
        self.driven = False  # polls enter through `poll` (no C entry in the engine)
        self.staged = False  # polls enter through `stage`: the guest runs the dispatch loop itself
        self.state.stg.ring = -1
        self._memory = None
        self._stage_memory = None  # set once polls enter through stage_function
        self._pending: Optional[BaseException] = None
        self._call = None
        self._args = (ctypes.c_int32 * 7)()
        self._result = ctypes.c_int32()
        self._failed = ctypes.c_int32()

    @property
    def address(self) -> int:
        return ctypes.addressof(self.state)

    def request_stop(self) -> None:
        if self.state.stop < 1:
            self.state.stop = 1

    def request_abort(self) -> None:
        """Polls go to the Python path, which ends the guest (HostAbi.request_abort)."""
        self.state.stop = 2

    def offer(self, instance, staging, handle: int, fd: int, poller) -> bool:
        """A ring buffer with its poller and staging pages ready: let the C
        loop serve its polls (of the guest's table callbacks) if the engine
        wired the poll import to it."""
        if not self.enabled:
            dispatch_name = instance.dispatch_export("ring", None)
            entry = instance.native_poll_entry(dispatch_name)
            st = self.state
            if entry is not None:
                st.call, st.call_env, st.mem_base, memory = entry
                st.mem.set(*memory)
            elif instance.serve_poll_in_wasm(staging.res):
                self._stage(instance.memory)
            else:
                dispatch = instance.ring_dispatcher(dispatch_name)
                if dispatch is None:
                    return False
                self._drive(instance.memory, dispatch)
            self.set_staging(staging)
            self.enabled = True
        return self.add_ring(handle, fd, poller)

    def _drive(self, memory, dispatch) -> None:
        """Polls enter from Python (`poll`); the loop calls `dispatch` back
        through ctypes. The memory may move when it grows: its base and size
        are set before each poll, and its base again before a second batch
        of the same poll (a callback may have grown it)."""
        st = self.state
        self._memory = memory

        def call(_env, args, failed):
            try:
                return dispatch(args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7])
            except BaseException as exc:  # noqa: B902 - re-raised by poll, not through C
                self._pending = exc
                failed[0] = 1
                return -1

        def refresh():
            st.mem_base = memory.base_address()

        self._call = _CALL(call)
        self._refresh = _REFRESH(refresh)
        st.call = ctypes.cast(self._call, ctypes.c_void_p).value
        st.refresh = ctypes.cast(self._refresh, ctypes.c_void_p).value
        st.mem.size = None  # mem_limit, set before each poll
        self._wb_poll = self.lib.wb_poll
        self._wb_poll.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
        self._wb_poll.restype = ctypes.c_int
        self._poll_refs = (ctypes.addressof(st), ctypes.addressof(self._args),
                           ctypes.addressof(self._result), ctypes.addressof(self._failed))
        self.driven = True

    def _stage(self, memory) -> None:
        """The guest's poll calls reach `stage_function` (rewrite.serve_poll_in_wasm):
        the guest runs the dispatch loop itself between a stage and a commit
        call, so the host never calls into wasm."""
        self.state.mem.size = None  # mem_limit, passed with each call
        self._stage_memory = memory
        self.staged = True

    def stage_function(self, fallback: Callable[[], int]) -> Callable[[], int]:
        """The host function of the stage import (no arguments: the guest
        wrote the poll's into the staging slot, which wb_stage_slot reads),
        or `fallback` (the Python path, a whole poll) for what the C loop
        does not serve. The memory's base is looked up again only when its
        size changed (growing is the only thing that can move it)."""
        st = self.state
        call = self.lib.wb_stage_slot
        call.restype = ctypes.c_int64
        host = ctypes.c_void_p(self.address)
        seen = [-1]  # the memory size mem_base was read at

        def stage() -> int:
            memory = self._stage_memory
            if memory is not None:
                try:
                    size = memory.size()
                    if size != seen[0]:
                        st.mem_base = memory.base_address()
                        seen[0] = size
                    got = call(host, size >> 16)
                except Exception:  # noqa: BLE001 - never into the guest: the Python path serves it
                    log.exception("staged poll failed")
                else:
                    if got != STAGE_FALLBACK:
                        return got
            return fallback()

        stage.__name__ = "wasm_bpf_buffer_poll_stage"
        return stage

    @property
    def staged_batches(self) -> int:
        """Batches staged for a dispatch loop the guest ran itself (stage)."""
        return self.state.stg.batches

    def poll(self, handle: int, fd: int, cb: int, ctx: int, data: int, max_size: int,
             timeout_ms: int) -> Optional[int]:
        """A poll of the guest through the C loop (driven mode): its return,
        or None if the Python path must serve it."""
        st = self.state
        st.mem_base, st.mem_limit = self._memory.base_and_size()
        self._args[:] = (handle, fd, cb, ctx, data, max_size, timeout_ms)
        if self._wb_poll(*self._poll_refs) == FALLBACK:
            return None
        if self._failed.value:
            self._failed.value = 0
            exc, self._pending = self._pending, None
            raise exc
        return self._result.value

    def set_staging(self, staging) -> None:
        self.state.hdrs, self.state.payload = staging.hdrs, staging.payload
        self.state.res, self.state.window = staging.res, staging.window
        staging.share_busy(ctypes.c_int32.from_buffer(self.state, HostState.busy.offset))

    def add_ring(self, handle: int, fd: int, poller) -> bool:
        """Let the C loop serve polls of this ring buffer (once the guest's
        callback index is checked: `allow_callback`)."""
        st = self.state
        ring = poller.ring
        if not self.enabled or ring is None or st.nrings >= MAX_RINGS:
            return False
        r = st.rings[st.nrings]
        r.handle, r.fd, r.cb, r.in_batch = handle, fd, NO_CB, 0
        r.epfd = poller.epoll_fd
        r.cons, r.prod = ring.consumer_address, ring.producer_address
        r.data, r.mask = ring.data, ring.mask
        r.delivered = r.polls = 0
        poller.stats.native = r  # BufferStats adds r.delivered
        self._pollers.append(poller)
        st.nrings += 1
        return True

    def allow_callback(self, handle: int, fd: int, cb: int) -> None:
        """The host checked table entry `cb` is a sample callback: polls of
        (handle, fd) with it may run in C."""
        st = self.state
        for i in range(st.nrings):
            r = st.rings[i]
            if r.handle == handle and r.fd == fd:
                r.cb = cb

    def drop(self, handle: int) -> None:
        """The guest closed object `handle`: its rings are unmapped next.
        Their counts move into their BufferStats; the other entries move up."""
        st = self.state
        keep = []
        for i, poller in enumerate(self._pollers):
            if st.rings[i].handle == handle:
                poller.stats.detach_native()
            else:
                keep.append((bytes(st.rings[i]), poller))
        for i, (raw, poller) in enumerate(keep):
            ctypes.memmove(ctypes.addressof(st.rings[i]), raw, ctypes.sizeof(_Ring))
            poller.stats.native = st.rings[i]
        st.nrings = len(keep)
        st.gen += 1  # a batch in flight (the closing callback's) must not touch its ring again
        self._pollers = [p for _, p in keep]

    def drop_all(self) -> None:
        for poller in self._pollers:
            poller.stats.detach_native()
        self._pollers = []
        self.state.nrings = 0
        self.state.gen += 1

    def close(self) -> None:
        self.drop_all()
        self._stop_epoll.close()
