"""`wasm-bpf run` against the real kernel, through the CLI as a user runs it:
events arrive, maps work, every stop path ends cleanly and leaves nothing
attached. Runs once per engine (`make test`)."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from conftest import ENGINE, cli_env, descendants, example, finish_process, guest, run_cli, wasm_bpf_cmd

pytestmark = [pytest.mark.kernel, pytest.mark.engine]


class Guest:
    """A running `wasm-bpf run ...` with line-wise stdout."""

    def __init__(self, *args: str, stdin=subprocess.DEVNULL):
        self.proc = subprocess.Popen(wasm_bpf_cmd("run", *args), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=stdin, env=cli_env(), text=True)
        self.lines = []

    def wait_for(self, pattern: str, timeout: float = 20) -> str:
        """Read stdout lines until one matches `pattern`; return it."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            if regex.search(line):
                return line.rstrip("\n")
        raise AssertionError(f"no line matching {pattern!r}; got {self.lines!r}; "
                             f"stderr: {self._stderr_if_done()}")

    def _stderr_if_done(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read()

    def finish(self, timeout: float = 20):
        out, err = finish_process(self.proc, timeout)
        self.lines.extend(out.splitlines())
        return self.proc.returncode, err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def running():
    started = []

    def start(*args, **kw):
        g = Guest(*args, **kw)
        started.append(g)
        return g

    yield start
    for g in started:
        g.kill()


def unique_program(tmp_path, stem="wbt"):
    """A copy of /bin/true with a unique 15-char name (comm is 16 bytes)."""
    name = f"{stem}{uuid.uuid4().hex}"[:15]
    path = tmp_path / name
    shutil.copy("/bin/true", path)
    return name, str(path)


def getppid_child(count: int = 5):
    """A child that waits for a line on stdin, then calls getppid `count` times."""
    return subprocess.Popen(
        [sys.executable, "-c",
         f"import os,sys; sys.stdin.readline(); [os.getppid() for _ in range({count})]"],
        stdin=subprocess.PIPE, text=True)


# -- events -----------------------------------------------------------------

BOOTSTRAPS = ["bootstrap", "go_bootstrap"]  # the C guest and its Go port: the same output


@pytest.mark.parametrize("name", BOOTSTRAPS)
def test_bootstrap_reports_exec_and_exit_of_a_new_process(name, running, tmp_path, no_bpf_leaks):
    g = running(example(name))
    g.wait_for(r"^TIME\s+EVENT\s+COMM\s+PID\s+PPID")
    time.sleep(0.3)  # header is printed right after attach; let the poll loop start
    name, path = unique_program(tmp_path)
    child = subprocess.Popen([path])
    child.wait()
    exec_line = g.wait_for(rf"EXEC\s+{name}")
    exit_line = g.wait_for(rf"EXIT\s+{name}")
    assert exec_line.split()[3] == str(child.pid)
    assert exec_line.split()[5] == path
    assert exit_line.split()[3] == str(child.pid)
    assert exit_line.split()[5] == "[0]"
    g.proc.send_signal(signal.SIGINT)
    code, err = g.finish()
    assert code == 0, err  # bootstrap returns by itself on -EINTR


@pytest.mark.parametrize("name", BOOTSTRAPS)
def test_bootstrap_min_duration_set_through_rodata(name, running, tmp_path, no_bpf_leaks):
    g = running(example(name), "-d", "100")
    g.wait_for(r"^TIME")
    time.sleep(0.3)
    quick, quick_path = unique_program(tmp_path, "wbq")
    slow = f"wbs{uuid.uuid4().hex}"[:15]
    slow_path = tmp_path / slow
    slow_path.write_text("#!/bin/sh\nsleep 0.3\n")
    slow_path.chmod(0o755)
    subprocess.run([quick_path], check=True)
    subprocess.run([str(slow_path)], check=True)
    line = g.wait_for(rf"EXIT\s+{slow}")
    ms = int(re.search(r"\((\d+)ms\)", line).group(1))
    assert ms >= 300
    g.proc.send_signal(signal.SIGINT)
    g.finish()
    seen = "\n".join(g.lines)
    assert "EXEC" not in seen  # min duration set: exec events are not reported
    assert quick not in seen  # it lived less than 100 ms


def test_map_round_trip_from_the_guest(no_bpf_leaks):
    res = run_cli("run", guest("maps"))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "lookup 1 = 100"
    assert sorted(lines[1:3]) == ["key 1", "key 2"]
    assert lines[3] == "lookup 1 err=-44"  # WASI ENOENT, not Linux's -2
    assert lines[4] == "missing map fd=-44"
    assert lines[5] == "done"
    assert res.stderr == ""


@pytest.mark.parametrize("kind,tag", [("ringbuf", "ringevt"), ("perf", "perfevt")])
def test_buffer_delivers_samples_of_the_target_pid(running, kind, tag, no_bpf_leaks):
    child = getppid_child(5)
    try:
        g = running(guest(kind), str(child.pid), "3")
        g.wait_for("^attached$")
        child.stdin.write("go\n")
        child.stdin.flush()
        g.wait_for(r"^got 3$")
        code, err = g.finish()
    finally:
        child.kill()
        child.wait()
    assert code == 0, err
    samples = [line for line in g.lines if line.startswith("sample ")]
    assert samples == [f"sample pid={child.pid} tag={tag} size=20"] * 3


@pytest.mark.parametrize("module,extra", [
    ("wrapper", []),
    ("wrapper_custom", ["--wrapper-module-name", "mywrap", "--callback-export-name", "my-cb"]),
])
def test_callback_wrapper_variant(running, module, extra, no_bpf_leaks):
    g = running(*extra, guest(module))
    g.wait_for("^attached$")
    for _ in range(200):
        os.getppid()
        if g.proc.poll() is not None:
            break
        time.sleep(0.01)
    code, err = g.finish()
    assert code == 0, err
    assert "wrapper got sample" in g.lines


def test_custom_names_are_required_for_a_custom_wrapper():
    res = run_cli("run", guest("wrapper_custom"))
    assert res.returncode == 1
    assert res.stderr.strip() == (
        "error: cannot run this module: import mywrap.wasm_bpf_buffer_poll: "
        "module 'mywrap' is not provided by this runner")


def test_bad_pointers_and_sizes_are_errors_not_crashes(no_bpf_leaks):
    res = run_cli("run", guest("badptr"))
    assert res.returncode == 0, res.stderr
    got = dict(line.split(": ", 1) for line in res.stdout.splitlines() if ": " in line)
    assert res.stdout.splitlines()[-1] == "survived"
    zero = [k for k in got if k.startswith("load_")] + ["map_op_update_ok", "map_op_delete_ok",
                                                         "close_maps", "close_ringbuf"]
    for label in zero:
        assert got[label] == "0", label
    efault = ["attach_bad_name", "attach_unterminated_name", "map_fd_bad_name",
              "map_fd_unterminated_name", "map_op_lookup_bad_key", "map_op_lookup_bad_value",
              "map_op_lookup_key_past_end", "map_op_lookup_value_past_end",
              "map_op_update_bad_key", "map_op_update_bad_value", "map_op_delete_bad_key",
              "map_op_next_bad_key", "map_op_next_bad_next", "poll_bad_data",
              "poll_data_past_end", "poll_huge_size"]
    for label in efault:
        assert got[label] == "-21", label  # WASI EFAULT
    for label in ("map_op_fd_9999", "map_op_fd_0", "map_op_fd_1", "map_op_fd_2", "map_op_fd_neg",
                  "poll_fd_9999", "poll_fd_1"):
        assert got[label] == "-8", label  # WASI EBADF: not a map of this guest
    for label in ("map_op_cmd_99", "map_op_cmd_0", "map_op_cmd_neg", "poll_fd_not_buffer",
                  "attach_handle_0", "close_twice", "poll_after_close"):
        assert got[label] == "-28", label  # WASI EINVAL
    for label, value in got.items():
        if label not in zero:
            assert int(value) < 0, label


# -- stopping ---------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_makes_poll_return_eintr_and_the_guest_exit_cleanly(running, sig, no_bpf_leaks):
    g = running(guest("ringbuf"), "0xffffffff", "3")
    g.wait_for("^attached$")
    g.proc.send_signal(sig)
    code, err = g.finish()
    assert code == 0, err
    assert g.lines[-1] == "interrupted"


def _blocked_signals(pid: int, tid: str) -> int:
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        return int(next(l for l in f if l.startswith("SigBlk:")).split()[1], 16)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_right_after_start_always_stops_the_run(running, sig, no_bpf_leaks):
    # The kernel may hand a process signal to any thread not blocking it; only
    # the main thread runs Python's handlers, and it waits without a timeout.
    # So every other thread (guest, engine, preload) must block it.
    for _ in range(10):
        g = running(guest("ringbuf"), "0xffffffff", "3")
        g.wait_for("^attached$")
        others = 0  # wasmer: the guest runs in a child of the supervising runner
        for pid in descendants(g.proc.pid):
            assert not _blocked_signals(pid, str(pid)) & (1 << (sig - 1))
            for tid in os.listdir(f"/proc/{pid}/task"):
                if tid != str(pid):
                    others += 1
                    assert _blocked_signals(pid, tid) & (1 << (sig - 1)), f"thread {tid} may take {sig!r}"
        assert others, "the guest runs on a thread of its own"
        g.proc.send_signal(sig)
        code, err = g.finish(timeout=10)
        assert code == 0, err
        assert g.lines[-1] == "interrupted"


def test_duration_stops_like_ctrl_c(running, no_bpf_leaks):
    started = time.monotonic()
    res = run_cli("run", "--duration", "1", guest("ringbuf"), "0xffffffff", "3")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["attached", "interrupted"]
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("module,sig,code", [
    ("ignoreint", signal.SIGINT, 130),
    ("ignoreint", signal.SIGTERM, 143),
    ("spin", signal.SIGINT, 130),
    ("spin", signal.SIGTERM, 143),
])
def test_guest_that_does_not_stop_is_interrupted_after_the_grace_period(
        running, module, sig, code, no_bpf_leaks):
    g = running("--grace-period", "0.5", guest(module))
    g.wait_for("^attached$")
    started = time.monotonic()
    g.proc.send_signal(sig)
    status, err = g.finish()
    assert status == code, err
    assert time.monotonic() - started < 8
    # ignoreint reports the -EINTR it ignores (once); spin never calls the host again
    assert g.lines == (["attached", "ignored -27"] if module == "ignoreint" else ["attached"])
    assert "Traceback" not in err


def test_duration_interrupts_a_spinning_guest_with_124(no_bpf_leaks):
    res = run_cli("run", "--duration", "0.5", "--grace-period", "0.5", guest("spin"))
    assert res.returncode == 124, res.stderr
    assert res.stdout == "attached\n"


def test_second_ctrl_c_stops_at_once(running, no_bpf_leaks):
    g = running("--grace-period", "30", guest("spin"))
    g.wait_for("^attached$")
    g.proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    started = time.monotonic()
    g.proc.send_signal(signal.SIGINT)
    status, _ = g.finish(timeout=15)
    assert status == 130
    assert time.monotonic() - started < 10  # not the 30 s grace period


def run_trapcb(running, mode: str):
    """trapcb with a child that calls getppid once released; (status, stderr, stdout lines)."""
    child = getppid_child(3)
    try:
        g = running(guest("trapcb"), str(child.pid), mode)
        g.wait_for("^attached$")
        child.stdin.write("go\n")
        child.stdin.flush()
        return g.finish() + (g.lines,)
    finally:
        child.kill()
        child.wait()


def test_trap_in_the_sample_callback_is_a_one_line_error(running, no_bpf_leaks):
    code, err, _ = run_trapcb(running, "trap")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: guest trapped:"), err
    assert "unreachable" in lines[0]
    assert "Traceback" not in err


def test_proc_exit_inside_the_callback_is_the_exit_status(running, no_bpf_leaks):
    code, err, lines = run_trapcb(running, "exit")
    assert code == 7, err
    assert lines == ["attached"]
    assert err == ""


def test_guest_exiting_without_closing_leaves_nothing_attached(no_bpf_leaks):
    res = run_cli("run", guest("noclose"))
    assert res.returncode == 3, res.stderr
    assert res.stdout == "attached\n"
    assert res.stderr == ""


# -- process model ----------------------------------------------------------

def test_exit_status_and_byte_exact_stdout_through_a_pipe():
    res = subprocess.run(wasm_bpf_cmd("run", guest("exitcode"), "42"), capture_output=True,
                         env=cli_env())
    assert res.returncode == 42
    assert res.stdout == b"hello\n"
    assert res.stderr == b""


def test_argv_and_environment_are_opt_in():
    path = guest("exitcode")
    res = subprocess.run(wasm_bpf_cmd("run", path, "a b", "-d"), capture_output=True, text=True,
                         env=cli_env(SECRET_HOST_VAR="leak"))
    assert res.returncode == 0
    assert res.stdout.splitlines() == ["hello", f"argv[0]={path}", "argv[1]=a b", "argv[2]=-d"]
    res = run_cli("run", "--env", "A=1", "--env", "B=x=y", path, "x")
    assert res.stdout.splitlines()[-2:] == ["env A=1", "env B=x=y"]


def test_stdin_is_empty_by_default():
    res = run_cli("run", guest("echo"), input="ignored")
    assert res.returncode == 0
    assert res.stdout == ""
    assert res.stderr == "eof 0\n"
