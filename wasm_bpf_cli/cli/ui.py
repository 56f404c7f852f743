"""The terminal side of `wasm-bpf run`: a one-line rich status on stderr while
the guest runs, guest output written around it, and a closing summary.

Only used when stderr is a terminal; otherwise guest output goes straight to
the process's own fds and nothing decorative is printed at all.
"""
import io
import os
import threading
import time

from rich.console import Console
from rich.text import Text

CLEAR_LINE = "\r\x1b[2K"


class _TerminalSink:
    """Writes guest output to a terminal fd around the status line; says it
    is a terminal (the guest's libc buffers by that with libc buffering)."""

    def __init__(self, line: "StatusLine", fd: int):
        self._line = line
        self._fd = fd

    def __call__(self, data: bytes) -> None:
        with self._line._lock:
            self._line._clear()
            _write_all(self._fd, data)

    def isatty(self) -> bool:
        return True


class StatusLine:
    def __init__(self, module: str):
        self.module = module
        self._lock = threading.Lock()
        self._shown = False
        self._last_delivered = 0
        self._last_time = time.monotonic()
        self._rate = 0.0
        self._width = Console(stderr=True).width
        self._pending_stdout = b""

        # Guest output sinks: fd 1 and fd 2 byte for byte, the status line
        # cleared first so that it stays below them.
        self.stdout = _TerminalSink(self, 1)
        self.stderr = _TerminalSink(self, 2)

    def log(self, text: str) -> None:
        with self._lock:
            self._clear()
            _write_all(2, text.encode() + b"\n")

    # -- the status line ------------------------------------------------
    def refresh(self, status) -> None:
        now = time.monotonic()
        delivered = sum(b.delivered for b in status.buffers)
        lost = sum(b.lost for b in status.buffers)
        dropped = sum(getattr(b, "dropped", 0) for b in status.buffers)  # by --filter processors
        span = now - self._last_time
        if span >= 1.0:
            self._rate = (delivered - self._last_delivered) / span
            self._last_delivered, self._last_time = delivered, now
        text = Text.assemble(
            ("● ", "green" if status.phase == "running" else "yellow"),
            (self.module, "bold"),
            f"  {status.phase}",
            f"  objects {status.objects}",
            f"  programs {status.programs_attached}",
            f"  events {delivered} ({self._rate:,.0f}/s)",
            ("  lost ", "red" if lost else ""), (str(lost), "red" if lost else ""),
            f"  dropped {dropped}" if dropped else "",
            ("  Ctrl-C to stop", "dim"),
        )
        text.truncate(max(10, self._width - 1))
        rendered = _render(text)
        with self._lock:
            _write_all(2, (CLEAR_LINE + rendered).encode())
            self._shown = True

    def close(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        if self._shown:
            _write_all(2, CLEAR_LINE.encode())
            self._shown = False


def _render(text: Text) -> str:
    buf = io.StringIO()
    Console(file=buf, force_terminal=True, width=10_000, color_system="standard",
            no_color=bool(os.environ.get("NO_COLOR"))).print(text, end="")
    return buf.getvalue()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def print_summary(module: str, result) -> None:
    """A short rich summary on stderr after the run."""
    console = Console(stderr=True, highlight=False)
    how = {"exited": f"exited with status {result.exit_code}",
           "trapped": "trapped",
           "interrupted": "interrupted",
           "timed_out": "stopped after --duration"}[result.outcome.value]
    parts = [f"[bold]{module}[/bold] {how} after {result.wall_time:.1f}s"]
    for b in result.buffers:
        lost = f", [red]{b.lost} lost[/red]" if b.lost else ""
        dropped = f", {b.dropped} dropped by its filter" if getattr(b, "dropped", 0) else ""
        parts.append(f"{b.name} ({b.kind}): {b.delivered} events{lost}{dropped}")
    parts.append(f"cpu {result.cpu_time:.2f}s")
    console.print("[dim]wasm-bpf:[/dim] " + " · ".join(parts))
