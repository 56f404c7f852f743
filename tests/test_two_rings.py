"""One guest polling two ring buffers in turn, each with its own callback
(tests/guests/tworing.c: getppid() -> rb_a, getpgid() -> rb_b), on every
poll path: the C loop (wasmtime: entered from C; wasmer: the guest's own
wasm runs the dispatch loop between the stage and commit calls of
_nativepoll.c wb_stage, or with WASM_BPF_POLL_IN_WASM=0 the C loop entered
from Python) and the Python one. Each record reaches its own ring's
callback once, in order; records of the second ring alone are what a
staged poll recorded under the wrong ring would lose (fixed in 018ab41).
Last, the same guest on the upstream C++ runtime, which keeps one buffer
per object (test_reference_runtime.py has the runtime)."""
import random
import re
import time

import pytest

from conftest import ENGINE, Caller, Lines, guest
from test_poll_loop import poll_path  # noqa: F401 (fixture: c, python and on wasmer c-driven)
from test_reference_runtime import cpp_guests  # noqa: F401 (fixture)
from wasm_bpf_cli import Outcome, RunOptions, Runner

pytestmark = pytest.mark.kernel

RECORD = re.compile(r"^cb=(\w+) tag=(\S+) seq=(\d+)$")


@pytest.fixture
def caller():
    c = Caller()
    yield c
    c.close()


def records(lines):
    """(callback, tag, seq) of each record line; any other cb= line fails."""
    got = []
    for line in lines:
        if line.startswith("cb="):
            m = RECORD.match(line)
            assert m, line
            got.append((m.group(1), m.group(2), int(m.group(3))))
    return got


def run_two(caller, chunks, path):
    """Run tworing on `caller`'s pid, wait until both rings' polls are served
    on `path` (on a C path: by C, the guest's callbacks checked), make the
    records of `chunks` ((pattern, gap) pairs), wait until all are delivered
    and stop. (result, stdout lines, what C delivered per buffer name or
    None on the Python path, batches staged for the guest's own loop)."""
    want = {"rb_a": sum(p.count("a") for p, _ in chunks), "rb_b": sum(p.count("b") for p, _ in chunks)}
    out = Lines()
    runner = Runner(guest("tworing"), RunOptions(engine=ENGINE, args=[str(caller.p.pid), "50"], stdout=out))
    c_delivered = None
    try:
        runner.start()
        out.wait_for("^attached$")
        native = runner._abi._native
        deadline = time.monotonic() + 10
        if path == "python":
            assert native is None
            time.sleep(0.3)
        else:  # each ring's first poll (Python) checked its callback: C serves the next ones
            while not (native.state.nrings == 2 and all(native.state.rings[i].polls for i in range(2))):
                assert time.monotonic() < deadline, "the C loop serves no poll of one of the rings"
                time.sleep(0.02)
            assert [p.stats.name for p in native._pollers] == ["rb_a", "rb_b"]  # rb_b: ring index 1
        for pattern, gap in chunks:
            caller.calls(pattern, gap)
        deadline = time.monotonic() + 20
        while ({b.name: b.delivered for b in runner.status().buffers} != want
               and time.monotonic() < deadline):
            time.sleep(0.02)
        time.sleep(0.2)  # a record delivered twice would show by now
        if native is not None:
            c_delivered = {p.stats.name: native.state.rings[i].delivered for i, p in enumerate(native._pollers)}
    finally:
        runner.stop()
    result = runner.wait(10)
    staged = native.staged_batches if native is not None else 0
    if path == "c":
        # the entry the engine has: wasmer stages for the guest's loop, wasmtime calls in from C
        assert (native.staged, native.driven) == ((True, False) if ENGINE == "wasmer" else (False, False))
    elif path == "c-driven":
        assert (native.staged, native.driven) == (False, True)
    return result, out.all, c_delivered, staged


def check(result, lines, c_delivered, staged, path, pattern):
    """Each record of `pattern` (all chunks, in order) reached its own ring's
    callback once and in order; the counts agree everywhere; on a C path C
    delivered them all (on wasmer's staged path through batches staged for
    the guest's own loop)."""
    n = {"a": pattern.count("a"), "b": pattern.count("b")}
    assert result.outcome is Outcome.EXITED and result.exit_code == 0, (result.message, lines)
    got = records(lines)
    for cb, tag, _ in got:
        assert tag == f"ring-{cb}", (cb, tag)  # callback a got only rb_a's records, b only rb_b's
    for ring in "ab":
        assert [seq for cb, _, seq in got if cb == ring] == list(range(1, n[ring] + 1)), (ring, lines)
    assert lines[-3:] == ["interrupted", f"total a={n['a']} b={n['b']}", f"polled a={n['a']} b={n['b']}"], lines
    assert {b.name: (b.delivered, b.lost) for b in result.buffers} == {"rb_a": (n["a"], 0), "rb_b": (n["b"], 0)}
    if path == "python":
        assert c_delivered is None and staged == 0
        return
    assert c_delivered == {"rb_a": n["a"], "rb_b": n["b"]}
    if ENGINE == "wasmer" and path == "c":
        assert staged >= (n["a"] > 0) + (n["b"] > 0), staged  # at least one batch per ring
    else:
        assert staged == 0


@pytest.mark.engine
@pytest.mark.parametrize("ring", ["a", "b"])
def test_records_of_one_ring_reach_only_its_callback(ring, caller, poll_path, no_bpf_leaks):
    # one ring alone: rb_b alone is the case a staged poll committed on the
    # wrong ring (index 0 for rb_b's 1) broke; spaced records (about one
    # wake-up each), then a burst (several records per batch)
    chunks = [(ring * 30, 0.005), (ring * 500, 0)]
    result, lines, c_delivered, staged = run_two(caller, chunks, poll_path)
    check(result, lines, c_delivered, staged, poll_path, "".join(p for p, _ in chunks))


@pytest.mark.engine
def test_interleaved_records_reach_their_own_callbacks_in_order(caller, poll_path, no_bpf_leaks):
    rng = random.Random(7)
    mixed = "".join(rng.choice("ab") for _ in range(1500))
    chunks = [("ab" * 40, 0.003), ("aab" * 20 + "abb" * 20, 0.001), (mixed, 0)]
    result, lines, c_delivered, staged = run_two(caller, chunks, poll_path)
    check(result, lines, c_delivered, staged, poll_path, "".join(p for p, _ in chunks))


def test_upstream_cpp_runtime_polls_only_the_first_buffer_of_an_object(caller, cpp_guests, no_bpf_leaks):
    """Upstream's C++ runtime keeps one buffer per object: the first poll
    creates it from its fd (and returns 0 without polling), every later poll
    of that object polls it whatever its fd, with that poll's callback. So
    there rb_b is never read and rb_a's records reach both callbacks (ABI.md:
    the buffer polled is the fd's; this runner does that, tests above).
    A guest that needs two buffers there loads them in two objects."""
    g = cpp_guests(guest("tworing"), str(caller.p.pid), "50")
    g.wait_line("^attached$", 30)
    time.sleep(0.3)
    rng = random.Random(3)
    for _ in range(20):  # irregular gaps: polls of both fds (50 ms each, in turn) find some of rb_a's
        caller.calls("ab", rng.uniform(0.005, 0.08))
    g.wait_line(r"^cb=\w+ tag=ring-a seq=20$", 20)
    time.sleep(0.3)  # nothing of rb_b comes meanwhile
    g.interrupt()
    assert g.wait_exit() == 0, g.stderr  # SIGINT: exit(0) at once, no totals
    got = records(g.lines)
    assert [(tag, seq) for _, tag, seq in got] == [("ring-a", i) for i in range(1, 21)], g.lines
    assert {cb for cb, _, _ in got} == {"a", "b"}, g.lines  # the poll's callback, not the ring's
