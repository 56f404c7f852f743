"""Guests built here run on the upstream C++ runtime (the ABI contract goes
both ways): bootstrap, runqlat, opensnoop, rust_bootstrap and the
upstream-style guest, with the same assertions as on this runner. The
binary is `../shared/anchors/wasm-bpf-cpp` beside the repository (CI gets a
copy of shared/ there; `WASM_BPF_CPP` overrides); missing, these tests skip,
or fail under CI=true.

That runtime returns Linux errno values: the guests compare map results
with -ENOENT and still work because the SDK's helpers translate them.
Its guest stdout is fully buffered unless it is a terminal, and SIGINT
exits at once (status 0, buffered output lost), so guests run on a pty."""
import os
import pty
import queue
import shutil
import subprocess
import threading
import time
import tty

import pytest

from conftest import ROOT, example, guest, skip_or_fail
from test_examples_tracing import Guest, tmp_names  # noqa: F401 (fixture)
from test_examples_tracing import test_opensnoop_sees_child_open as _opensnoop
from test_examples_tracing import test_runqlat_histogram as _runqlat
from test_examples_tracing import test_ported_bootstrap_sees_exec as _ported_bootstrap
from test_upstream_api import assert_upstream_output

pytestmark = pytest.mark.kernel

CPP = os.environ.get("WASM_BPF_CPP") or os.path.normpath(
    os.path.join(ROOT, "..", "shared", "anchors", "wasm-bpf-cpp"))


class CppGuest(Guest):
    """`wasm-bpf-cpp MODULE ARGS` with stdout on a pty (raw mode: no \\r),
    read line by line like Guest's pipe. --duration has no equivalent
    there: teardown's kill() bounds it."""

    def __init__(self, module: str, *args: str, duration: float = 60, grace: float = 2.0) -> None:
        master, slave = pty.openpty()
        tty.setraw(slave)
        self.proc = subprocess.Popen([CPP, module, *args], cwd=ROOT, stdout=slave,
                                     stderr=subprocess.PIPE, text=True)
        os.close(slave)
        self.lines: list = []
        self._q: "queue.Queue" = queue.Queue()
        self._err: list = []
        self._t_out = threading.Thread(target=self._pump_pty, args=(master,), daemon=True)
        self._t_err = threading.Thread(target=self._pump_err, daemon=True)
        self._t_out.start()
        self._t_err.start()

    def _pump_pty(self, master: int) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the pty
                chunk = b""
            if not chunk:
                break
            buf += chunk
            *done, buf = buf.split(b"\n")
            for line in done:
                self._q.put(line.decode(errors="replace"))
        if buf:
            self._q.put(buf.decode(errors="replace"))
        os.close(master)
        self._q.put(None)


@pytest.fixture
def cpp_guests():
    if not os.access(CPP, os.X_OK):
        skip_or_fail(f"the upstream C++ runtime is not at {CPP} (set WASM_BPF_CPP)")
    started = []

    def start(module, *args, **kwargs):
        g = CppGuest(module, *args, **kwargs)
        started.append(g)
        return g

    yield start
    for g in started:
        g.kill()


def test_bootstrap_on_cpp(no_bpf_leaks, cpp_guests, tmp_path):
    g = cpp_guests(example("bootstrap"))
    g.wait_line(r"^TIME\s+EVENT\s+COMM\s+PID\s+PPID", 30)
    time.sleep(0.3)
    name = f"wbc{os.getpid()}"[:15]
    path = str(tmp_path / name)
    shutil.copy("/bin/true", path)
    child = subprocess.Popen([path])
    child.wait()
    exec_line = g.wait_line(rf"EXEC\s+{name}").string
    exit_line = g.wait_line(rf"EXIT\s+{name}").string
    assert exec_line.split()[3] == str(child.pid)
    assert exec_line.split()[5] == path
    assert exit_line.split()[3] == str(child.pid)
    assert exit_line.split()[5] == "[0]"
    g.interrupt()
    assert g.wait_exit() == 0, g.stderr


def test_runqlat_on_cpp(no_bpf_leaks, cpp_guests):
    _runqlat("runqlat", no_bpf_leaks, cpp_guests)  # its map walk ends on the runtime's -2: -ENOENT here


def test_opensnoop_on_cpp(no_bpf_leaks, cpp_guests, tmp_names):
    _opensnoop(no_bpf_leaks, cpp_guests, tmp_names)


def test_rust_bootstrap_on_cpp(no_bpf_leaks, cpp_guests, tmp_names):
    _ported_bootstrap("rust_bootstrap", no_bpf_leaks, cpp_guests, tmp_names)


def test_go_sdk_maps_on_cpp(no_bpf_leaks, cpp_guests):
    """The Go SDK's errors are WASI numbers there too (that runtime returns
    Linux ones: the SDK probes and translates). Polling cannot work there:
    upstream's C++ runtime has no callback-wrapper import, so a Go guest's
    first poll stops it."""
    g = cpp_guests(guest("gosdk"), "0", "1")
    g.wait_line(r"^attached$", 30)
    g.wait_exit()
    wamr_log = [line for line in g.lines if line.startswith("[")]  # WAMR's own lines, on stdout
    lines = [line for line in g.lines if not line.startswith("[")]
    assert lines[:11] == [
        "lookup 1 = 100", *lines[1:3],
        "lookup 1 err=-44 notfound=true",  # the runtime's -2, as ENOENT
        "missing map fd=-28 (map nope: Invalid argument)",  # that runtime says EINVAL (-22) here
        "typed lookup 2 = 200 err=<nil>",
        "update existing with NoExist err=-20",  # its -17, as EEXIST
        "keys [2 10 12] err=<nil>",
        "attach after close err=-8",
        "set_global no_such_knob err=-44",
        "attached",
    ], g.lines
    assert sorted(lines[1:3]) == ["key 1", "key 2"]
    assert any("failed to link import function (callback-wrapper, wasm_bpf_buffer_poll)" in line
               for line in wamr_log), g.lines
    assert lines[11:] == ["Call wasm function start failed. Exception: failed to call unlinked "
                          "import function (callback-wrapper, wasm_bpf_buffer_poll)"], g.lines


@pytest.mark.parametrize("program", ["tp", "raw"])
def test_upstream_style_guest_on_cpp(program, no_bpf_leaks, cpp_guests):
    """No uprobe there (that runtime attaches uprobes only from the section
    name): `-` keeps that program out with set_autoload, on that runtime's
    libbpf as well."""
    g = cpp_guests(guest("upstream"), str(os.getpid()), program, "-", "5")
    g.wait_line("^ready$", 30)
    for _ in range(5):
        os.getppid()
        time.sleep(0.05)
    code = g.wait_exit()
    assert_upstream_output(code, g.lines, g.stderr, calls=5, uprobe=False)
