"""Route libbpf's printf-style log into Python logging ("wasm_bpf.libbpf") and
keep the recent lines, so a failed load can show the verifier's verdict.

libbpf hands us a va_list; only C can format it, so libc's vsnprintf is called
through ctypes. A va_list is single-use: on x86-64/arm64 it is a small struct
passed by pointer, and copying those bytes is exactly what va_copy does, which
lets us measure first and then format into a buffer of the right size."""
from __future__ import annotations

import collections
import contextlib
import ctypes
import logging
import platform
import threading
from typing import Deque, Iterator, List, Tuple

logger = logging.getLogger("wasm_bpf.libbpf")

RING_LINES = 400
TAIL_LINES = 20
_FALLBACK_BUFFER = 64 * 1024
_VA_LIST_SIZE = {"x86_64": 24, "aarch64": 32}.get(platform.machine(), 0)

_ring: Deque[Tuple[int, str]] = collections.deque(maxlen=RING_LINES)
_seq = 0
_lock = threading.Lock()
_callback = None  # the ctypes callback object; must outlive its registration

# .lines: this thread's held-back libbpf messages (see `held`), or None
_held = threading.local()

_libc = ctypes.CDLL(None, use_errno=True)
_vsnprintf = _libc.vsnprintf
_vsnprintf.restype = ctypes.c_int
_vsnprintf.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]


def format_va_list(fmt: bytes, va_list: int) -> str:
    """printf-format a C va_list (consumes it)."""
    if _VA_LIST_SIZE:
        copy = ctypes.create_string_buffer(_VA_LIST_SIZE)
        ctypes.memmove(copy, va_list, _VA_LIST_SIZE)
        size = max(_vsnprintf(None, 0, fmt, ctypes.addressof(copy)), 0) + 1
    else:
        size = _FALLBACK_BUFFER
    buf = ctypes.create_string_buffer(size)
    _vsnprintf(buf, size, fmt, va_list)
    return buf.value.decode("utf-8", "replace")


def _record(text: str) -> None:
    global _seq
    with _lock:
        for line in text.splitlines():
            _seq += 1
            _ring.append((_seq, line))


def mark() -> int:
    """Position in the log; pass it to `lines_since` after an operation."""
    with _lock:
        return _seq


def lines_since(position: int, limit: int = TAIL_LINES) -> List[str]:
    """The last `limit` lines logged after `position` (from `mark`)."""
    with _lock:
        lines = [line for seq, line in _ring if seq > position]
    return lines[-limit:]


def tail_since(position: int, limit: int = TAIL_LINES) -> str:
    return "\n".join(lines_since(position, limit))


@contextlib.contextmanager
def held() -> Iterator[List[Tuple[int, str]]]:
    """`with held() as lines:` libbpf messages of this thread are kept in
    `lines` as (level, text) instead of being logged; `replay(lines)` logs
    them later. For work that may turn out not to have been asked for (a
    speculative load): its messages must not reach the user unless it is used."""
    lines: List[Tuple[int, str]] = []
    _held.lines = lines
    try:
        yield lines
    finally:
        _held.lines = None


def replay(lines: List[Tuple[int, str]]) -> None:
    for level, text in lines:
        _record(text)
        logger.log(level, "%s", text)


def install(gen) -> None:
    """Register the print callback (idempotent; called by lib.libbpf())."""
    global _callback
    if _callback is not None:
        return
    levels = {gen.LIBBPF_WARN: logging.WARNING, gen.LIBBPF_INFO: logging.INFO,
              gen.LIBBPF_DEBUG: logging.DEBUG}

    def on_print(level: int, fmt: bytes, va_list: int) -> int:
        # Never let an exception reach C: ctypes would print and drop it anyway.
        try:
            py_level = levels.get(level, logging.DEBUG)
            if py_level == logging.DEBUG and not logger.isEnabledFor(logging.DEBUG):
                return 0  # debug output is voluminous; skip formatting it
            text = format_va_list(fmt, va_list).rstrip("\n")
            lines = getattr(_held, "lines", None)
            if lines is not None:
                lines.append((py_level, text))
                return 0
            _record(text)
            logger.log(py_level, "%s", text)
        except BaseException:  # noqa: BLE001 - a callback must not raise into C
            pass
        return 0

    _callback = gen.libbpf_print_fn_t(on_print)
    gen.libbpf_set_print(_callback)
