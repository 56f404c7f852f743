"""wasm_bpf_call and buffer filters: a guest's data handed to processors.

Engine-neutral: the processors (wasm_bpf_cli.components, wasmtime component
stores of their own) are reached through an object the runner gives the
HostAbi, with `call(name, bytes) -> Optional[bytes]` (KeyError for an
unknown name) and `filter_for(map_name)`. A processor that traps raises a
GuestTrap subclass, which ends the guest like its own trap.
"""
import ctypes
import time
from typing import Callable, Optional

from wasm_bpf_cli.abi import errno as werr
from wasm_bpf_cli.abi.poller import BPF_MAP_TYPE_RINGBUF

U32 = 0xFFFFFFFF
MAX_NAME = 256
ENOMSG = -werr.WASI["NOMSG"]  # the processor answered `none`

Process = Callable[[bytes], Optional[bytes]]


def wasm_bpf_call(processors, memory, name_ptr: int, data: int, length: int, out: int, out_len: int) -> int:
    """Hand `length` bytes at `data` to the processor named by the string at
    `name_ptr`. Its answer's length (>= 0; min(that, out_len) bytes are
    copied to `out`, so a longer answer is cut, as snprintf does), -ENOMSG
    for `none`, -ENOENT for no such processor, -EFAULT for a bad pointer,
    -EINVAL for a negative length."""
    if length < 0 or out_len < 0:
        return werr.EINVAL
    name = memory.read_cstring(name_ptr & U32, MAX_NAME)
    if name is None:
        return werr.EFAULT
    event = memory.read(data & U32, length) if length else b""
    if event is None or (out_len and memory.host_address(out & U32, out_len) is None):
        return werr.EFAULT
    if processors is None:
        return werr.ENOENT
    try:
        answer = processors.call(name, event)
    except KeyError:
        return werr.ENOENT
    if answer is None:
        return ENOMSG
    n = min(len(answer), out_len)
    if n:
        dst = memory.host_address(out & U32, n)  # again: the memory may have grown meanwhile
        if dst is None:
            return werr.EFAULT
        ctypes.memmove(dst, answer, n)
    return len(answer)


# How long one poll may spend filtering before it hands control back to the
# guest (the rest stays in the buffer for its next poll): a filter costs tens
# of microseconds a sample, and libbpf's consume loops until the buffer is
# empty, so a buffer filled faster than that would never let the guest (or a
# stop request) run again.
FILTER_BUDGET_S = 0.05
PAUSE = -(1 << 30)  # the dispatch's return that ends a consume at the budget (after the sample)


class Filtered:
    """A per-sample dispatch that runs `process` on each sample first: `none`
    drops it (counted in stats.dropped, consumed, never seen by the guest),
    `some(bytes)` is delivered instead of the sample. `handled` counts the
    samples it consumed; `paused` says it stopped at the budget (after a
    sample it handled: libbpf's ring consume counts a sample consumed before
    calling back, so a negative return never leaves it in the buffer)."""

    def __init__(self, dispatch: Callable[[int, int], int], process: Process, stats,
                 budget: Optional[float] = FILTER_BUDGET_S):
        self._dispatch = dispatch
        self._process = process
        self._stats = stats
        self._deadline = None if budget is None else time.monotonic() + budget
        self.handled = 0
        self.paused = False

    @classmethod
    def for_buffer(cls, dispatch: Callable[[int, int], int], process: Process, stats,
                   map_type: int) -> "Filtered":
        """Pausing at the budget on a ring buffer only: on a perf buffer a
        negative return drops the rest of libbpf's round (bpf/perfbuf.py),
        and a round is bounded by the buffer's size anyway."""
        budget = FILTER_BUDGET_S if map_type == BPF_MAP_TYPE_RINGBUF else None
        return cls(dispatch, process, stats, budget)

    def __call__(self, address: int, size: int) -> int:
        answer = self._process(ctypes.string_at(address, size))
        self.handled += 1
        if answer is None:
            self._stats.dropped += 1
            ret = 0
        else:
            keep = ctypes.create_string_buffer(answer, len(answer) or 1)
            ret = self._dispatch(ctypes.addressof(keep), len(answer))
        if ret >= 0 and self._deadline is not None and time.monotonic() > self._deadline:
            # libbpf counts a sample consumed before its callback returns: stop
            # only after this one was handled, so that none is lost
            self.paused = True
            return PAUSE
        return ret
