"""The tracing/security examples (runqlat, opensnoop, uprobe, lsm,
rust_bootstrap, and the Go ports go_runqlat, go_bootstrap) run against the real kernel: each is started through the CLI,
triggered, and what it printed is checked. Every run is bounded by the
runner's --duration and by the test's own deadlines; `no_bpf_leaks` checks
that nothing stays attached afterwards."""
import errno
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest

from conftest import EXAMPLES, ROOT, cli_env, example, skip_or_fail, wasm_bpf_cmd

pytestmark = [pytest.mark.kernel, pytest.mark.engine]

START_TIMEOUT = 30.0  # load + attach (a cold engine compiles the module)
EVENT_TIMEOUT = 20.0
EXIT_TIMEOUT = 30.0


class Guest:
    """A running `wasm-bpf run ... MODULE ARGS`, its stdout lines collected by
    a thread (so waiting never blocks past a deadline) and stderr kept."""

    def __init__(self, module: str, *args: str, duration: float = 60, grace: float = 2.0) -> None:
        cmd = wasm_bpf_cmd("run", "--duration", str(duration), "--grace-period", str(grace), module, *args)
        self.proc = subprocess.Popen(cmd, env=cli_env(), cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines: list = []
        self._q: "queue.Queue" = queue.Queue()
        self._err: list = []
        self._t_out = threading.Thread(target=self._pump, args=(self.proc.stdout, self._q), daemon=True)
        self._t_err = threading.Thread(target=self._pump_err, daemon=True)
        self._t_out.start()
        self._t_err.start()

    @staticmethod
    def _pump(stream, q) -> None:
        for line in stream:
            q.put(line.rstrip("\n"))
        q.put(None)

    def _pump_err(self) -> None:
        for line in self.proc.stderr:
            self._err.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    def wait_line(self, pattern: str, timeout: float = EVENT_TIMEOUT):
        """First stdout line (already seen or new) matching regex `pattern`;
        fails with the output so far when the deadline passes or stdout ends."""
        rx = re.compile(pattern)
        for line in self.lines:
            m = rx.search(line)
            if m:
                return m
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            try:
                line = self._q.get(timeout=max(left, 0.01))
            except queue.Empty:
                line = ""
                if time.monotonic() >= end:
                    self.fail(f"no line matching {pattern!r} within {timeout}s")
                continue
            if line is None:
                self._q.put(None)  # keep the end marker for later waits
                self.fail(f"stdout ended without a line matching {pattern!r}")
            self.lines.append(line)
            m = rx.search(line)
            if m:
                return m

    def wait_exit(self, timeout: float = EXIT_TIMEOUT) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"still running after {timeout}s")
        self._t_out.join(5)
        self._t_err.join(5)
        while True:
            try:
                line = self._q.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return rc

    def interrupt(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def fail(self, why: str):
        self.kill()
        pytest.fail(f"{why}\n--- stdout ---\n" + "\n".join(self.lines) + f"\n--- stderr ---\n{self.stderr}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def guests():
    """Start guests with `guests(module, *args)`; all are stopped at teardown
    (before no_bpf_leaks, which is requested first, checks the kernel)."""
    started = []

    def start(module, *args, **kwargs):
        g = Guest(module, *args, **kwargs)
        started.append(g)
        return g

    yield start
    for g in started:
        g.kill()


# ---------------------------------------------------------------- runqlat

HIST_ROW = re.compile(r"^\s*(\d+) -> (\d+)\s+: (\d+)\s+\|[* ]*\+?\|$")


def _make_scheduling(seconds: float) -> None:
    """Threads that sleep and wake in a loop: plenty of wakeups to measure."""
    stop = time.monotonic() + seconds

    def work():
        while time.monotonic() < stop:
            time.sleep(0.001)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


RUNQLATS = ["runqlat", "go_runqlat"]  # the C guest and its Go port: the same output


@pytest.mark.parametrize("name", RUNQLATS)
def test_runqlat_histogram(name, no_bpf_leaks, guests):
    g = guests(example(name), "-i", "1", "-c", "2", duration=60)
    g.wait_line(r"^Tracing run queue latency", START_TIMEOUT)
    _make_scheduling(2.5)
    assert g.wait_exit() == 0, g.stderr
    assert any(line.strip() == "usecs               : count    distribution" for line in g.lines), g.lines
    rows = [m for m in map(HIST_ROW.match, g.lines) if m]
    assert rows, g.lines
    assert any(int(m.group(3)) > 0 for m in rows), g.lines
    # bucket bounds are bcc's: 0 -> 1, 2 -> 3, 4 -> 7, ...
    assert (rows[0].group(1), rows[0].group(2)) == ("0", "1")
    assert len([line for line in g.lines if re.fullmatch(r"\d\d:\d\d:\d\d", line)]) == 2


@pytest.mark.parametrize("name", RUNQLATS)
def test_runqlat_ctrl_c_ends_interval_sleep(name, no_bpf_leaks, guests):
    """The interval wait is a poll of an empty ring buffer, so SIGINT ends it
    at once: the guest exits 0 by itself, long before the grace period."""
    g = guests(example(name), "-i", "60", duration=120, grace=20)
    g.wait_line(r"^Tracing run queue latency", START_TIMEOUT)
    t0 = time.monotonic()
    g.interrupt()
    assert g.wait_exit(timeout=15) == 0, g.stderr
    assert time.monotonic() - t0 < 10, "guest did not stop by itself"


# -------------------------------------------------------------- opensnoop

OPENER = """
import sys, time
sys.stdin.readline()
for i in range(int(sys.argv[3])):
    if i:
        time.sleep(0.2)
    open(sys.argv[1], "w").close()
    try:
        open(sys.argv[2])
    except FileNotFoundError:
        pass
    if not i:
        sys.stdout.write("done\\n")
        sys.stdout.flush()
sys.stdin.readline()
"""


def _opener(path: str, missing: str, repeat: int = 1) -> subprocess.Popen:
    """A child that opens `path` (created) and `missing` (ENOENT) when told,
    `repeat` times 200 ms apart (system-wide tracing on a busy machine may
    lose a sample: the perf buffer's per-CPU rings can overflow)."""
    return subprocess.Popen([sys.executable, "-c", OPENER, path, missing, str(repeat)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _trigger(child: subprocess.Popen) -> None:
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.stdout.readline() == "done\n"


def _finish(child: subprocess.Popen) -> None:
    child.kill()
    child.wait(timeout=10)


@pytest.fixture
def tmp_names():
    made = []

    def name(prefix):
        path = f"/tmp/{prefix}-{uuid.uuid4().hex}"
        made.append(path)
        return path

    yield name
    for path in made:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.unlink(path)


def test_opensnoop_sees_child_open(no_bpf_leaks, guests, tmp_names):
    path, missing = tmp_names("opensnoop"), tmp_names("opensnoop-missing")
    child = _opener(path, missing, repeat=50)
    try:
        g = guests(example("opensnoop"), duration=60)
        g.wait_line(r"^PID\s+COMM\s+FD\s+ERR\s+PATH$", START_TIMEOUT)
        _trigger(child)
        m = g.wait_line(r"^(\d+)\s+(\S+)\s+(-?\d+)\s+(\d+) " + re.escape(path) + "$")
        assert int(m.group(1)) == child.pid
        assert int(m.group(3)) >= 0 and m.group(4) == "0", m.group(0)
        m = g.wait_line(r"^(\d+)\s+(\S+)\s+(-?\d+)\s+(\d+) " + re.escape(missing) + "$")
        assert int(m.group(1)) == child.pid
        assert (m.group(3), m.group(4)) == ("-1", str(errno.ENOENT)), m.group(0)
        g.interrupt()
        assert g.wait_exit() == 0, g.stderr
    finally:
        _finish(child)


def test_opensnoop_pid_filter_and_count(no_bpf_leaks, guests, tmp_names):
    """-p PID filters in BPF: with -c 2 the two lines are the child's opens,
    and the guest exits 0 by itself."""
    path, missing = tmp_names("opensnoop"), tmp_names("opensnoop-missing")
    child = _opener(path, missing)
    try:
        g = guests(example("opensnoop"), "-p", str(child.pid), "-c", "2", duration=60)
        g.wait_line(r"^PID\s+COMM\s+FD\s+ERR\s+PATH$", START_TIMEOUT)
        _trigger(child)
        assert g.wait_exit() == 0, g.stderr
        events = g.lines[1:]
        assert len(events) == 2, g.lines
        assert all(line.split()[0] == str(child.pid) for line in events), events
        assert events[0].endswith(" " + path) and events[1].endswith(" " + missing), events
    finally:
        _finish(child)


# ----------------------------------------------------------------- uprobe

def test_uprobe_sees_args_and_result(no_bpf_leaks, guests):
    target = os.path.join(EXAMPLES, "uprobe", "uprobe_target")
    module = example("uprobe")
    if not os.access(target, os.X_OK):
        skip_or_fail(f"{target} is not built: run `make build`")
    a, b = random.randint(10_000, 1_000_000), random.randint(10_000, 1_000_000)
    g = guests(module, "-c", "3", target, duration=60)
    g.wait_line(r"^PID\s+COMM\s+CALL$", START_TIMEOUT)
    proc = subprocess.Popen([target, str(a), str(b), "200"])
    try:
        entry = g.wait_line(rf"^(\d+)\s+uprobe_target\s+uprobed_add\({a}, {b}\)$")
        ret = g.wait_line(rf"^(\d+)\s+uprobe_target\s+uprobed_add\({a}, {b}\) = (-?\d+)$")
        assert int(entry.group(1)) == proc.pid and int(ret.group(1)) == proc.pid
        assert int(ret.group(2)) == a + b
        # next call: distinct arguments, result matched to them
        ret2 = g.wait_line(rf"uprobed_add\({a + 1}, {b + 1}\) = (-?\d+)$")
        assert int(ret2.group(1)) == a + b + 2
        assert g.wait_exit() == 0, g.stderr  # -c 3 returns
    finally:
        proc.kill()
        proc.wait()
    assert g.lines[0] == f"Tracing {target}:uprobed_add"


def test_uprobe_default_target_and_bad_binary(no_bpf_leaks):
    """Without BINARY the target is uprobe_target next to the module; a
    missing binary is a clean attach error (exit 1), nothing left attached."""
    module = example("uprobe")
    missing = f"/tmp/no-such-binary-{uuid.uuid4().hex}"
    out = subprocess.run(wasm_bpf_cmd("run", "--duration", "30", module, missing), env=cli_env(),
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert f"Failed to attach uprobe to {missing}:uprobed_add: -44" in out.stderr  # WASI ENOENT
    out = subprocess.run(wasm_bpf_cmd("run", "--duration", "3", module), env=cli_env(), cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == f"Tracing {os.path.dirname(module)}/uprobe_target:uprobed_add"


# -------------------------------------------------------------------- lsm

def test_lsm_denies_rmdir(no_bpf_leaks, guests):
    name = "keep-" + uuid.uuid4().hex[:12]
    parent = tempfile.mkdtemp(prefix="wasm-bpf-lsm-")
    path = os.path.join(parent, name)
    os.mkdir(path)
    try:
        g = guests(example("lsm"), name, duration=60)
        try:
            g.wait_line(r"^Denying rmdir of directories named", START_TIMEOUT)
        except pytest.fail.Exception:
            rc = g.wait_exit()
            if "Failed to open and load BPF object" not in g.stderr:
                raise
            # Kernels in lockdown (as the CI machines are: /sys/kernel/security/lockdown
            # says [integrity]) refuse BPF LSM and fentry programs even to root. What a
            # user sees then is asserted instead: one clear line naming the program and
            # the cause, a failing exit status, no hook left (rmdir works), no leak.
            assert rc != 0
            assert ("wasm-bpf: warning: load bpf object 'lsm': program 'deny_rmdir': "
                    "Operation not permitted (EPERM): refused although running as root") in g.stderr
            os.rmdir(path)
            return
        with pytest.raises(PermissionError) as exc:
            os.rmdir(path)
        assert exc.value.errno == errno.EPERM
        assert os.path.isdir(path)
        g.wait_line(rf"^DENIED rmdir {re.escape(name)} by \S+ \({os.getpid()}\)$")
        # another name is not affected
        other = os.path.join(parent, name + "x")
        os.mkdir(other)
        os.rmdir(other)
        g.interrupt()
        assert g.wait_exit() == 0, g.stderr
        assert len([line for line in g.lines if line.startswith("DENIED")]) == 1, g.lines
        os.rmdir(path)  # the hook is gone with the runner
        assert not os.path.exists(path)
    finally:
        shutil.rmtree(parent, ignore_errors=True)


# --------------------------------------------------------- rust_bootstrap

PORTED_BOOTSTRAPS = ["rust_bootstrap", "go_bootstrap"]  # bootstrap's guest in Rust and in Go


@pytest.mark.parametrize("name", PORTED_BOOTSTRAPS)
def test_ported_bootstrap_sees_exec(name, no_bpf_leaks, guests, tmp_names):
    prog = tmp_names("rb")[:len("/tmp/rb-") + 10]  # comm keeps 15 chars
    shutil.copy("/bin/true", prog)
    try:
        g = guests(example(name), duration=60)
        g.wait_line(r"^TIME\s+EVENT\s+COMM\s+PID\s+PPID\s+FILENAME/EXIT CODE$", START_TIMEOUT)
        child = subprocess.run([prog], timeout=10)
        assert child.returncode == 0
        base = os.path.basename(prog)
        m = g.wait_line(rf"^\d\d:\d\d:\d\d EXEC  {re.escape(base)}\s+(\d+)\s+(\d+)\s+{re.escape(prog)}$")
        assert int(m.group(2)) == os.getpid()
        m2 = g.wait_line(rf"^\d\d:\d\d:\d\d EXIT  {re.escape(base)}\s+(\d+)\s+(\d+)\s+\[0\] \(\d+ms\)$")
        assert m2.group(1) == m.group(1)
        g.interrupt()
        assert g.wait_exit() == 0, g.stderr
    finally:
        if os.path.exists(prog):
            os.unlink(prog)


@pytest.mark.parametrize("name", PORTED_BOOTSTRAPS)
def test_ported_bootstrap_usage(name, no_bpf_leaks):
    module = example(name)
    out = subprocess.run(wasm_bpf_cmd("run", module, "-h"), env=cli_env(), cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "USAGE:" in out.stdout
    out = subprocess.run(wasm_bpf_cmd("run", module, "-d", "zero"), env=cli_env(), cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "Invalid duration: zero" in out.stderr
