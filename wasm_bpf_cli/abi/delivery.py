"""wasm_bpf_buffer_poll (both variants): samples of a guest's ring and perf
buffers delivered to its callback, in batches through the dispatch loop the
engine added to the module where it can, else one by one (poller.py).

A BatchPlan says which callback a poll's batches go to; the engine instance
resolves it to its dispatch loop (Instance.batch_dispatcher). The staging
pages (poller.Staging) are grown once per guest, when it first asks for a
buffer map's fd."""
import ctypes
import logging
import struct
import threading
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

from wasm_bpf_cli.abi import errno as werr
from wasm_bpf_cli.abi.calls import Filtered
from wasm_bpf_cli.abi.poller import BUFFER_MAP_TYPES, BufferPoller, BufferStats, Staging
from wasm_bpf_cli.abi.signatures import SAMPLE_CALLBACK, STAGE_ARGS_FORMAT, STAGE_ARGS_OFFSET
from wasm_bpf_cli.bpf import BpfError, MapInfo
from wasm_bpf_cli.engines.base import GuestTrap

if TYPE_CHECKING:
    from wasm_bpf_cli.abi.guest_object import GuestObject
    from wasm_bpf_cli.engines.base import Instance

log = logging.getLogger("wasm_bpf.host")

U32 = 0xFFFFFFFF


class BatchPlan:
    """Whose callback a poll's batches go to: the guest's table entry
    `table_index` (wasm_bpf_buffer_poll), or an exported callback
    `callback_export` (table_index 0 then; the engines add loops for it, but
    wrapper-variant guests are not staged, see _polls_through_wrapper). One
    per callback, made on its first poll; it keeps the dispatch loops the
    engine resolved for it."""

    __slots__ = ("callback_export", "table_index", "loops")

    def __init__(self, callback_export: Optional[str], table_index: int):
        self.callback_export = callback_export
        self.table_index = table_index
        # buffer kind ("ring" | "perf") -> the engine's dispatch loop, or None
        self.loops: Dict[str, Optional[Callable[..., int]]] = {}


class BufferDelivery:
    def __init__(self, object_of: Callable[[int], Optional["GuestObject"]], stop: threading.Event,
                 wake_fd: int, callback_export: str, native=None, max_delivery_delay: float = 0.0):
        self._object = object_of  # a guest's handle -> its loaded object, or None
        self._native = native  # nativepoll.NativePolls: the C poll loop, or None
        self.max_delivery_delay = max_delivery_delay  # seconds; see BufferPoller.poll
        self._stop = stop
        self._wake_r = wake_fd
        self.callback_export = callback_export
        self.instance: Optional["Instance"] = None
        self.buffers: List[BufferStats] = []
        self._staging: Optional[Staging] = None
        self._staging_failed = False  # the guest's memory cannot grow: per-sample delivery
        self._abort = False  # abort_when_stopped(): a poll ends the guest instead of returning -EINTR
        self._table_plans: Dict[int, BatchPlan] = {}  # table index -> its plan
        self._wrapper_guest: Optional[bool] = None  # see _polls_through_wrapper
        self.processors = None  # wasm_bpf_call's and --filter's (abi/calls.py), set by the runner

    def _addr(self, ptr: int, size: int) -> Optional[int]:
        return self.instance.memory.host_address(ptr & U32, size)

    def abort_when_stopped(self) -> None:
        """Once a stop is requested, polls end the guest (HostAbi.request_abort)."""
        self._abort = True

    def _stopped(self) -> int:
        """What a poll returns once a stop was requested."""
        if self._abort:
            raise GuestTrap("the guest did not stop by itself", interrupted=True)
        return werr.EINTR

    def buffer_opened(self, gobj: "GuestObject", fd: int, info: MapInfo) -> None:
        """The guest asked for buffer map `fd`'s fd, right before its first
        poll. Set the buffer up now: a perf buffer only receives samples
        emitted after it exists, and the staging pages' setup cost (~1 ms) is
        better paid here than by the first burst of samples."""
        try:
            poller = self._poller(gobj, fd, info)
        except BpfError as err:
            log.warning("%s", err)  # the guest's poll will report it
        else:
            if poller.can_batch and not self._polls_through_wrapper():
                staging = self._staging_pages()
                # a --filter sees each sample in Python: that buffer stays on the Python path
                filtered = self.processors is not None and self.processors.filter_for(info.name) is not None
                if staging is not None and self._native is not None and poller.ring is not None and not filtered:
                    self._native.offer(self.instance, staging, gobj.handle, fd, poller)

    def _polls_through_wrapper(self) -> bool:
        """Whether the guest exports the callback-wrapper callback, as Go and
        TinyGo guests do. Their runtimes take the pages memory.grow adds as
        following their own heap end, so pages the host grew for itself
        would be handed out again (and the host's records would overwrite
        the heap): their samples are never staged, only delivered one by
        one through `data`."""
        if self._wrapper_guest is None:
            self._wrapper_guest = self.instance.export_caller(self.callback_export,
                                                              SAMPLE_CALLBACK) is not None
        return self._wrapper_guest

    def _poller(self, gobj: "GuestObject", fd: int, info: MapInfo) -> BufferPoller:
        """The poller of buffer map `fd`, created on first use (raises BpfError)."""
        poller = gobj.pollers.get(fd)
        if poller is None:
            poller = BufferPoller(fd, info.type, info.name, self._wake_r, info.max_entries)
            gobj.pollers[fd] = poller
            self.buffers.append(poller.stats)
        return poller

    def buffer_poll(self, handle: int, fd: int, sample_func: int, ctx: int, data: int,
                    max_size: int, timeout_ms: int) -> int:
        native = self._native
        if native is not None and native.driven:  # the C loop, entered from here (nativepoll.py)
            got = native.poll(handle, fd, sample_func & U32, ctx, data, max_size, timeout_ms)
            if got is not None:
                return got
        return self._table_poll(handle, fd, sample_func, ctx, data, max_size, timeout_ms)

    def buffer_stage(self, bounded: Callable[[Callable[..., int]], Callable[..., int]]) -> Callable[[], int]:
        """The poll import under its new name, where the engine made the
        guest run the dispatch loop itself (rewrite.serve_poll_in_wasm): what
        the C loop does not stage and commit (nativepoll.stage_function) the
        Python path serves as a whole poll, with the arguments the guest
        wrote into the staging slot (-EINVAL if they cannot be read).
        `bounded` applies the policy's timeout bound to a poll."""
        poll = bounded(self._table_poll)

        def stage() -> int:
            slot = self.instance.stage_slot()
            raw = None if not slot else self.instance.memory.read(slot + STAGE_ARGS_OFFSET,
                                                                  struct.calcsize(STAGE_ARGS_FORMAT))
            if raw is None:
                log.warning("poll: no arguments in the staging slot (%s)", slot)
                return werr.EINVAL
            return poll(*struct.unpack(STAGE_ARGS_FORMAT, raw))

        return stage

    def _table_poll(self, handle: int, fd: int, sample_func: int, ctx: int, data: int,
                    max_size: int, timeout_ms: int) -> int:
        """A table-variant poll on the Python path."""
        native = self._native
        caller = self.instance.table_caller(sample_func & U32, SAMPLE_CALLBACK)
        if caller is None:
            log.warning("poll: table entry %d is not a (i32, i32, i32) -> i32 function", sample_func & U32)
            return werr.EINVAL
        if native is not None:  # checked: the C loop may call it from now on
            native.allow_callback(handle, fd, sample_func & U32)
        plan = self._table_plans.get(sample_func & U32)
        if plan is None:
            plan = self._table_plans[sample_func & U32] = BatchPlan(None, sample_func & U32)
        return self._poll(handle, fd, caller, ctx, data, max_size, timeout_ms, plan)

    def wrapper_buffer_poll(self, handle: int, fd: int, ctx: int, data: int,
                            max_size: int, timeout_ms: int) -> int:
        caller = self.instance.export_caller(self.callback_export, SAMPLE_CALLBACK)
        if caller is None:
            log.warning("poll: the module exports no function %r of type (i32, i32, i32) -> i32",
                        self.callback_export)
            return werr.EINVAL
        # no batch: staging pages would be grown behind the guest's allocator
        # (see _polls_through_wrapper)
        return self._poll(handle, fd, caller, ctx, data, max_size, timeout_ms)

    def _staging_pages(self) -> Optional[Staging]:
        """The staging pages for batched delivery, grown once; None if the
        guest's memory cannot grow (samples are then delivered one by one)."""
        if self._staging is None and not self._staging_failed:
            try:
                self._staging = Staging(self.instance.memory)
            except Exception as err:  # noqa: BLE001 - the per-sample path still works
                log.debug("buffers are delivered per sample: %s", err)
                self._staging_failed = True
        return self._staging

    def _ring_dispatch(self, kind: str, plan: BatchPlan):
        """The engine's batch dispatch loop for a `kind` ("ring" | "perf")
        buffer and `plan`'s callback, and the staging pages, or None
        (per-sample delivery) if either is missing."""
        staging = self._staging_pages()
        if staging is None or staging.busy:
            return None
        loops = plan.loops
        if kind not in loops:
            loops[kind] = self.instance.batch_dispatcher(kind, plan.callback_export)
        call = loops[kind]
        return None if call is None else (call, staging)

    def _poll(self, handle: int, fd: int, caller, ctx: int, data: int, max_size: int,
              timeout_ms: int, plan: Optional[BatchPlan] = None) -> int:
        gobj = self._object(handle)
        if gobj is None:
            return werr.EINVAL
        info = gobj.maps.get(fd)
        if info is None:
            return werr.EBADF
        if info.type not in BUFFER_MAP_TYPES:
            return werr.EINVAL
        data &= U32
        if max_size <= 0 or self._addr(data, max_size) is None:
            return werr.EFAULT
        if self._stop.is_set():
            return self._stopped()
        try:
            poller = self._poller(gobj, fd, info)
        except BpfError as err:
            return werr.reported(err, log)
        if poller.in_batch:
            # A callback polls the buffer whose batch it is part of: the rest of
            # that batch is not consumed yet and must not be delivered twice.
            return 0
        stats = poller.stats
        memory = self.instance.memory
        memmove = ctypes.memmove
        guest_stop = []  # a negative value of the guest's own, passed back unchanged

        def dispatch(address: int, size: int) -> int:
            n = size if size < max_size else max_size
            dst = memory.host_address(data, n)  # re-checked: the callback may grow memory
            if dst is None:
                guest_stop.append(werr.EFAULT)
                return werr.EFAULT
            memmove(dst, address, n)
            stats.delivered += 1
            ret = caller(ctx, data, n)
            if ret < 0:
                guest_stop.append(ret)
            return ret

        drain = None
        found = None
        process = self.processors.filter_for(info.name) if self.processors is not None else None
        if process is not None:  # each sample goes through the filter: no batches
            dispatch = Filtered.for_buffer(dispatch, process, stats, info.type)
        elif plan is not None and poller.can_batch:
            if poller.ring is not None:
                found = self._ring_dispatch("ring", plan)
                drainer = poller.drain_batches
            else:
                found = self._ring_dispatch("perf", plan)
                drainer = poller.drain_perf_batches
        if found is not None:
            call, staging = found
            cb = plan.table_index

            def drain() -> int:
                staging.busy = poller.in_batch = True
                try:
                    got = drainer(staging, call, cb, ctx, data, max_size)
                finally:
                    staging.busy = poller.in_batch = False
                if got < 0 and not guest_stop:
                    guest_stop.append(got)
                return got

        got = poller.poll(dispatch, timeout_ms, self._stop.is_set, drain, self.max_delivery_delay)
        if process is not None and dispatch.paused and not guest_stop:
            return dispatch.handled  # the filter's time is up: the rest at the next poll
        if got is None:
            return self._stopped()
        if got < 0:
            return guest_stop[-1] if guest_stop else werr.neg(got)  # else libbpf's Linux errno
        return got
