"""An interruptible ring/perf buffer poller for one guest buffer.

libbpf's `*_poll` blocks in epoll_wait and can only be woken by a signal on
its own thread. We wait instead on our own epoll set holding libbpf's epoll
fd and the runner's wake pipe, then `consume()` without blocking: any thread
can stop a pending poll by writing to the pipe (Runner.stop, Ctrl-C).
"""
import select
from typing import Callable, Optional

from wasm_bpf_cli.bpf import PerfBuffer, RingBuffer

BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4
BPF_MAP_TYPE_RINGBUF = 27
BUFFER_MAP_TYPES = (BPF_MAP_TYPE_PERF_EVENT_ARRAY, BPF_MAP_TYPE_RINGBUF)

# (data_address, size) -> the callback's return value; negative stops the round
Dispatch = Callable[[int, int], int]


class BufferStats:
    """What the status line and the run result report for one buffer."""

    def __init__(self, name: str, kind: str):
        self.name = name
        self.kind = kind  # "ringbuf" | "perf"
        self.delivered = 0
        self.lost = 0  # perf buffers only: samples the kernel dropped


class BufferPoller:
    def __init__(self, map_fd: int, map_type: int, name: str, wake_fd: int):
        self._dispatch: Optional[Dispatch] = None
        if map_type == BPF_MAP_TYPE_RINGBUF:
            self._buffer = RingBuffer(map_fd, self._on_sample)
            kind = "ringbuf"
        else:
            self._buffer = PerfBuffer(map_fd, self._on_sample)
            kind = "perf"
        self.stats = BufferStats(name, kind)
        self._epoll = select.epoll()
        self._epoll.register(self._buffer.epoll_fd, select.EPOLLIN)
        self._epoll.register(wake_fd, select.EPOLLIN)

    def _on_sample(self, address: int, size: int) -> int:
        return self._dispatch(address, size)

    def poll(self, dispatch: Dispatch, timeout_ms: int, stopping: Callable[[], bool]) -> Optional[int]:
        """Deliver what is ready, waiting up to `timeout_ms` (negative: no
        limit) for something to arrive. None when a stop was requested before
        anything was delivered; otherwise what consume() returned."""
        self._dispatch = dispatch
        try:
            got = self._consume()
            if got != 0:
                return got
            if stopping():
                return None
            self._epoll.poll(timeout_ms / 1000.0 if timeout_ms >= 0 else -1)
            if stopping():
                return None
            return self._consume()
        finally:
            self._dispatch = None

    def _consume(self) -> int:
        got = self._buffer.consume()
        if isinstance(self._buffer, PerfBuffer):
            self.stats.lost = self._buffer.lost
        return got

    def close(self) -> None:
        self._epoll.close()
        self._buffer.close()
