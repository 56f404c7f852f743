"""stdout for people: rich at the terminal's width, whole lines in a pipe,
and a quiet exit when the reader of the pipe goes away (`| head -1`)."""
import contextlib
import os
import sys
from typing import Iterator, Optional

# What a native tool ended by SIGPIPE shows in the shell.
EXIT_CLOSED_STDOUT = 141
# Wide enough that no table of ours is ever cut when stdout is not a terminal.
UNLIMITED_WIDTH = 1 << 16


@contextlib.contextmanager
def closed_stdout_is_quiet() -> Iterator[None]:
    """Exit quietly with EXIT_CLOSED_STDOUT when stdout's reader went away
    (BrokenPipeError), instead of a traceback or 'Exception ignored'."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        # fd 1 to /dev/null: the interpreter's last flush cannot fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        sys.exit(EXIT_CLOSED_STDOUT)


def stdout_width() -> Optional[int]:
    """The terminal's width (None: rich asks it), or no limit when stdout is
    a pipe or a file, where a cut name helps no one."""
    try:
        if sys.stdout.isatty():
            return None
    except (AttributeError, ValueError):
        pass
    return UNLIMITED_WIDTH


def _broken_pipe() -> None:
    raise BrokenPipeError


def stdout_console():
    """A rich Console on stdout for closed_stdout_is_quiet(): rich's own
    handling of a closed pipe (exit status 1) is replaced by the exception."""
    from rich.console import Console

    console = Console(highlight=False, width=stdout_width())
    console.on_broken_pipe = _broken_pipe  # rich >= 13 calls it; older rich lets the error through
    return console
