"""Faults against the real kernel, through `wasm-bpf run` as a subprocess:
a stop at any moment of start-up, SIGKILL, runners side by side. (Traps and
proc_exit in a callback, a guest that does not close, signals after attach
and the grace period: test_run_kernel.py.)

After each test nothing of ours is left in the kernel (`no_bpf_leaks`, which
polls bpftool until a deadline: the kernel frees objects asynchronously).

What the kernel cleans up by itself when the runner is SIGKILLed: every
program, map and link of a guest is held only by file descriptors of the
runner process (nothing is pinned in bpffs). When the process dies the kernel
closes its fds; a perf-event/tracepoint link is detached when its last fd
closes, and a program or map is freed when its last reference (fd, link, or a
map referenced by a program) goes away. So a SIGKILLed runner leaves nothing
behind: no cleanup code of ours runs, and none is needed. (What would survive
is only something pinned in /sys/fs/bpf, which wasm-bpf never does.)
test_sigkill_kernel_cleans_up checks exactly this with bpftool.
"""
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import (ROOT, bpf_snapshot, cli_env, descendants, example, fdinfo_ids,
                      guest, wait_no_new_bpf, wasm_bpf_cmd)

pytestmark = [pytest.mark.kernel, pytest.mark.engine]

DEADLINE = 30.0  # seconds any single run may take


class Run:
    """`wasm-bpf run ...` in the background; stdout read line by line."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(wasm_bpf_cmd("run", *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=cli_env(), cwd=ROOT)
        self.lines = []
        self._got = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err = []
        self._err_reader = threading.Thread(target=lambda: self._err.append(self.proc.stderr.read()), daemon=True)
        self._err_reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._got:
                self.lines.append(line.rstrip("\n"))
                self._got.notify_all()
        with self._got:
            self.lines.append(None)  # EOF
            self._got.notify_all()

    def wait_line(self, text: str, timeout: float = DEADLINE) -> bool:
        with self._got:
            return self._got.wait_for(lambda: text in self.lines or None in self.lines, timeout) and text in self.lines

    def finish(self, timeout: float = DEADLINE, pump_getppid: bool = False):
        """Wait for exit (calling getppid() meanwhile if asked); (rc, stdout lines, stderr)."""
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end:
            if pump_getppid:
                os.getppid()
            time.sleep(0.01)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the runner did not exit within {timeout} s; stdout: {self.lines}")
        self._reader.join(5)
        self._err_reader.join(5)
        return self.proc.returncode, [l for l in self.lines if l is not None], "".join(self._err)


@pytest.mark.parametrize("delay", [0.0, 0.03, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.3, 0.8])
def test_sigterm_during_load(no_bpf_leaks, delay):
    """SIGTERM as early as possible, then at later moments of startup/load:
    whatever the moment, a bounded exit without a traceback and nothing left."""
    run = Run(example("bootstrap"))
    time.sleep(delay)
    run.proc.send_signal(signal.SIGTERM)
    rc, out, err = run.finish(timeout=15)
    # -15: killed by the default handler before the CLI installed its own;
    # 143: the guest had to be interrupted; 0: bootstrap saw -EINTR and exited by itself
    assert rc in (0, 143, -signal.SIGTERM), (rc, out, err)
    assert "Traceback" not in err, err


def test_sigkill_kernel_cleans_up(no_bpf_leaks):
    """SIGKILL of `wasm-bpf run`: no code of ours runs; the kernel frees the
    programs, maps and links when the dead process's fds close (see the module
    docstring). Ours are told apart from concurrent runs by the fds that the
    runner's processes hold. On wasmer `run` forks a supervised child
    (cli/supervise.py): it must die with the parent (PR_SET_PDEATHSIG)."""
    before = no_bpf_leaks
    run = Run(guest("ignoreint"))  # attached, polls forever
    assert run.wait_line("attached")
    tree = descendants(run.proc.pid)
    held = {"prog": set(), "map": set(), "link": set()}
    for pid in tree:
        for kind, ids in fdinfo_ids(str(pid)).items():
            held[kind] |= ids
    assert held["prog"] and held["map"], "the runner holds no BPF program/map fds"
    run.proc.send_signal(signal.SIGKILL)
    rc, _, _ = run.finish(timeout=10)
    assert rc == -signal.SIGKILL
    try:
        end = time.monotonic() + 5.0
        while True:
            alive = {k: held[k] & bpf_snapshot()[k] for k in held}
            if not any(alive.values()) or time.monotonic() > end:
                break
            time.sleep(0.05)
        assert not any(alive.values()), f"survived the runner's SIGKILL: {alive}"
        assert not wait_no_new_bpf(before), "links or maps survived the runner's SIGKILL"
    finally:
        for pid in tree[1:]:  # a child the runner forked, if it outlived it
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


_HELPER = ("import os, sys, time\n"
           "print(os.getpid(), flush=True)\n"
           "end = time.monotonic() + 30\n"
           "while time.monotonic() < end:\n"
           "    os.getppid(); time.sleep(0.01)\n")


def test_two_runners_each_see_their_own_events(no_bpf_leaks):
    import sys

    helpers = [subprocess.Popen([sys.executable, "-c", _HELPER], stdout=subprocess.PIPE, text=True)
               for _ in range(2)]
    try:
        pids = [int(h.stdout.readline()) for h in helpers]
        runs = [Run(guest("ringbuf"), str(pid), "5") for pid in pids]
        results = [r.finish() for r in runs]
    finally:
        for h in helpers:
            h.kill()
            h.wait()
    for pid, (rc, out, err) in zip(pids, results):
        assert rc == 0, (out, err)
        samples = [l for l in out if l.startswith("sample ")]
        assert samples == [f"sample pid={pid} tag=ringevt size=20"] * 5, out
        assert out[-1] == "got 5"
        assert "Traceback" not in err


def test_two_runners_different_engines_or_buffers(no_bpf_leaks):
    """A ring-buffer guest and a perf-buffer guest at once on one helper
    process: each gets its own kind of sample."""
    import sys

    helper = subprocess.Popen([sys.executable, "-c", _HELPER], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(helper.stdout.readline())
        runs = {"ringevt": Run(guest("ringbuf"), str(pid), "3"), "perfevt": Run(guest("perf"), str(pid), "3")}
        results = {tag: r.finish() for tag, r in runs.items()}
    finally:
        helper.kill()
        helper.wait()
    for tag, (rc, out, err) in results.items():
        assert rc == 0, (tag, out, err)
        assert [l for l in out if l.startswith("sample ")] == [f"sample pid={pid} tag={tag} size=20"] * 3
