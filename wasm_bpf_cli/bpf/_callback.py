"""The shared part of RingBuffer and PerfBuffer: exception capture across the
C boundary, and ownership of the one libbpf buffer handle. ctypes prints and
drops an exception raised inside a callback; the trampoline stashes it
instead, and the poller re-raises it once libbpf returns."""
from __future__ import annotations

from typing import Optional

from .errors import BpfError


class ExceptionStash:
    def __init__(self) -> None:
        self.pending: Optional[BaseException] = None

    def raise_pending(self) -> None:
        exc, self.pending = self.pending, None
        if exc is not None:
            raise exc


class LibbpfBuffer:
    """Owns one `struct ring_buffer *` / `struct perf_buffer *` (`_ptr`);
    `close()` frees it once with libbpf's `FREE` function."""

    KIND = "buffer"  # for messages: "ring buffer", "perf buffer"
    FREE = ""  # the libbpf function that frees the handle
    _ptr = None
    map_fd = -1

    def _p(self):
        if self._ptr is None:
            raise BpfError(f"{self.KIND} for map fd {self.map_fd} is closed")
        return self._ptr

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def close(self) -> None:
        ptr, self._ptr = self._ptr, None
        if ptr:
            getattr(self._lib, self.FREE)(ptr)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # safety net only; owners call close()
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
