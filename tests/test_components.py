"""Processor components (wasm-bpf:processor): a guest hands its data to
components written in C and Python, on every engine. The processors are
built by `make -C tests/guests` (tests/guests/processors/); the Python one
takes a minute to compile the first time (cached afterwards)."""
import os
import subprocess
import threading

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import ENGINE, cli_env, finish_process, guest, run_cli, wasm_bpf_cmd
from wasm_bpf_cli import LineWriter, Runner, RunOptions
from wasm_bpf_cli.errors import ModuleError

pytestmark = [pytest.mark.engine]

ENOENT, ENOMSG = 44, 49  # WASI numbers


def proc(name: str) -> str:
    return guest(f"proc_{name}")


def call(name: str, data: bytes, processors: dict, cap: int = 1 << 20, **options):
    """`procguest call NAME CAP` with `data` on stdin: (result, answer bytes, stderr text)."""
    out, err = [], []
    result = Runner(guest("procguest"), RunOptions(
        args=["call", name, str(cap)], stdin=data, processors=processors, engine=ENGINE,
        stdout=out.append, stderr=err.append, **options)).run()
    return result, b"".join(out), b"".join(err).decode()


# --- wasm_bpf_call ---------------------------------------------------------------

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=64 * 1024))
@example(b"")
@example(bytes(range(256)) * 256)  # 64 KiB exactly
def test_bytes_round_trip_exactly(data):
    result, answer, err = call("keep", data, {"keep": proc("keep")})
    assert (result.exit_code, err) == (0, f"ret {len(data)}\n")
    assert answer == data


def test_a_longer_answer_is_cut_to_the_out_buffer_and_its_length_returned():
    result, answer, err = call("keep", b"0123456789abcdefghij", {"keep": proc("keep")}, cap=10)
    assert (result.exit_code, answer, err) == (0, b"0123456789", "ret 20\n")


def test_none_is_enomsg_and_an_unknown_name_enoent():
    _, answer, err = call("ev", b"not a sample", {"ev": proc("everyn")})
    assert (answer, err) == (b"", f"ret -{ENOMSG}\n")
    _, _, err = call("other", b"x", {"ev": proc("everyn")})
    assert err == f"ret -{ENOENT}\n"
    _, _, err = call("ev", b"x", {})  # no processors at all
    assert err == f"ret -{ENOENT}\n"


def test_a_python_processor_answers_through_wasm_bpf_call():
    sample = (7).to_bytes(4, "little") + (4).to_bytes(4, "little") + b"ringevt\0" + (1).to_bytes(4, "little")
    result, answer, err = call("py", sample, {"py": proc("pyfilter")})
    assert (result.exit_code, err) == (0, "ret 20\n")
    assert answer == sample[:8] + b"kept-py\0" + sample[16:]
    _, answer, err = call("py", sample[:19], {"py": proc("pyfilter")})
    assert (answer, err) == (b"", f"ret -{ENOMSG}\n")  # 19 bytes: not a sample


def test_a_trapping_processor_ends_the_run_with_one_line_naming_it():
    result, answer, err = call("bad", b"x", {"bad": proc("trap")})
    assert (result.exit_code, result.outcome.value, answer, err) == (1, "trapped", b"", "")
    assert result.message == ("processor bad trapped: wasm `unreachable` instruction executed "
                              "(in wasm_bpf__export_process)")


def test_a_looping_processor_is_interrupted_like_a_guest():
    result, _, _ = call("spin", b"x", {"spin": proc("loop")}, duration=0.5, grace_period=0.5)
    assert (result.exit_code, result.outcome.value, result.stop_reason) == (124, "timed_out", "duration")
    assert result.wall_time < 10


def test_cli_looping_processor_is_interrupted_like_a_guest():
    done = run_cli("run", "--duration", "0.5", "--grace-period", "0.5", "--with", f"spin={proc('loop')}",
                   guest("procguest"), "call", "spin", input="x")
    assert (done.returncode, done.stdout, done.stderr) == (124, "", "")


# --- refused up front -------------------------------------------------------------

@pytest.mark.parametrize("name, why", [
    ("wrong", "export `process` is `func(event: string) -> u32`, not "
              "`func(event: list<u8>) -> option<list<u8>>`"),
    ("missing", "no export `process: func(event: list<u8>) -> option<list<u8>>`"),
])
def test_cli_refuses_a_processor_of_another_world_before_anything_runs(name, why):
    path = proc(name)
    done = run_cli("run", "--with", f"p={path}", guest("procfilter"), "0", "1")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"error: processor p: {path} does not fit the wasm-bpf:processor world: {why}\n"


def test_cli_refuses_a_core_module_a_missing_file_and_a_bad_init():
    core = guest("echo")
    done = run_cli("run", "--with", f"p={core}", guest("procguest"), "call", "p")
    assert (done.returncode, done.stdout, done.stderr) == (
        1, "", f"error: processor p: {core} is a core wasm module, not a component of the "
               "wasm-bpf:processor world (see `wasm-bpf sdk --wit`)\n")
    done = run_cli("run", "--with", "p=/nonexistent.wasm", guest("procguest"), "call", "p")
    assert (done.returncode, done.stderr) == (2, "error: --with p=/nonexistent.wasm: no such file\n")
    done = run_cli("run", "--with", f"ev={proc('everyn')}", "--with-arg", "ev=0", guest("procguest"), "call", "ev")
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "error: processor ev: init refused: N must be positive\n")
    done = run_cli("run", "--filter", "rb=nobody", guest("procguest"), "call", "p")
    assert (done.returncode, done.stderr) == (2, "error: filter on 'rb': no processor named 'nobody' (--with nobody=FILE)\n")


def test_api_refuses_a_processor_of_another_world():
    with pytest.raises(ModuleError, match="does not fit the wasm-bpf:processor world"):
        Runner(guest("procguest"), RunOptions(args=["call", "p"], processors={"p": proc("wrong")},
                                              engine=ENGINE)).run()


# --- on a buffer (real kernel) ---------------------------------------------------

def _filtered_run(processor: str, args, samples: int, wanted: int, no_bpf_leaks):
    """procfilter PID WANTED with --filter rb=p, this process calling
    getppid() `samples` times once the guest is attached."""
    lines = []
    attached = threading.Event()

    def line(text):
        lines.append(text)
        if text == "attached":
            attached.set()

    options = RunOptions(args=[str(os.getpid()), str(wanted)], engine=ENGINE, duration=60,
                         processors={"p": proc(processor)}, processor_args={"p": args},
                         filters={"rb": "p"}, stdout=LineWriter(line))
    with Runner(guest("procfilter"), options) as runner:
        runner.start()
        assert attached.wait(120), lines
        for _ in range(samples):
            os.getppid()
        result = runner.wait(120)
    return result, lines


@pytest.mark.kernel
@pytest.mark.parametrize("processor, args, every, tag", [
    ("everyn", [], 2, "kept-c"),
    ("pyfilter", ["3"], 3, "kept-py"),
])
def test_filter_verdicts_reach_the_guest_and_drops_are_counted(processor, args, every, tag, no_bpf_leaks):
    wanted = 4
    result, lines = _filtered_run(processor, args, every * wanted, wanted, no_bpf_leaks)
    assert (result.exit_code, result.outcome.value) == (0, "exited")
    assert lines == (["attached"] + [f"sample seq={every * i} tag={tag} size=20" for i in range(1, wanted + 1)]
                     + [f"got {wanted}"])
    rb = {b.name: b for b in result.buffers}["rb"]
    assert (rb.delivered, rb.dropped, result.dropped) == (wanted, (every - 1) * wanted, (every - 1) * wanted)


@pytest.mark.kernel
def test_cli_trapping_filter_stops_the_run_naming_it_and_nothing_stays_attached(no_bpf_leaks):
    proc_ = subprocess.Popen(
        wasm_bpf_cmd("run", "--with", f"bad={proc('trap')}", "--filter", "rb=bad",
                     guest("procfilter"), str(os.getpid()), "1"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    assert proc_.stdout.readline() == "attached\n"
    for _ in range(3):
        os.getppid()
    out, err = finish_process(proc_, 120)
    assert (proc_.returncode, out) == (1, "")
    assert err == ("error: processor bad trapped: wasm `unreachable` instruction executed "
                   "(in wasm_bpf__export_process)\n")


@pytest.mark.kernel
def test_cli_looping_filter_is_interrupted_and_nothing_stays_attached(no_bpf_leaks):
    proc_ = subprocess.Popen(
        wasm_bpf_cmd("run", "--duration", "3", "--grace-period", "0.5", "--with", f"spin={proc('loop')}",
                     "--filter", "rb=spin", guest("procfilter"), str(os.getpid()), "1"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    assert proc_.stdout.readline() == "attached\n"
    os.getppid()
    out, err = finish_process(proc_, 120)
    assert (proc_.returncode, out, err) == (124, "", "")


# --- inspect and the SDK ---------------------------------------------------------

def test_cli_inspect_shows_a_processors_world_and_that_it_fits():
    path = proc("keep")
    done = run_cli("inspect", path)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        f"{path}: wasm component, {os.path.getsize(path)} bytes\n"
        "world (as the component declares it) {\n"
        "  export init: func(args: list<string>) -> result<_, string>;\n"
        "  export process: func(event: list<u8>) -> option<list<u8>>;\n"
        "}\n"
        "A processor: fits wasm-bpf:processor@0.1.0/processor (`wasm-bpf run --with NAME=FILE`)\n")


def test_cli_inspect_says_why_a_component_is_not_a_processor():
    path = proc("wrong")
    done = run_cli("inspect", path)
    assert (done.returncode, done.stderr) == (3, "")
    assert done.stdout.splitlines()[-2:] == [
        "Not a processor:",
        "  - not a wasm-bpf:processor@0.1.0 processor: export `process` is `func(event: string) -> u32`, "
        "not `func(event: list<u8>) -> option<list<u8>>`"]


def test_cli_inspect_lists_a_python_processors_wasi_imports():
    import json

    done = run_cli("inspect", "--json", proc("pyfilter"), timeout=300)
    report = json.loads(done.stdout)
    assert (done.returncode, report["kind"], report["world"]["fits"]) == (
        0, "component", "wasm-bpf:processor@0.1.0/processor")
    assert "wasi:cli/stdout@0.2.9" in report["world"]["imports"]
    assert all(name.startswith("wasi:") for name in report["world"]["imports"])


def test_sdk_wit_is_the_versioned_package():
    done = run_cli("sdk", "--wit")
    with open(os.path.join(done.stdout.strip(), "processor.wit")) as f:
        wit = f.read()
    assert "package wasm-bpf:processor@0.1.0;" in wit
    assert "export process: func(event: list<u8>) -> option<list<u8>>;" in wit


# --- the example -----------------------------------------------------------------

@pytest.mark.kernel
def test_compose_example_filters_in_python_and_aggregates_in_c(no_bpf_leaks):
    from conftest import EXAMPLES

    where = os.path.join(EXAMPLES, "compose")
    parts = [os.path.join(where, f) for f in ("compose.wasm", "longlived.wasm", "agg.wasm")]
    for path in parts:
        guest(path)  # skipped (failed under CI) when not built
    assert run_cli("inspect", parts[1], timeout=600).returncode == 0  # compiles the Python one ahead
    proc_ = subprocess.Popen(
        wasm_bpf_cmd("run", "--duration", "4", "--with", f"longlived={parts[1]}", "--with-arg", "longlived=250",
                     "--filter", "rb=longlived", "--with", f"agg={parts[2]}", parts[0]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    assert proc_.stdout.readline().split() == ["TIME", "EVENT", "COMM", "PID", "PPID", "FILENAME/EXIT", "CODE"]
    short = subprocess.Popen(["sleep", "0.01"])
    long_ = subprocess.Popen(["sleep", "0.4"])
    short.wait(), long_.wait()
    out, err = finish_process(proc_, 60)
    assert (proc_.returncode, err) == (0, "")
    lines = out.splitlines()
    events = lines[:lines.index("COMM              EXECS  EXITS  LONGEST_MS")]
    assert events and all(" EXIT " in line for line in events)  # exec events were dropped
    mine = {int(line[32:40]): line for line in events}  # fixed columns: a comm may hold spaces
    assert long_.pid in mine and short.pid not in mine  # lived 400 ms vs 10 ms; the filter keeps >= 250
    summary = {line.split()[0]: line.split()[1:] for line in lines[len(events) + 1:]}
    assert summary["sleep"][:2] == ["0", str(sum(1 for line in events if line[15:31].strip() == "sleep"))]


@pytest.mark.kernel
def test_cli_status_line_and_summary_count_the_samples_a_filter_dropped(no_bpf_leaks):
    import re

    from test_run_cli import _run_with_stderr_on_a_terminal

    stop = threading.Event()

    def samples():  # this process's getppid() calls are the guest's samples
        while not stop.wait(0.02):
            os.getppid()

    caller = threading.Thread(target=samples, daemon=True)
    caller.start()
    try:
        code, stdout, tty = _run_with_stderr_on_a_terminal(
            "run", "--duration", "3", "--with", f"ev={proc('everyn')}", "--filter", "rb=ev",
            guest("procfilter"), str(os.getpid()), "100000", timeout=120)
    finally:
        stop.set()
    tty = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", tty)
    assert code == 0, tty
    kept = [int(n) for n in re.findall(r"sample seq=(\d+) tag=kept-c", stdout.decode())]
    assert kept and all(seq % 2 == 0 for seq in kept)
    assert re.search(r"lost 0  dropped [1-9]\d*", tty), tty  # the status line, while it ran
    summary = re.search(r"rb \(ringbuf\): (\d+) events, (\d+) dropped by its filter", tty)
    assert summary, tty
    delivered, dropped = map(int, summary.groups())
    assert delivered == len(kept) and abs(dropped - delivered) <= 1  # every other sample


@pytest.mark.kernel
def test_filter_on_a_perf_buffer(no_bpf_leaks):
    lines = []
    attached = threading.Event()

    def line(text):
        lines.append(text)
        attached.set() if text == "attached" else None

    options = RunOptions(args=[str(os.getpid()), "3"], engine=ENGINE, duration=60,
                         processors={"ev": proc("everyn")}, filters={"events": "ev"}, stdout=LineWriter(line))
    with Runner(guest("perf"), options) as runner:
        runner.start()
        assert attached.wait(60), lines
        cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cpus)})  # this thread: every sample in one CPU's buffer, in order
        try:
            for _ in range(6):
                os.getppid()
        finally:
            os.sched_setaffinity(0, cpus)
        result = runner.wait(60)
    assert (result.exit_code, lines) == (0, ["attached"] + [f"sample pid={os.getpid()} tag=kept-c size=20"] * 3
                                         + ["got 3"])
    assert [(b.name, b.kind, b.delivered, b.dropped) for b in result.buffers] == [("events", "perf", 3, 3)]


# --- wasm_bpf_call against hostile arguments --------------------------------------

class _Memory:
    """A guest memory of 64 KiB for abi/calls.py (engines/base.GuestMemory's checks)."""

    def __init__(self):
        import ctypes

        from wasm_bpf_cli.engines.base import GuestMemory

        self.buf = ctypes.create_string_buffer(65536)
        base = ctypes.addressof(self.buf)
        self.view = type("M", (GuestMemory,), {"size": lambda s: 65536, "base_address": lambda s: base})()


class _Echo:
    def call(self, name, event):
        if name != "echo":
            raise KeyError(name)
        return event


_INT = st.one_of(st.integers(0, 70000), st.integers(-2**31, 2**31 - 1))  # near and inside memory, or anything


@settings(max_examples=500, deadline=None)
@given(_INT, _INT, _INT, _INT, st.booleans())
def test_wasm_bpf_call_answers_hostile_pointers_with_an_errno(data, length, out, out_len, good_name):
    from wasm_bpf_cli.abi.calls import wasm_bpf_call

    memory = _Memory()
    memory.buf[:] = bytes(range(256)) * 256
    memory.buf[65530:65535] = b"echo\0"
    before = bytes(memory.buf)
    ret = wasm_bpf_call(_Echo(), memory.view, 65530 if good_name else 65534, data, length, out, out_len)
    assert ret in (-21, -28, -44) or ret == length  # EFAULT, EINVAL, ENOENT, or the event's length
    if ret >= 0:
        n = min(ret, out_len)
        assert memory.buf[out:out + n] == before[data:data + n]  # the answer, cut to out_len
        assert memory.buf[:out] + memory.buf[out + n:] == before[:out] + before[out + n:]  # nothing else written
    else:
        assert bytes(memory.buf) == before


def test_an_init_that_never_returns_is_interrupted_with_one_line():
    options = RunOptions(args=["call", "p"], processors={"p": proc("initloop")}, engine=ENGINE,
                         duration=0.5, grace_period=0.5)
    runner = Runner(guest("procguest"), options)
    with pytest.raises(ModuleError, match=r"^processor p: interrupted while starting$"):
        runner.run()


def test_the_memory_cap_holds_for_processors_too():
    path = proc("pyfilter")
    done = run_cli("run", "--max-memory", "1M", "--with", f"py={path}", guest("procguest"), "call", "py",
                   input="", timeout=300)
    assert (done.returncode, done.stdout) == (1, "")
    import re

    assert re.fullmatch(f"error: processor py: {re.escape(path)}: cannot start: memory minimum size of "
                        r"\d+ pages exceeds memory limits\n", done.stderr), done.stderr


def test_a_python_processors_traceback_reaches_stderr_before_the_trap_line():
    path = proc("pyraise")
    assert run_cli("inspect", path, timeout=600).returncode == 0  # compiled ahead (a minute the first time)
    done = run_cli("run", "--with", f"py={path}", guest("procguest"), "call", "py", timeout=300)
    lines = done.stderr.splitlines()
    assert (done.returncode, done.stdout) == (1, "")
    assert lines[0] == "processor py: Traceback (most recent call last):"
    assert "processor py: KeyError: b''" in lines
    assert all(line.startswith("processor py: ") for line in lines[:-1])
    assert lines[-1] == "error: processor py trapped: wasm `unreachable` instruction executed (in abort)"


def test_api_processor_stderr_goes_to_the_stderr_sink():
    result, _, err = call("py", b"x", {"py": proc("pyraise")})
    assert result.outcome.value == "trapped"
    assert "processor py: KeyError: b'x'\n" in err


def test_runs_with_processors_leave_no_descriptor_or_thread_behind():
    def run():
        result, answer, _ = call("keep", b"abc", {"keep": proc("keep"), "t": proc("trap")})
        assert answer == b"abc"

    run()
    fds, threads = len(os.listdir("/proc/self/fd")), threading.active_count()
    for _ in range(10):
        run()
    assert (len(os.listdir("/proc/self/fd")), threading.active_count()) == (fds, threads)
