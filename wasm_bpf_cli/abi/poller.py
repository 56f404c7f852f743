"""An interruptible ring/perf buffer poller for one guest buffer.

libbpf's `*_poll` blocks in epoll_wait and can only be woken by a signal on
its own thread. We wait instead on our own epoll set holding libbpf's epoll
fd and the runner's wake pipe, then consume without blocking: any thread can
stop a pending poll by writing to the pipe (Runner.stop, Ctrl-C).

Ring buffers are consumed in batches where the engine added a dispatch loop
to the module (rewrite.add_ring_dispatch): the host reads the mapped ring's
positions itself (MappedRing), copies a run of records into host-owned pages
of guest memory (Staging) with one memmove, and crosses into wasm once per
batch; the loop in wasm calls the guest's callback per record. Otherwise, and
for perf buffers, libbpf calls back per sample (`Dispatch`).
"""
import ctypes
import mmap
import select
import time
from typing import Callable, List, Optional

from wasm_bpf_cli.bpf import PerfBuffer, RingBuffer
from wasm_bpf_cli.bpf.ringbuf import MappedRing

BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4
BPF_MAP_TYPE_RINGBUF = 27
BUFFER_MAP_TYPES = (BPF_MAP_TYPE_PERF_EVENT_ARRAY, BPF_MAP_TYPE_RINGBUF)

# (data_address, size) -> the callback's return value; negative stops the round
Dispatch = Callable[[int, int], int]

# Bytes of ring copied per crossing into wasm (~7,000 64-byte records).
STAGE_WINDOW = 512 * 1024
WASM_PAGE = 65536


MADV_POPULATE_READ = 22  # Linux 5.14
MADV_POPULATE_WRITE = 23
_libc = ctypes.CDLL(None, use_errno=True)
_libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


def populate(address: int, size: int, write: bool) -> bool:
    """Fault in the pages of [address, address+size) now, in one system call,
    rather than one page fault per 4 KiB at the first copy after a burst
    (each costs ~4 us in a VM: ~1 ms for a staging window). False if the
    kernel cannot (before 5.14, or a mapping that refuses it)."""
    start = address & ~(mmap.PAGESIZE - 1)
    length = address + size - start
    advice = MADV_POPULATE_WRITE if write else MADV_POPULATE_READ
    return _libc.madvise(start, length, advice) == 0


class BufferStats:
    """What the status line and the run result report for one buffer."""

    def __init__(self, name: str, kind: str):
        self.name = name
        self.kind = kind  # "ringbuf" | "perf"
        self._delivered = 0
        self.lost = 0  # perf buffers only: samples the kernel dropped
        self.dropped = 0  # samples a --filter processor dropped (abi/calls.py)
        self.native = None  # nativepoll's entry for this buffer: it counts what C delivered

    @property
    def delivered(self) -> int:
        native = self.native
        return self._delivered + (native.delivered if native is not None else 0)

    @delivered.setter
    def delivered(self, value: int) -> None:
        native = self.native
        self._delivered = value - (native.delivered if native is not None else 0)

    def detach_native(self) -> None:
        """Keep what C counted; the entry is reused or freed next."""
        native, self.native = self.native, None
        if native is not None:
            self._delivered += native.delivered


class Staging:
    """Host-owned pages at the end of the guest's linear memory, grown by the
    host (memory.grow) when the guest first asks for a buffer map's fd and
    faulted in at once: two copies of a window of ring records (headers are
    read from the first, payloads from the second: see
    rewrite._ring_dispatch_body; perf buffers use the first only) and a
    result slot (12 bytes; 64 where the guest runs the loop itself, rewrite.SLOT_SIZE).

    Why there and not in the guest's `data` buffer: each record is copied to
    `data` before its callback, and the callback may use all of `data`. The
    guest's allocator never hands these pages out (memory.grow returns fresh
    pages after them to a later sbrk). The guest could still write to them:
    that only garbles its own samples, never the host, which bounds every
    result read back."""

    def __init__(self, memory, window: int = STAGE_WINDOW):
        pages = (2 * window + 64 + WASM_PAGE - 1) // WASM_PAGE  # + the result slot (rewrite.SLOT_SIZE)
        old = memory.grow(pages)
        if old is None:
            raise MemoryError("the guest's memory cannot grow by the staging pages")
        base = old * WASM_PAGE
        size = pages * WASM_PAGE
        address = memory.host_address(base, size)
        if address is not None and not populate(address, size, write=True):
            ctypes.memset(address, 0, size)  # fresh pages are zero: this only faults them in
        self.memory = memory
        self.window = window
        self.hdrs = base
        self.payload = base + window
        self.res = base + 2 * window  # consumed, delivered, lost: u32 each
        self._busy = ctypes.c_int32(0)  # a nested poll (from a callback) must not reuse it

    @property
    def busy(self) -> bool:
        return bool(self._busy.value)

    @busy.setter
    def busy(self, value: bool) -> None:
        self._busy.value = 1 if value else 0

    def share_busy(self, flag: ctypes.c_int32) -> None:
        """Keep the busy flag in `flag` (nativepoll's state: the C loop and
        the Python path must see each other's batches)."""
        flag.value = self._busy.value
        self._busy = flag


class _PerfRing:
    """One CPU's perf buffer as libbpf mapped it (PerfBuffer.cpu_buffers)."""

    def __init__(self, page: int, size: int):
        if size <= 0 or size & (size - 1):
            raise ValueError(f"perf buffer data size {size} is not a power of 2")
        self.head = ctypes.c_uint64.from_address(page + 1024)
        self.tail = ctypes.c_uint64.from_address(page + 1032)
        self.data = page + mmap.PAGESIZE
        self.size = size
        self.mask = size - 1
        if not populate(self.data, size, write=False):  # perf mmaps refuse it (EINVAL):
            for offset in range(0, size, mmap.PAGESIZE):  # read a byte of each page instead
                _ = ctypes.c_char.from_address(self.data + offset).value


class BufferPoller:
    def __init__(self, map_fd: int, map_type: int, name: str, wake_fd: int, max_entries: int = 0):
        self._dispatch: Optional[Dispatch] = None
        self.ring: Optional[MappedRing] = None
        self.perf_rings: List["_PerfRing"] = []
        self.in_batch = False  # a batch of this buffer is being dispatched
        self._map_fd = map_fd
        self._buffer = None
        if map_type == BPF_MAP_TYPE_RINGBUF:
            kind = "ringbuf"
            if max_entries > 0:
                try:
                    self.ring = MappedRing(map_fd, max_entries)
                except Exception:  # noqa: BLE001 - libbpf's per-sample path still works
                    self.ring = None
            # libbpf's ring_buffer maps the whole ring again (twice the data
            # area: 2x its size of RSS, the kernel maps every page at mmap
            # time): made only if the per-sample path is ever needed.
            if self.ring is None:
                self._buffer = RingBuffer(map_fd, self._on_sample)
        else:
            self._buffer = PerfBuffer(map_fd, self._on_sample)
            kind = "perf"
            try:
                self.perf_rings = [_PerfRing(base, size) for base, size in self._buffer.cpu_buffers()]
            except Exception:  # noqa: BLE001 - libbpf's per-sample path still works
                self.perf_rings = []
        self.stats = BufferStats(name, kind)
        self._epoll = select.epoll()
        # the map fd itself is what libbpf's ring_buffer waits on
        self._epoll.register(self._buffer.epoll_fd if self._buffer is not None else map_fd, select.EPOLLIN)
        self._epoll.register(wake_fd, select.EPOLLIN)
        self._stop_epoll = select.epoll()  # the wake pipe alone: the coalescing wait
        self._stop_epoll.register(wake_fd, select.EPOLLIN)

    @property
    def epoll_fd(self) -> int:
        """The epoll set of this buffer and the wake pipe."""
        return self._epoll.fileno()

    @property
    def can_batch(self) -> bool:
        """The host can read this buffer itself (see drain_batches,
        drain_perf_batches); else only libbpf's per-sample path works."""
        return self.ring is not None or bool(self.perf_rings)

    def _on_sample(self, address: int, size: int) -> int:
        return self._dispatch(address, size)

    def poll(self, dispatch: Dispatch, timeout_ms: int, stopping: Callable[[], bool],
             drain: Optional[Callable[[], int]] = None, max_delay: float = 0.0) -> Optional[int]:
        """Deliver what is ready, waiting up to `timeout_ms` (negative: no
        limit) for something to arrive. None when a stop was requested before
        anything was delivered; otherwise what the consume returned. `drain`
        (the batch path) replaces libbpf's consume when given.

        `max_delay` (seconds, the run's max_delivery_delay): records found
        waiting, on entry or after a wake-up, are held up to that long more,
        so that one crossing into the guest delivers more of them; never past
        this poll's own timeout, and a stop request ends the wait at once.
        The C loop (_nativepoll.c) keeps the same rules."""
        self._dispatch = dispatch
        consume = drain or self._consume
        try:
            deadline = None
            if max_delay > 0 and timeout_ms >= 0:
                deadline = time.monotonic() + timeout_ms / 1000.0
            waiting = self._pending() if max_delay > 0 else None
            if waiting:
                if self._hold(max_delay, deadline) or stopping():
                    return None
            # nothing waited on entry: straight to the wait, so that a record
            # arriving from now on is held like one the wait finds
            got = 0 if waiting is False else consume()
            if got != 0:
                return got
            if stopping():
                return None
            woke = self._epoll.poll(timeout_ms / 1000.0 if timeout_ms >= 0 else -1)
            if stopping():
                return None
            if max_delay > 0 and woke and self._pending() is not False:
                if self._hold(max_delay, deadline) or stopping():
                    return None
            return consume()
        finally:
            self._dispatch = None

    def _pending(self) -> Optional[bool]:
        """Records wait in the buffer, less than a full batch (a full batch
        is delivered at once); None: cannot tell (libbpf's path only)."""
        if self.ring is not None:
            waiting = self.ring.producer() - self.ring.consumer()
            return 0 < waiting < STAGE_WINDOW
        if self.perf_rings:
            waiting = [r.head.value - r.tail.value for r in self.perf_rings]
            return any(waiting) and max(waiting) < STAGE_WINDOW
        return None

    def _hold(self, max_delay: float, deadline: Optional[float]) -> bool:
        """The coalescing wait; True if a stop ended it (the wake pipe)."""
        wait = max_delay
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
        if wait <= 0:
            return False
        return bool(self._stop_epoll.poll(wait))

    def _consume(self) -> int:
        if self._buffer is None:
            self._buffer = RingBuffer(self._map_fd, self._on_sample)
        got = self._buffer.consume()
        if isinstance(self._buffer, PerfBuffer):
            self.stats.lost = self._buffer.lost
        return got

    def drain_batches(self, staging: Staging, call: Callable[..., int], cb: int, ctx: int,
                      data: int, max_size: int) -> int:
        """Consume the ring's committed records in batches through `call`,
        the dispatch loop in wasm. Records delivered, or the callback's
        negative return. Stops at a BUSY record, at an empty ring, or after
        about one ring's worth (so a flat-out producer cannot keep the guest
        from ever getting back control)."""
        ring = self.ring
        memory = staging.memory
        window = staging.window
        memmove = ctypes.memmove
        stats = self.stats
        total = 0
        budget = ring.size
        while True:
            cons = ring.consumer()
            avail = ring.producer() - cons
            if avail <= 0:
                return total
            n = avail if avail < window else window
            base = memory.host_address(staging.hdrs, 2 * window + 8)
            if base is None:
                raise MemoryError("staging pages are outside the guest memory")
            off = cons & ring.mask
            first = ring.size - off
            if first >= n:
                src = ring.data + off
                memmove(base, src, n)  # headers are read from this copy,
                memmove(base + window, src, n)  # payloads from this later one
            else:  # across the end of the data area (mapped once: MappedRing)
                for dst in (base, base + window):
                    memmove(dst, ring.data + off, first)
                    memmove(dst + first, ring.data, n - first)
            ret = call(cb, ctx, data, max_size, staging.hdrs, staging.payload, n, staging.res)
            res = memory.host_address(staging.res, 8)
            consumed = ctypes.c_uint32.from_address(res).value & ~7
            count = ctypes.c_uint32.from_address(res + 4).value
            if self.ring is None:  # a callback closed the object: the ring is unmapped
                return ret if ret < 0 else total + count
            if consumed > n:  # the guest scribbled over the result slot
                consumed = 0
            if consumed:
                ring.set_consumer(cons + consumed)
            total += count
            stats.delivered += count
            if ret < 0:
                return ret
            if consumed == 0:
                if n < avail:  # one record larger than the window: libbpf delivers it
                    got = self._consume()
                    return got if got < 0 else total + got
                return total  # BUSY at the head
            if consumed < n and n == avail:
                return total  # BUSY
            budget -= consumed
            if budget <= 0:
                return total

    def drain_perf_batches(self, staging: Staging, call: Callable[..., int], cb: int, ctx: int,
                           data: int, max_size: int) -> int:
        """drain_batches for a perf buffer: each CPU's records below its
        data_head, copied (in two pieces across the end of the data area)
        into the staging window, dispatched by the perf loop in wasm;
        data_tail advances only past what was delivered (or skipped), and the
        loop's sum of PERF_RECORD_LOST counts goes to `lost`."""
        memory = staging.memory
        window = staging.window
        memmove = ctypes.memmove
        stats = self.stats
        buffer = self._buffer
        total = 0
        for ring in self.perf_rings:
            budget = ring.size
            while True:
                tail = ring.tail.value
                avail = ring.head.value - tail
                if avail <= 0:
                    break
                n = avail if avail < window else window
                base = memory.host_address(staging.hdrs, 2 * window + 16)
                if base is None:
                    raise MemoryError("staging pages are outside the guest memory")
                off = tail & ring.mask
                first = ring.size - off
                if first >= n:
                    memmove(base, ring.data + off, n)
                else:
                    memmove(base, ring.data + off, first)
                    memmove(base + first, ring.data, n - first)
                ret = call(cb, ctx, data, max_size, staging.hdrs, staging.payload, n, staging.res)
                res = memory.host_address(staging.res, 12)
                consumed = ctypes.c_uint32.from_address(res).value
                count = ctypes.c_uint32.from_address(res + 4).value
                lost = ctypes.c_uint32.from_address(res + 8).value
                if not self.perf_rings:  # a callback closed the object: the buffers are unmapped
                    return ret if ret < 0 else total + count
                if consumed > n:
                    consumed = 0
                if consumed:
                    ring.tail.value = tail + consumed
                total += count
                stats.delivered += count
                buffer.lost += lost
                stats.lost = buffer.lost
                if ret < 0:
                    return ret
                if consumed == 0:
                    if n < avail:  # one record larger than the window: libbpf delivers it
                        got = self._consume()
                        return got if got < 0 else total + got
                    break
                budget -= consumed
                if budget <= 0:
                    break
        return total

    def close(self) -> None:
        self.perf_rings = []  # unmapped below (a batch in flight checks this)
        self._epoll.close()
        self._stop_epoll.close()
        if self._buffer is not None:
            self._buffer.close()
        if self.ring is not None:
            self.ring.close()
            self.ring = None
