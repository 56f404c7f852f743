"""PerfBuffer: consume a BPF_MAP_TYPE_PERF_EVENT_ARRAY map through libbpf's
perf_buffer.

libbpf's perf sample callback returns void, so it cannot stop consumption.
When on_sample returns a negative value or raises, the rest of that poll or
consume round is dropped here (those samples are lost to the caller; they are
not counted in `lost`, which counts only what the kernel dropped), and the
negative value is returned / the exception re-raised after libbpf returns."""
from __future__ import annotations

from typing import Callable, Optional

from ._callback import ExceptionStash, LibbpfBuffer
from .errors import check_ptr
from .lib import require_libbpf

SampleFn = Callable[[int, int], int]


class PerfBuffer(LibbpfBuffer):
    """Calls `on_sample(data_address, size)` per sample, on every CPU's buffer.
    poll()/consume() return the number of samples delivered to on_sample."""

    KIND = "perf buffer"
    FREE = "perf_buffer__free"

    def __init__(self, map_fd: int, on_sample: SampleFn, page_count: int = 64) -> None:
        lib = require_libbpf()
        self._lib = lib
        self._on_sample = on_sample
        self._stash = ExceptionStash()
        self._stop: Optional[int] = None  # set when this round must drop the rest
        self._delivered = 0
        self.lost = 0
        self.map_fd = map_fd
        # Referenced by self for as long as libbpf may call them.
        self._sample_tramp = lib.perf_buffer_sample_fn(self._sample)
        self._lost_tramp = lib.perf_buffer_lost_fn(self._lost)
        self._ptr = None
        ptr = lib.perf_buffer__new(map_fd, page_count, self._sample_tramp, self._lost_tramp, None, None)
        self._ptr = check_ptr(ptr, f"create perf buffer for map fd {map_fd}", privileged=True)

    def _sample(self, _ctx, _cpu, data, size) -> None:
        if self._stop is not None:
            return  # dropped: an earlier sample of this round failed
        try:
            ret = self._on_sample(data or 0, size)
        except BaseException as exc:  # noqa: BLE001 - re-raised by poll/consume
            self._stash.pending = exc
            self._stop = -1
            return
        self._delivered += 1
        if ret is not None and int(ret) < 0:
            self._stop = int(ret)

    def cpu_buffers(self):
        """[(address of the perf_event_mmap_page, data area size)] of every
        per-CPU buffer, for a reader that walks the records itself: the data
        area follows the page; data_head (u64, written by the kernel) is at
        offset 1024 of the page and data_tail (u64, ours) at 1032."""
        import ctypes

        out = []
        for i in range(self._lib.perf_buffer__buffer_cnt(self._p())):
            base, size = ctypes.c_void_p(), ctypes.c_size_t()
            if self._lib.perf_buffer__buffer(self._p(), i, ctypes.byref(base), ctypes.byref(size)) == 0 and base.value:
                out.append((base.value, size.value))
        return out

    def _lost(self, _ctx, _cpu, count) -> None:
        self.lost += count


    def _round(self, ret: int) -> int:
        delivered, stop = self._delivered, self._stop
        self._delivered, self._stop = 0, None
        self._stash.raise_pending()
        if stop is not None:
            return stop
        return ret if ret < 0 else delivered

    def poll(self, timeout_ms: int) -> int:
        """Wait up to timeout_ms; samples delivered, or a negative errno
        (-EINTR on a signal) or on_sample's negative return."""
        return self._round(self._lib.perf_buffer__poll(self._p(), timeout_ms))

    def consume(self) -> int:
        return self._round(self._lib.perf_buffer__consume(self._p()))

    @property
    def epoll_fd(self) -> int:
        return self._lib.perf_buffer__epoll_fd(self._p())

