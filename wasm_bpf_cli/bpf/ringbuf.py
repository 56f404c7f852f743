"""RingBuffer: consume a BPF_MAP_TYPE_RINGBUF map through libbpf's ring_buffer."""
from __future__ import annotations

import errno
from typing import Callable

from ._callback import ExceptionStash, LibbpfBuffer
from .errors import BpfError, check_ptr
from .lib import require_libbpf

SampleFn = Callable[[int, int], int]


class RingBuffer(LibbpfBuffer):
    """Calls `on_sample(data_address, size)` per record. A negative return stops
    consumption and becomes poll()'s result; an exception stops it too and is
    re-raised from poll()/consume()."""

    KIND = "ring buffer"
    FREE = "ring_buffer__free"

    def __init__(self, map_fd: int, on_sample: SampleFn) -> None:
        lib = require_libbpf()
        self._lib = lib
        self._on_sample = on_sample
        self._stash = ExceptionStash()
        # Referenced by self for as long as libbpf may call it.
        self._trampoline = lib.ring_buffer_sample_fn(self._sample)
        self._ptr = None
        ptr = lib.ring_buffer__new(map_fd, self._trampoline, None, None)
        self._ptr = check_ptr(ptr, f"create ring buffer for map fd {map_fd}", privileged=True)
        self.map_fd = map_fd

    def _sample(self, _ctx, data, size) -> int:
        try:
            ret = self._on_sample(data or 0, size)
            return int(ret) if ret is not None else 0
        except BaseException as exc:  # noqa: BLE001 - re-raised by poll/consume
            self._stash.pending = exc
            return -errno.ECANCELED


    def poll(self, timeout_ms: int) -> int:
        """Wait up to timeout_ms; records consumed, or a negative errno
        (-EINTR on a signal) or on_sample's negative return."""
        ret = self._lib.ring_buffer__poll(self._p(), timeout_ms)
        self._stash.raise_pending()
        return ret

    def consume(self) -> int:
        """Consume what is available without waiting."""
        ret = self._lib.ring_buffer__consume(self._p())
        self._stash.raise_pending()
        return ret

    @property
    def epoll_fd(self) -> int:
        return self._lib.ring_buffer__epoll_fd(self._p())



class MappedRing:
    """A BPF_MAP_TYPE_RINGBUF map's pages mapped into this process: the
    consumer page read-write at offset 0; the producer page and the data area
    read-only at offset page_size. libbpf maps the data area twice in a row
    (so that a run of records across the wraparound is contiguous); this maps
    it once: the kernel maps every page of a ring buffer at mmap time, so a
    second view costs the ring's size again in RSS. A reader copies a run
    across the end in two pieces (`segments`).

    For a reader that walks the records itself (a batch per memmove): records
    are an 8-byte header {u32 len | BUSY bit 31 | DISCARD bit 30, u32 pg_off}
    and the data, 8-aligned; `producer()` is read before the records it
    covers, `set_consumer()` is written after they were read."""

    BUSY_BIT, DISCARD_BIT, HDR_SZ = 1 << 31, 1 << 30, 8

    def __init__(self, map_fd: int, size: int) -> None:
        import ctypes
        import mmap
        import os

        if size <= 0 or size & (size - 1):
            raise BpfError(f"ring buffer map fd {map_fd}: size {size} is not a power of 2")
        libc = ctypes.CDLL(None, use_errno=True)
        self._mmap = libc.mmap
        self._mmap.restype = ctypes.c_void_p
        self._mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                               ctypes.c_int, ctypes.c_long]
        self._munmap = libc.munmap
        self._munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        page = mmap.PAGESIZE
        self.size = size
        self.mask = size - 1
        self._maps = []
        failed = ctypes.c_void_p(-1).value
        cons = self._mmap(None, page, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, map_fd, 0)
        if cons in (None, failed):
            err = ctypes.get_errno()
            raise BpfError(f"mmap ring buffer map fd {map_fd}: {os.strerror(err)}", err)
        self._maps.append((cons, page))
        prod_len = page + size
        prod = self._mmap(None, prod_len, mmap.PROT_READ, mmap.MAP_SHARED, map_fd, page)
        if prod in (None, failed):
            err = ctypes.get_errno()
            self.close()
            raise BpfError(f"mmap ring buffer map fd {map_fd} data: {os.strerror(err)}", err)
        self._maps.append((prod, prod_len))
        self._cons = ctypes.c_uint64.from_address(cons)
        self._prod = ctypes.c_uint64.from_address(prod)
        self.consumer_address, self.producer_address = cons, prod
        self.data = prod + page  # address of the data area
        self.map_fd = map_fd

    def segments(self, pos: int, n: int):
        """The n bytes from ring position `pos`: [(address, length)], two
        pieces if they cross the end of the data area."""
        off = pos & self.mask
        first = self.size - off
        if first >= n:
            return ((self.data + off, n),)
        return ((self.data + off, first), (self.data, n - first))

    def consumer(self) -> int:
        return self._cons.value

    def producer(self) -> int:
        return self._prod.value

    def set_consumer(self, pos: int) -> None:
        self._cons.value = pos

    def close(self) -> None:
        maps, self._maps = self._maps, []
        for addr, length in maps:
            self._munmap(addr, length)
        self._cons = self._prod = None

    def __del__(self) -> None:  # safety net only
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
