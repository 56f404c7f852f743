"""Guests as their authors wrote them (upstream style: plain printf with no
flush, poll loops that ignore -EINTR, `return -1` from main), seen the way a
user sees them: through a pipe, on a terminal (a pty), through the API.

Guests: tests/guests/plainprint.c (printf per sample, never flushes, ignores
every poll error), isatty.c (what the guest's libc believes about fds 1/2),
exitcode.c (exit(N)); examples/bootstrap (a guest that stops on -EINTR)."""
import os
import pty
import re
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import ENGINE, ROOT, cli_env, example, guest, run_cli, skip_or_fail, wasm_bpf_cmd

pytestmark = [pytest.mark.kernel, pytest.mark.engine]

# What must never appear on any stream at any exit.
CRASH_SIGNS = re.compile(rb"panicked|Traceback|stack backtrace|RUST_BACKTRACE|Segmentation fault|core dumped")
LIVE_WITHIN = 0.2  # seconds from the event to its line (issue 15)


class Reader:
    """Accumulates what arrives on a file descriptor; waits for a pattern."""

    def __init__(self, fd: int):
        self.fd = fd
        self.data = b""

    def pump(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # a pty's master reads EIO once the child side is gone
            chunk = b""
        self.data += chunk
        return bool(chunk)

    def wait_for(self, pattern: bytes, timeout: float, start: int = 0):
        """The match of `pattern` in what arrived after offset `start`, and
        the monotonic time it was first seen; (None, None) on timeout."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while True:
            m = rx.search(self.data, start)
            if m:
                return m, time.monotonic()
            left = end - time.monotonic()
            if left <= 0 or not self.pump(left) and left <= 0:
                return None, None

    def drain(self, timeout: float = 15) -> bytes:
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.pump(end - time.monotonic()):
            pass
        return self.data


def _sample_line(pid: int) -> bytes:
    return rb"sample %d \d+\r?\n" % pid


def _trigger() -> float:
    """One getppid() by this process: one sample for a guest given our pid."""
    t = time.monotonic()
    os.getppid()
    return t


def _assert_live(reader: Reader, after: int) -> None:
    t_event = _trigger()
    m, seen = reader.wait_for(_sample_line(os.getpid()), 10, after)
    assert m, f"no sample line after the event; got {reader.data[after:]!r}"
    assert seen - t_event < LIVE_WITHIN, f"the line took {seen - t_event:.3f} s to arrive"


def _spawn_pty(args, env=None):
    """The CLI with stdin, stdout and stderr on a new terminal (status line on)."""
    pid, master = pty.fork()
    if pid == 0:  # child
        try:
            os.chdir(ROOT)
            os.execvpe(sys.executable, [sys.executable, *args[1:]], env or cli_env())
        finally:
            os._exit(127)
    return pid, master


def _wait_status(pid: int, timeout: float = 30) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"process {pid} did not exit within {timeout} s")


# -- live output --------------------------------------------------------------
def test_plain_printf_lines_reach_a_pipe_as_they_happen(no_bpf_leaks):
    proc = subprocess.Popen(wasm_bpf_cmd("run", "--grace-period", "0.5", guest("plainprint"), str(os.getpid())),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(), cwd=ROOT)
    try:
        out = Reader(proc.stdout.fileno())
        m, _ = out.wait_for(rb"ready\n", 30)
        assert m, f"no 'ready' line through the pipe: {out.data!r} {proc.stderr.read1() if proc.poll() else ''!r}"
        for _ in range(3):
            _assert_live(out, len(out.data))
        proc.send_signal(signal.SIGINT)  # the guest ignores -EINTR: interrupted after the grace period
        assert proc.wait(30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    err = proc.stderr.read()
    assert not CRASH_SIGNS.search(err), err


def test_plain_printf_lines_reach_a_terminal_as_they_happen(no_bpf_leaks):
    pid, master = _spawn_pty(wasm_bpf_cmd("run", "--grace-period", "0.5", guest("plainprint"), str(os.getpid())))
    term = Reader(master)
    try:
        m, _ = term.wait_for(rb"ready\r\n", 30)
        assert m, f"no 'ready' line on the terminal: {term.data!r}"
        for _ in range(3):
            _assert_live(term, len(term.data))
        term.drain(0.3)
        os.write(master, b"\x03")  # Ctrl-C typed on the terminal
        term.drain(5)
        assert _wait_status(pid) == 130
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(master)
    assert not CRASH_SIGNS.search(term.data), term.data


def test_plain_printf_lines_reach_the_api_callback_as_they_happen(no_bpf_leaks):
    from wasm_bpf_cli import Outcome, Runner, RunOptions

    rfd, wfd = os.pipe()  # the callback forwards to a pipe: one clock for all three tests
    try:
        with Runner(guest("plainprint"), RunOptions(args=[str(os.getpid())], engine=ENGINE, grace_period=0.5,
                                                    stdout=lambda data: os.write(wfd, data))) as runner:
            runner.start()
            out = Reader(rfd)
            m, _ = out.wait_for(rb"ready\n", 30)
            assert m, f"no 'ready' through the callback: {out.data!r}"
            for _ in range(3):
                _assert_live(out, len(out.data))
            runner.stop()
            result = runner.wait(30)
        assert result.outcome == Outcome.INTERRUPTED and result.exit_code == 130
    finally:
        os.close(rfd)
        os.close(wfd)


def test_every_completed_line_survives_an_interruption(no_bpf_leaks):
    """--duration ends a guest that ignores -EINTR after the grace period:
    every line it completed is in the output."""
    proc = subprocess.Popen(wasm_bpf_cmd("run", "--duration", "3", "--grace-period", "0.3",
                                         guest("plainprint"), str(os.getpid())),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(), cwd=ROOT)
    out = Reader(proc.stdout.fileno())
    assert out.wait_for(rb"ready\n", 30)[0], out.data
    for _ in range(20):
        os.getppid()
    assert proc.wait(30) == 124
    lines = re.findall(_sample_line(os.getpid()), out.drain())
    assert len(lines) == 20, out.data


def test_libc_buffering_shows_the_guest_what_its_streams_are():
    """--output-buffering: `line` (default) makes fds 1/2 a terminal to the
    guest's libc whatever they are; `libc` shows them as they are."""
    def seen(*args, **kwargs):
        result = run_cli("run", *args, guest("isatty"), **kwargs)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert seen() == "stdout tty=1 stderr tty=1\n"  # a pipe, line-buffered by the guest
    assert seen("--output-buffering", "libc") == "stdout tty=0 stderr tty=0\n"
    pid, master = _spawn_pty(wasm_bpf_cmd("run", "--output-buffering", "libc", guest("isatty")))
    term = Reader(master)
    assert term.wait_for(rb"stdout tty=1 stderr tty=1", 30)[0], term.data  # a real terminal stays one
    term.drain(2)
    assert _wait_status(pid) == 0
    os.close(master)


def test_libc_buffering_through_the_api_callback():
    from wasm_bpf_cli import Runner, RunOptions

    for mode, expected in (("line", b"stdout tty=1"), ("libc", b"stdout tty=0")):
        chunks = []
        result = Runner(guest("isatty"), RunOptions(engine=ENGINE, output_buffering=mode,
                                                    stdout=chunks.append)).run()
        assert result.exit_code == 0 and b"".join(chunks).startswith(expected), (mode, chunks)


def test_unknown_output_buffering_is_a_usage_error():
    result = run_cli("run", "--output-buffering", "full", guest("isatty"))
    assert result.returncode == 2 and "'full' is not one of 'line', 'libc'" in result.stderr


# -- exit status ----------------------------------------------------------------
@pytest.mark.parametrize("code,status", [(-1, 255), (126, 126), (255, 255), (256, 0), (1000, 232)])
def test_exit_status_is_the_low_8_bits_like_a_native_program(code, status):
    result = run_cli("run", guest("exitcode"), str(code))
    assert (result.returncode, result.stdout, result.stderr) == (status, "hello\n", "")


def test_api_reports_the_same_exit_status():
    from wasm_bpf_cli import Outcome, Runner, RunOptions

    result = Runner(guest("exitcode"), RunOptions(args=["-1"], engine=ENGINE, stdout=lambda _: None)).run()
    assert (result.exit_code, result.outcome, result.message) == (255, Outcome.EXITED, None)


# -- a closed pipe -----------------------------------------------------------
def test_run_piped_into_head_ends_when_head_does(no_bpf_leaks):
    """`wasm-bpf run bootstrap.wasm | head -1`: head exits after the header;
    the runner stops the guest at once, as SIGPIPE stops a native tool."""
    shell = f"{' '.join(wasm_bpf_cmd('run', example('bootstrap')))} | head -1; echo status=${{PIPESTATUS[0]}}"
    start = time.monotonic()
    result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, env=cli_env(), cwd=ROOT,
                            timeout=60)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("TIME ") and lines[1] == "status=0", result  # bootstrap stops on -EINTR
    assert time.monotonic() - start < 15, "the runner kept running after head exited"
    assert not CRASH_SIGNS.search(result.stderr.encode()), result.stderr


def test_a_guest_with_nothing_more_to_print_is_stopped_when_its_reader_goes(no_bpf_leaks):
    """plainprint prints nothing while no sample comes (its target pid is
    ours): the closed pipe alone must stop it; it ignores -EINTR, so it is
    interrupted after the grace period: status 141."""
    proc = subprocess.Popen(wasm_bpf_cmd("run", "--grace-period", "0.3", guest("plainprint"), str(os.getpid())),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(), cwd=ROOT)
    out = Reader(proc.stdout.fileno())
    assert out.wait_for(rb"ready\n", 30)[0], out.data
    proc.stdout.close()
    assert proc.wait(15) == 141
    assert not CRASH_SIGNS.search(proc.stderr.read())


# -- no panic, backtrace or traceback at any exit -------------------------------
def _one_pty_run(kind: str) -> tuple:
    if kind == "duration":  # a guest that ignores -EINTR, ended by --duration
        args = wasm_bpf_cmd("run", "--duration", "0.5", "--grace-period", "0.2", guest("plainprint"),
                            str(os.getpid()))
        expected = 124
    else:  # Ctrl-C on a guest that stops on -EINTR
        args = wasm_bpf_cmd("run", example("bootstrap"))
        expected = 0
    pid, master = _spawn_pty(args)
    term = Reader(master)
    try:
        if kind == "ctrl-c":
            if not term.wait_for(rb"TIME +EVENT", 30)[0]:
                return kind, None, term.data
            os.write(master, b"\x03")
        term.drain(20)
        return kind, _wait_status(pid) == expected, term.data
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        os.close(master)


def test_50_terminal_runs_end_cleanly(no_bpf_leaks):
    """stdout and stderr on a terminal, status line on: 25 runs ended by
    --duration, 25 by Ctrl-C; each exits as documented and prints no panic,
    backtrace or traceback."""
    kinds = ["duration", "ctrl-c"] * 25
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(_one_pty_run, kinds))
    bad = [(kind, ok, data[-600:]) for kind, ok, data in runs if not ok or CRASH_SIGNS.search(data)]
    assert not bad, f"{len(bad)} of 50 runs went wrong; first: {bad[0]}"


API_PROGRAM = textwrap.dedent("""
    import asyncio, os, sys, time
    from wasm_bpf_cli import Runner, RunOptions

    engine, plain, boot = sys.argv[1:4]
    lines = []
    with Runner(plain, RunOptions(args=[str(os.getpid())], engine=engine, grace_period=0.2,
                                  stdout=lines.append)) as r:
        r.start()
        deadline = time.monotonic() + 30
        while b"ready" not in b"".join(lines) and time.monotonic() < deadline:
            time.sleep(0.01)
        r.stop()  # it ignores -EINTR: interrupted after the grace period
        first = r.wait()

    async def second():
        return await Runner(boot, RunOptions(engine=engine, duration=0.3)).run_async()

    res = asyncio.run(second())
    print("results", first.exit_code, res.exit_code, b"".join(lines).decode().split())
""")


def _one_api_run(_):
    pid, master = pty.fork()
    if pid == 0:
        try:
            os.chdir(ROOT)
            os.execvpe(sys.executable, [sys.executable, "-c", API_PROGRAM, ENGINE, guest("plainprint"),
                                        example("bootstrap")], cli_env())
        finally:
            os._exit(127)
    term = Reader(master)
    try:
        term.drain(30)
        return _wait_status(pid), term.data
    finally:
        os.close(master)


def test_50_python_programs_using_the_api_exit_cleanly(no_bpf_leaks):
    """A program that runs two guests through the API (one with an output
    callback, one writing to the terminal) and exits: status 0, both results
    as documented, nothing else at interpreter exit."""
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(_one_api_run, range(50)))
    want = re.compile(rb"results 130 0 \['ready'\]\r?\n")
    bad = [(status, data[-800:]) for status, data in runs
           if status != 0 or not want.search(data) or CRASH_SIGNS.search(data)]
    assert not bad, f"{len(bad)} of 50 runs went wrong; first: {bad[0]}"


# -- small things ---------------------------------------------------------------
def test_an_unknown_option_before_the_module_is_a_usage_error():
    result = run_cli("run", "--bogus", guest("isatty"))
    assert result.returncode == 2
    assert "No such option '--bogus'" in result.stderr and "Did you mean" in result.stderr
    result = run_cli("run", "--duraton", "1", guest("isatty"))
    assert result.returncode == 2 and "'--duration'" in result.stderr


def test_options_after_the_module_still_go_to_the_guest():
    result = run_cli("run", guest("exitcode"), "--bogus", "-x")
    assert result.returncode == 0 and "argv[1]=--bogus\nargv[2]=-x\n" in result.stdout


def test_maps_names_a_ring_buffer_instead_of_an_errno(no_bpf_leaks):
    from wasm_bpf_cli import Runner, RunOptions
    from wasm_bpf_cli.errors import WasmBpfError

    with Runner(guest("plainprint"), RunOptions(args=[str(os.getpid())], engine=ENGINE, grace_period=0.3,
                                                stdout=lambda _: None)) as runner:
        runner.start()
        deadline = time.monotonic() + 30
        while not runner.maps() and time.monotonic() < deadline:
            time.sleep(0.05)
        rb = next(m for m in runner.maps() if m.name == "rb")
        assert rb.is_buffer
        with pytest.raises(WasmBpfError) as err:
            list(rb.keys())
        assert str(err.value) == ("map 'rb' is a ring buffer (ringbuf): it streams samples to the guest's "
                                  "callback and has no keys or values to read")
        runner.stop()


def test_maps_reads_a_per_cpu_map_as_one_value_per_cpu(no_bpf_leaks):
    """metricsfill puts percpu[1] = CPU i holds i + 1 (u64). The kernel writes
    an 8-byte-rounded slot for every possible CPU: the view sizes its buffer
    for all of them and hands back one value per CPU."""
    from wasm_bpf_cli import Runner, RunOptions
    from wasm_bpf_cli.bpf.maps import possible_cpus

    lines = []
    cpus = possible_cpus()
    with Runner(guest("metricsfill"), RunOptions(args=["1", "1", str(cpus)], engine=ENGINE, grace_period=0.5,
                                                 stdout=lines.append)) as runner:
        runner.start()
        deadline = time.monotonic() + 30
        while b"filled" not in b"".join(lines) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert b"filled" in b"".join(lines), lines
        view = next(m for m in runner.maps() if m.name == "percpu")
        assert view.per_cpu
        assert view.lookup((1).to_bytes(4, "little")) == [(i + 1).to_bytes(8, "little") for i in range(cpus)]
        assert view.lookup(1) == list(range(1, cpus + 1))
        assert dict(view.decoded_items())[1] == list(range(1, cpus + 1))
        runner.stop()
