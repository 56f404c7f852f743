"""Whole lines from a guest's output.

A guest's stdout/stderr reach a RunOptions callback in the pieces the guest
(or its libc) wrote them: a line may come in two calls, or several lines in
one. LineWriter turns those pieces into one call per line:

    lines = []
    RunOptions(stdout=LineWriter(lines.append))   # lines: ["PID  COMM ...", ...]

The Runner hands LineWriter the last, unterminated piece (if any) when the
guest has ended, so nothing written is lost.
"""
from typing import Callable, Union


class LineWriter:
    """Callable guest output sink that calls `callback` once per line: a str
    without its newline (decoded as UTF-8, undecodable bytes replaced), or
    bytes without it when `binary` is true."""

    def __init__(self, callback: Callable[[Union[str, bytes]], object], binary: bool = False):
        self.callback = callback
        self.binary = binary
        self._pending = b""

    def __call__(self, data: bytes) -> None:
        *lines, self._pending = (self._pending + bytes(data)).split(b"\n")
        for line in lines:
            self._deliver(line)

    def flush(self) -> None:
        """Deliver what follows the last newline, if anything (the Runner
        calls this when the guest has ended)."""
        if self._pending:
            line, self._pending = self._pending, b""
            self._deliver(line)

    def _deliver(self, line: bytes) -> None:
        self.callback(line if self.binary else line.decode("utf-8", "replace"))
