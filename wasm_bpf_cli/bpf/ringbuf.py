"""RingBuffer: consume a BPF_MAP_TYPE_RINGBUF map through libbpf's ring_buffer."""
from __future__ import annotations

import errno
from typing import Callable

from ._callback import ExceptionStash
from .errors import BpfError, check_ptr
from .lib import require_libbpf

SampleFn = Callable[[int, int], int]


class RingBuffer:
    """Calls `on_sample(data_address, size)` per record. A negative return stops
    consumption and becomes poll()'s result; an exception stops it too and is
    re-raised from poll()/consume()."""

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

    def _p(self):
        if self._ptr is None:
            raise BpfError(f"ring buffer for map fd {self.map_fd} is closed")
        return self._ptr

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

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def close(self) -> None:
        ptr, self._ptr = self._ptr, None
        if ptr:
            self._lib.ring_buffer__free(ptr)

    def __enter__(self) -> "RingBuffer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # safety net only
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
