"""Notice when the reader of the runner's stdout or stderr pipe goes away.

`wasm-bpf run guest.wasm | head -1`: a native tool dies of SIGPIPE at its
next write after `head` exits. A guest's write gets EPIPE (engines/stdio.py
stops the run then), but a guest that has nothing more to print would keep
its programs attached until then. The kernel reports a pipe whose read end is
closed as POLLERR on the write end, without any write: one thread waits for
that and stops the run at once.
"""
import os
import select
import stat
import threading
from typing import Callable, List, Sequence


def _is_pipe(fd: int) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False


def watch_closed_pipes(fds: Sequence[int], on_closed: Callable[[], None],
                       start: Callable[[threading.Thread], None]) -> Callable[[], None]:
    """Call `on_closed` once if any of `fds` is a pipe whose reader closes,
    until the returned function is called. `start` starts the watching thread
    (the runner's way: with process signals blocked). The thread sleeps in
    poll() with no timeout: no wake-ups while the guest runs."""
    pipes: List[int] = [fd for fd in fds if _is_pipe(fd)]
    if not pipes:
        return lambda: None
    wake_read, wake_write = os.pipe()

    def watch() -> None:
        poller = select.poll()
        for fd in pipes:
            poller.register(fd, 0)  # POLLERR and POLLHUP are always reported
        poller.register(wake_read, select.POLLIN)
        try:
            while True:
                events = poller.poll()
                if any(fd == wake_read for fd, _ in events):
                    return
                if events:
                    on_closed()
                    return
        finally:
            os.close(wake_read)

    def stop() -> None:
        os.close(wake_write)  # POLLHUP on the read end

    start(threading.Thread(target=watch, name="wasm-bpf-pipewatch", daemon=True))
    return stop
