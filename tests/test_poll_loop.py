"""The ring-buffer poll loop, on both of its paths: the C loop
(abi/_nativepoll.c; entered from C on wasmtime, from Python on wasmer) and the
Python one. Records across the end of the ring; a trap or an exit inside a
callback the C loop called; and `RunOptions.max_delivery_delay` / `run
--max-delivery-delay`: a poll holds the records it finds up to that long
before delivering them, so one crossing into the guest delivers more; a poll
with a shorter timeout still returns in time and a stop still interrupts at
once."""
import re
import subprocess
import sys
import time

import pytest

from conftest import ENGINE, Caller, Lines, example, guest, run_cli, skip_or_fail
from wasm_bpf_cli import Outcome, RunOptions, Runner
from wasm_bpf_cli.abi import nativepoll

pytestmark = [pytest.mark.kernel, pytest.mark.engine]

PATHS = ["c", "python"] if nativepoll.library() is not None else ["python"]
if ENGINE == "wasmer" and "c" in PATHS:
    # the C loop calling the dispatch export (a module the rewriter leaves as it was)
    PATHS.append("c-driven")


@pytest.fixture(params=PATHS)
def poll_path(request, monkeypatch):
    if request.param == "python":
        monkeypatch.setattr(nativepoll, "library", lambda: None)
    if request.param == "c-driven":
        monkeypatch.setenv("WASM_BPF_POLL_IN_WASM", "0")
    return request.param


@pytest.fixture
def caller():
    c = Caller()
    yield c
    c.close()


def start(caller, delay: float, timeout_ms: int):
    out = Lines()
    runner = Runner(guest("pollclock"), RunOptions(engine=ENGINE, args=[str(caller.p.pid), str(timeout_ms)],
                                                    stdout=out, max_delivery_delay=delay))
    runner.start()
    out.wait_for("^attached$")
    return runner, out


def polls(out):
    return [(int(m.group(1)), int(m.group(2))) for m in
            (re.match(r"poll ret=(-?\d+) ms=(\d+)", line) for line in out.all) if m]


def test_records_arriving_within_the_delay_are_delivered_in_one_poll(caller, poll_path, no_bpf_leaks):
    runner, out = start(caller, delay=0.4, timeout_ms=5000)
    try:
        caller.calls(5, 0.02)  # 5 records over ~100 ms, all inside the 400 ms hold
        out.wait_for(r"^poll ret=[1-9]")
    finally:
        runner.stop()
    result = runner.wait(10)
    assert result.outcome is Outcome.EXITED and result.exit_code == 0
    assert result.buffers[0].delivered == 5
    delivering = [(ret, ms) for ret, ms in polls(out) if ret > 0]
    assert delivering[0][0] == 5, out.all
    assert delivering[0][1] >= 300, out.all  # held ~400 ms from the first record


def test_a_poll_with_a_shorter_timeout_still_returns_in_time(caller, poll_path, no_bpf_leaks):
    runner, out = start(caller, delay=1.0, timeout_ms=50)
    try:
        caller.calls(1, 0)
        out.wait_for(r"^poll ret=1 ")
    finally:
        runner.stop()
    result = runner.wait(10)
    assert result.exit_code == 0 and result.buffers[0].delivered == 1
    # every poll ended by its own 50 ms timeout, not by the 1 s hold
    assert max(ms for _, ms in polls(out)) < 500, out.all


def test_a_stop_interrupts_a_held_poll_at_once(caller, poll_path, no_bpf_leaks):
    runner, out = start(caller, delay=1.0, timeout_ms=5000)
    caller.calls(1, 0)
    time.sleep(0.1)  # the record is held (1 s) by now
    t0 = time.monotonic()
    runner.stop()
    result = runner.wait(10)
    took = time.monotonic() - t0
    assert result.outcome is Outcome.EXITED and result.exit_code == 0
    # well before the hold's end (0.9 s from here) on a loaded host too; the
    # lines below tell an interrupted hold from one that ran out
    assert took < 0.8, took
    assert [line for line in out.all if line.startswith(("poll", "interrupted"))][-1].startswith("interrupted")
    assert polls(out) == []  # the held record was not delivered before the stop


def test_without_a_delay_each_record_is_delivered_when_it_arrives(caller, poll_path, no_bpf_leaks):
    runner, out = start(caller, delay=0.0, timeout_ms=5000)
    try:
        caller.calls(3, 0.1)
        deadline = time.monotonic() + 10
        while sum(ret for ret, _ in polls(out)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        runner.stop()
    runner.wait(10)
    assert [ret for ret, _ in polls(out)] == [1, 1, 1], out.all


@pytest.mark.parametrize("value,message", [
    ("5", "is not a duration such as 500us, 1ms or 0.01s"),
    ("2s", "is longer than 1s"),
    ("-1ms", "is not a duration"),
])
def test_run_refuses_a_bad_delay_with_a_usage_error(value, message):
    res = run_cli("run", "--max-delivery-delay", value, guest("pollclock"))
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_runoptions_refuses_a_delay_out_of_range():
    from wasm_bpf_cli import UsageError

    with pytest.raises(UsageError, match="max_delivery_delay must be between 0 and 1 s"):
        Runner(guest("pollclock"), RunOptions(engine=ENGINE, max_delivery_delay=5.0)).run()


def test_records_across_the_end_of_the_ring_arrive_once_and_in_order(caller, poll_path, no_bpf_leaks):
    # ringbuf.bpf.o's ring holds 8,192 32-byte records: 5 bursts of 3,000 go
    # around it almost twice; each burst fits, so nothing is lost.
    runner, out = start(caller, delay=0.0, timeout_ms=100)
    try:
        for burst in range(1, 6):
            caller.calls(3000, 0)
            deadline = time.monotonic() + 20
            while runner.status().buffers[0].delivered < 3000 * burst and time.monotonic() < deadline:
                time.sleep(0.02)
    finally:
        runner.stop()
    result = runner.wait(10)
    assert result.exit_code == 0
    assert result.buffers[0].delivered == 15000 and result.buffers[0].lost == 0
    assert out.all[-1] == "received=15000 out_of_order=0"


def test_each_wake_up_is_delivered_once_and_in_order_through_the_guests_own_loop(caller, poll_path, no_bpf_leaks):
    # 300 records 2 ms apart: most wake the guest on their own. On wasmer with
    # the C loop, the guest runs the dispatch loop itself (rewrite.serve_poll_in_wasm):
    # a batch staged per wake-up; elsewhere none is.
    runner, out = start(caller, delay=0.0, timeout_ms=100)
    try:
        caller.calls(300, 0.002)
        deadline = time.monotonic() + 20
        while runner.status().buffers[0].delivered < 300 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        runner.stop()
    result = runner.wait(10)
    assert result.exit_code == 0
    assert result.buffers[0].delivered == 300 and result.buffers[0].lost == 0
    assert out.all[-1] == "received=300 out_of_order=0"
    native = runner._abi._native
    staged = native.staged_batches if native is not None else 0
    if ENGINE == "wasmer" and poll_path == "c":
        assert staged >= 100, staged
    else:
        assert staged == 0


def c_loop_polls(runner) -> int:
    """Polls the C loop served for this run (0 on the Python path)."""
    native = runner._abi._native
    return sum(native.state.rings[i].polls for i in range(native.state.nrings)) if native else 0


def run_past_first_poll(name: str, args, calls: int):
    """Run guest `name` (first argument: a Caller's pid), wait past its first
    poll (100 ms: the host has checked the callback, so the C loop, if any,
    serves the next polls), make `calls` records; (polls the C loop had
    served by then, the result, the guest's stdout lines)."""
    caller = Caller()
    out = Lines()
    runner = Runner(guest(name), RunOptions(engine=ENGINE, args=[str(caller.p.pid), *args], stdout=out))
    try:
        runner.start()
        out.wait_for("^attached$")
        time.sleep(0.3)
        served = c_loop_polls(runner)
        caller.calls(calls, 0)
        result = runner.wait(20)
    finally:
        runner.stop()
        caller.close()
    return served, result, out


@pytest.mark.parametrize("mode", ["trap", "exit"])
def test_a_callback_that_traps_or_exits_inside_the_loop_ends_the_guest_as_before(mode, poll_path, no_bpf_leaks):
    served, result, _ = run_past_first_poll("trapcb", [mode], calls=1)
    assert (served > 0) == (poll_path != "python")
    if mode == "trap":
        assert result.outcome is Outcome.TRAPPED
        assert "unreachable" in result.message and "\n" not in result.message
    else:
        assert result.outcome is Outcome.EXITED and result.exit_code == 7


@pytest.mark.parametrize("kind", ["ringbuf", "perf"])
def test_a_callback_that_closes_its_object_mid_batch_ends_the_poll_cleanly(kind, poll_path, no_bpf_leaks):
    served, result, out = run_past_first_poll("closecb", ["perf"] if kind == "perf" else [], calls=3)
    assert (served > 0) == (poll_path != "python" and kind == "ringbuf")  # perf buffers: the Python path
    assert result.outcome is Outcome.EXITED and result.exit_code == 0, result.message
    # the poll returns what it delivered (1 to 3: the closing sample and any
    # after it in the same batch), not an error
    assert out.all[-1] in ("poll ret=1", "poll ret=2", "poll ret=3"), out.all


class SampledRunner:
    """A runner script (RSS_RUNNER, PRINT_RSS_RUNNER) in a fresh process, so
    that its peak RSS is its own: it prints READY once its guest runs, then
    answers each line on stdin with a line of numbers, the first its peak RSS
    in KB, the second a count that grows (records delivered, lines printed);
    the end of stdin stops it, and it prints "exit CODE"."""

    def __init__(self, script: str, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-c", script, *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ready(self) -> str:
        return self.proc.stdout.readline().strip()

    def when_counted(self, n: int) -> tuple:
        """The numbers once the count reaches n (or after 30 s)."""
        deadline = time.monotonic() + 30
        while True:
            self.proc.stdin.write("s\n")
            self.proc.stdin.flush()
            got = tuple(int(x) for x in self.proc.stdout.readline().split())
            if got[1] >= n or time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    def finish(self) -> list:
        """Stop it: what it said last ("exit", CODE)."""
        self.proc.stdin.close()
        return self.proc.stdout.read().split()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


# A runner in a fresh process (its peak RSS is its own): bench.wasm in ring
# mode on the pid given; each line on stdin is answered with "peak_rss_kb
# records_delivered polls_served"; end of stdin stops it.
RSS_RUNNER = """
import resource, sys, threading
from wasm_bpf_cli import RunOptions, Runner
attached = threading.Event()
def out(data):
    if b"attached" in data:
        attached.set()
runner = Runner(sys.argv[1], RunOptions(engine=sys.argv[2], args=["-p", sys.argv[3], "-s", "1024", "ring"],
                                        stdout=out))
runner.start()
assert attached.wait(60)
print("attached", flush=True)
for _ in sys.stdin:
    native = runner._abi._native
    polls = sum(native.state.rings[i].polls for i in range(native.state.nrings)) if native else 0
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, runner.status().buffers[0].delivered, polls,
          flush=True)
runner.stop()
print("exit", runner.wait(10).exit_code, flush=True)
"""


@pytest.mark.wasmer_only
def test_wake_ups_on_wasmer_do_not_grow_the_peak_rss_by_more_than_a_few_bytes_each(no_bpf_leaks):
    if nativepoll.library() is None:
        skip_or_fail("the native poll helper is not built (no C compiler when installed)")
    # wasmer-python keeps each host call's Python objects until the guest's
    # _start returns: ~8 B for a call without arguments, ~48 B more per
    # argument. The guest's polls reach the host as calls without arguments
    # (rewrite.serve_poll_in_wasm): two per wake-up, ~17 B; the poll import's
    # 7 arguments cost ~170 B per wake-up (WASM_BPF_POLL_IN_WASM=0 fails here).
    caller = Caller()
    runner = SampledRunner(RSS_RUNNER, example("bench"), ENGINE, str(caller.p.pid))
    try:
        assert runner.ready() == "attached"
        caller.calls(3000, 0.0001)  # warm-up: the allocator, the staging pages, the engine's caches
        rss0, records0, polls0 = runner.when_counted(3000)
        caller.calls(60000, 0.0001)  # ~one wake-up each (~10 s)
        rss1, records1, polls1 = runner.when_counted(63000)
        assert runner.finish() == ["exit", "0"]
    finally:
        runner.close()
        caller.close()
    assert records1 - records0 == 60000
    wake_ups = polls1 - polls0
    assert wake_ups >= 50000, wake_ups  # one record (at most a few) per wake-up
    per_wake_up = (rss1 - rss0) * 1024 / wake_ups
    assert per_wake_up < 40, f"{per_wake_up:.0f} B per wake-up ({rss0} -> {rss1} KB over {wake_ups} wake-ups)"


# The same for plainprint (one printf line per sample, line-buffered: one
# fd_write per line); stdout counts the lines. "peak_rss_kb lines_printed".
PRINT_RSS_RUNNER = """
import resource, sys, threading
from wasm_bpf_cli import RunOptions, Runner
ready = threading.Event()
lines = [0]
def out(data):
    lines[0] += data.count(b"\\n")
    if b"ready" in data:
        ready.set()
runner = Runner(sys.argv[1], RunOptions(engine=sys.argv[2], args=[sys.argv[3]], stdout=out,
                                        max_delivery_delay=0.05))
runner.start()
assert ready.wait(60)
print("ready", flush=True)
for _ in sys.stdin:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, lines[0] - 1, flush=True)
runner.stop()
print("exit", runner.wait(10).exit_code, flush=True)
"""


@pytest.mark.wasmer_only
def test_printed_lines_on_wasmer_do_not_grow_the_peak_rss_by_more_than_a_few_bytes_each(no_bpf_leaks):
    if nativepoll.library() is None:
        skip_or_fail("the native poll helper is not built (no C compiler when installed)")
    # Each line plainprint prints is one fd_write host call. wasmer-python
    # keeps a host call's objects until _start returns: ~8.5 B, plus ~48 B
    # per argument; the guest's fd_write calls reach the host without
    # arguments (rewrite.serve_fd_write_in_wasm; WASM_BPF_FD_WRITE_IN_WASM=0:
    # ~160 B per line, fails here). Polls hold their records up to 50 ms
    # (max_delivery_delay): a wake-up's own cost is spread over many lines.
    caller = Caller()
    runner = SampledRunner(PRINT_RSS_RUNNER, guest("plainprint"), ENGINE, str(caller.p.pid))
    try:
        assert runner.ready() == "ready"
        caller.calls(5000, 0.0001)  # warm-up: the allocator, the staging pages, the engine's caches
        rss0, lines0 = runner.when_counted(5000)
        caller.calls(40000, 0.0001)
        rss1, lines1 = runner.when_counted(45000)
        assert runner.finish() == ["exit", "130"]  # stopped: interrupted
    finally:
        runner.close()
        caller.close()
    assert lines1 - lines0 == 40000
    per_line = (rss1 - rss0) * 1024 / (lines1 - lines0)
    assert per_line < 40, f"{per_line:.0f} B per printed line ({rss0} -> {rss1} KB over {lines1 - lines0} lines)"
