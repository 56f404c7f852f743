"""Process supervision for engines that cannot interrupt wasm code (wasmer).

wasmer-python holds the GIL while guest code runs, so a guest spinning in
pure wasm freezes every Python thread of its process: no timer, no signal
handler can act. The CLI therefore forks: the child runs the guest (as usual,
with its own status line and clean -EINTR stop path); the parent only
forwards signals, enforces --duration and the grace period, and SIGKILLs the
child when it does not stop. The kernel then destroys the child's links,
programs and maps with its last file descriptors (nothing of ours is pinned).
"""
import os
import signal
import sys
import time
from typing import Callable, Optional

from wasm_bpf_cli.runner import STOP_EXIT_CODES

# The child stops on these: SIGINT/SIGTERM as usual, SIGUSR1 for --duration.
DURATION_SIGNAL = signal.SIGUSR1
KILL_MARGIN = 0.5  # seconds past the grace period, so the child's own teardown goes first


def run_supervised(child: Callable[[], None], duration: Optional[float], grace: float) -> None:
    """Fork; `child()` runs in the child (and must exit). The parent exits
    with the child's status, or with the stop status if it had to kill it."""
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)  # Ctrl-C reaches the parent only; it forwards it
        except OSError:
            pass
        _die_with_parent(parent)
        code = 1
        try:
            child()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    sys.exit(_supervise(pid, duration, grace))


def _supervise(pid: int, duration: Optional[float], grace: float) -> int:
    started = time.monotonic()
    state = {"reason": None, "deadline": None, "killed": False}

    def stop(reason: str, sig: int) -> None:
        if state["reason"] is None:
            state["reason"] = reason
            state["deadline"] = time.monotonic() + grace + KILL_MARGIN
            _signal(pid, sig)
        else:  # a second Ctrl-C / SIGTERM: stop at once
            state["deadline"] = time.monotonic()

    signal.signal(signal.SIGINT, lambda *_: stop("sigint", signal.SIGINT))
    signal.signal(signal.SIGTERM, lambda *_: stop("sigterm", signal.SIGTERM))
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 1
        if done:
            break
        now = time.monotonic()
        if duration is not None and state["reason"] is None and now - started >= duration:
            stop("duration", DURATION_SIGNAL)
        if state["deadline"] is not None and now >= state["deadline"] and not state["killed"]:
            state["killed"] = True
            _signal(pid, signal.SIGKILL)
            sys.stderr.write("wasm-bpf: warning: the guest did not stop (wasmer cannot interrupt wasm "
                             "code); killed it: the kernel destroys its BPF links, programs and maps\n")
        time.sleep(0.02)
    if state["killed"]:
        return STOP_EXIT_CODES.get(state["reason"], 130)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 128 + os.WTERMSIG(status)


def _die_with_parent(parent: int) -> None:
    """SIGKILL this child when the supervising parent dies (even by SIGKILL):
    an orphaned guest must not keep its programs attached."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
