"""The shared part of RingBuffer and PerfBuffer: exception capture across the
C boundary. ctypes prints and drops an exception raised inside a callback; the
trampoline stashes it instead, and the poller re-raises it once libbpf returns."""
from __future__ import annotations

from typing import Optional


class ExceptionStash:
    def __init__(self) -> None:
        self.pending: Optional[BaseException] = None

    def raise_pending(self) -> None:
        exc, self.pending = self.pending, None
        if exc is not None:
            raise exc
