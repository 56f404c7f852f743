"""Fuzz the inputs: corrupt and truncated .wasm modules and BPF ELF objects
through `run` (the Runner API, and a handful through the CLI) and `inspect`.

What must hold for every input: only a WasmBpfError (one line) or a run
result comes back, no other exception, in bounded time; through the CLI a
non-zero exit with exactly one `error: ` line on stderr (or the guest's own
output when the module still runs) and no traceback; and no BPF object of
ours is left in the kernel.

Corrupted ELF images inside a valid guest reach libbpf's parser in the host
process, the one place a hostile input meets native code: that fuzz runs in a
child process, so a crash is reported with its input instead of killing pytest.
"""
import json
import os
import random
import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ENGINE, GUESTS, ROOT, cli_env, guest, run_cli
from wasm_bpf_cli.errors import WasmBpfError
from wasm_bpf_cli.runner import RunOptions, Runner

pytestmark = [pytest.mark.kernel, pytest.mark.engine]

BOUND = 10.0  # seconds any single input may take
ELF_CASES = int(os.environ.get("WASM_BPF_FUZZ_ELF_CASES", "200"))
FUZZ = settings(max_examples=int(os.environ.get("WASM_BPF_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


MAPS_WASM = _read(os.path.join(GUESTS, "maps.wasm"))
EXITCODE_WASM = _read(os.path.join(GUESTS, "exitcode.wasm"))
MAPS_OBJ = _read(os.path.join(GUESTS, "maps.bpf.o"))
RINGBUF_OBJ = _read(os.path.join(GUESTS, "ringbuf.bpf.o"))
ELF_AT = MAPS_WASM.find(MAPS_OBJ)  # maps.wasm embeds maps.bpf.o verbatim in a data segment
assert ELF_AT > 0


def section_boundaries(wasm: bytes) -> list:
    """Offsets where each section starts and its payload starts, and the end."""
    def leb(pos):
        value = shift = 0
        while True:
            b = wasm[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value, pos

    out, pos = [8], 8
    while pos < len(wasm):
        size, payload = leb(pos + 1)
        out += [pos + 1, payload]
        pos = payload + size
        out.append(pos)
    return sorted(set(out))


def run_api(wasm: bytes, duration: float = 1.0):
    """Run through the Python API; ("error", message) or ("ran", result, output)."""
    output = []
    started = time.monotonic()
    try:
        result = Runner(wasm, RunOptions(engine=ENGINE, duration=duration, grace_period=0.3,
                                         stdout=output.append, stderr=output.append)).run()
    except WasmBpfError as err:
        message = str(err)
        # one printable line saying something (what, depends on the input)
        assert len(message) > 10 and message.isprintable() and message == message.strip(), repr(message)
        return ("error", message)
    finally:
        assert time.monotonic() - started < BOUND
    if result.message is not None:
        assert "\n" not in result.message, repr(result.message)
    return ("ran", result, b"".join(output))


def inspect_api(data: bytes, tmp_path, suffix: str):
    from wasm_bpf_cli.inspect import inspect_path

    path = tmp_path / f"input{suffix}"
    path.write_bytes(data)
    started = time.monotonic()
    try:
        report = inspect_path(str(path), "callback-wrapper", "go-callback")
    except WasmBpfError as err:
        assert str(err) and "\n" not in str(err).strip()
        return ("error", str(err))
    finally:
        assert time.monotonic() - started < BOUND
    json.dumps(report)  # a report is always serialisable
    return ("report", report)


@st.composite
def mutation(draw, data: bytes):
    """A few bytes overwritten, a chunk deleted or duplicated, maybe truncated."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "flip", "byte", "delete", "dup", "truncate"]))
        if not out:
            break
        pos = draw(st.integers(0, len(out) - 1))
        if kind == "flip":
            out[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            out[pos] = draw(st.sampled_from([0, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255))]))
        elif kind == "delete":
            del out[pos:pos + draw(st.integers(1, 64))]
        elif kind == "dup":
            out[pos:pos] = out[pos:pos + draw(st.integers(1, 64))]
        else:
            del out[pos:]
    return bytes(out)


# -- run: Python API --------------------------------------------------------


@FUZZ
@given(wasm=st.one_of(mutation(MAPS_WASM), mutation(EXITCODE_WASM)))
def test_run_mutated_modules(no_bpf_leaks, wasm):
    run_api(wasm)


def test_run_hand_picked(no_bpf_leaks):
    rng = random.Random(1)
    cases = {
        "empty": b"",
        "random": bytes(rng.randrange(256) for _ in range(4096)),
        "magic only": b"\0asm",
        "header only": b"\0asm\x01\0\0\0",
        "wrong version": b"\0asm\x02\0\0\0" + MAPS_WASM[8:],
        "an ELF object": MAPS_OBJ,
        "wasm magic then ELF": b"\0asm\x01\0\0\0" + MAPS_OBJ,
    }
    for name, data in cases.items():
        assert run_api(data)[0] == "error", name


def test_run_truncated_at_every_section_boundary(no_bpf_leaks):
    """Cut at, just after and just before each section start/payload/end. A cut
    right at a section's end may leave a valid module (e.g. without its data or
    custom sections): that one runs; every other cut is a one-line error."""
    for wasm in (MAPS_WASM, EXITCODE_WASM):
        bounds = section_boundaries(wasm)
        assert len(bounds) > 10
        errors = 0
        for cut in bounds[:-1] + [b + 1 for b in bounds[:-1]] + [b - 1 for b in bounds[1:]]:
            outcome = run_api(wasm[:cut])
            if outcome[0] == "ran":
                assert cut in bounds, (cut, outcome)
            else:
                errors += 1
        assert errors > 2 * len(bounds) - 4


def _corrupt_elf_in_wasm(rng: random.Random) -> bytes:
    wasm = bytearray(MAPS_WASM)
    for _ in range(rng.randint(1, 8)):
        r = rng.random()
        if r < 0.4:  # the ELF and section headers, where the offsets and sizes are
            pos = ELF_AT + rng.choice([rng.randrange(64), len(MAPS_OBJ) - rng.randrange(1, 64 * 12)])
        else:
            pos = ELF_AT + rng.randrange(len(MAPS_OBJ))
        wasm[pos] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256), wasm[pos] ^ (1 << rng.randrange(8))])
    return bytes(wasm)


def test_run_valid_wasm_with_corrupted_elf(no_bpf_leaks):
    """A valid guest whose embedded ELF is corrupted: the guest runs, its load
    fails (or the damage was harmless); never more than that."""
    wasm = bytearray(MAPS_WASM)
    wasm[ELF_AT + 0x28:ELF_AT + 0x30] = b"\xff" * 8  # e_shoff far past the end
    outcome = run_api(bytes(wasm))
    assert outcome[0] == "ran"
    _, result, output = outcome
    assert result.exit_code == 1 and output.startswith(b"error load 0"), (result, output)


CHILD = textwrap.dedent("""
    import json, random, sys, time
    sys.path[:0] = [{root!r}, {root!r} + "/tests"]
    from test_fuzz_inputs import _corrupt_elf_in_wasm
    from wasm_bpf_cli.runner import Runner, RunOptions
    from wasm_bpf_cli.errors import WasmBpfError
    for case in range({cases}):
        wasm = _corrupt_elf_in_wasm(random.Random(case))
        print(json.dumps({{"case": case, "start": True}}), flush=True)
        out = []
        t = time.monotonic()
        try:
            r = Runner(wasm, RunOptions(engine={engine!r}, duration=2, grace_period=0.3,
                                        stdout=out.append, stderr=out.append)).run()
            res = {{"exit": r.exit_code, "outcome": r.outcome.value, "message": r.message,
                    "stdout": b"".join(out).decode(errors="replace")[:200]}}
        except WasmBpfError as err:
            res = {{"error": str(err)}}
        res.update(case=case, time=time.monotonic() - t)
        print(json.dumps(res), flush=True)
""")


def test_run_corrupted_elf_fuzz_isolated(no_bpf_leaks):
    """Seeded corruptions of the ELF inside maps.wasm, each run to the end in a
    child process: no crash of the host (libbpf parses these), each answered."""
    code = CHILD.format(root=ROOT, cases=ELF_CASES, engine=ENGINE)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=cli_env(), cwd=ROOT)
    elapsed = time.monotonic() - started
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    done = [r for r in lines if "start" not in r]
    last = lines[-1] if lines else None
    assert proc.returncode == 0, f"child died ({proc.returncode}) on case {last}: {proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr
    assert len(done) == ELF_CASES
    loads_failed = sum(1 for r in done if r.get("stdout", "").startswith("error load 0"))
    for r in done:
        assert "error" not in r, r  # the module itself is valid: it always runs
        assert r["outcome"] == "exited", r
        assert r["exit"] in (0, 1), r
        assert r["time"] < BOUND, r
    print(f"\ncorrupted-ELF fuzz on {ENGINE}: {ELF_CASES} runs in {elapsed:.1f} s, "
          f"{loads_failed} loads refused, {ELF_CASES - loads_failed} harmless, 0 crashes")


# -- inspect: library ---------------------------------------------------------


@FUZZ
@given(data=st.one_of(mutation(MAPS_WASM), mutation(MAPS_OBJ), mutation(RINGBUF_OBJ)))
def test_inspect_mutated_inputs(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("inspect")
    inspect_api(data, tmp, ".wasm" if data[:4] == b"\0asm" else ".bpf.o")


def test_inspect_truncated_at_every_section_boundary(tmp_path):
    bounds = section_boundaries(MAPS_WASM)
    for cut in bounds[:-1] + [b + 1 for b in bounds[:-1]]:
        outcome = inspect_api(MAPS_WASM[:cut], tmp_path, ".wasm")
        assert outcome[0] == "error" or cut in bounds, cut
    for cut in list(range(0, 64)) + list(range(64, len(MAPS_OBJ), 97)):
        inspect_api(MAPS_OBJ[:cut], tmp_path, ".bpf.o")


# -- the CLI: a handful of subprocess runs ------------------------------------


def _cli_cases(tmp_path):
    rng = random.Random(2)
    wasm_bad_elf = bytearray(MAPS_WASM)
    wasm_bad_elf[ELF_AT + 0x28:ELF_AT + 0x30] = b"\xff" * 8
    cases = {
        "empty.wasm": b"",
        "random.wasm": bytes(rng.randrange(256) for _ in range(2048)),
        "truncated.wasm": MAPS_WASM[:section_boundaries(MAPS_WASM)[5]],
        "object.bpf.o": MAPS_OBJ,
        "truncated.bpf.o": MAPS_OBJ[:200],
        "badelf.wasm": bytes(wasm_bad_elf),
    }
    paths = {}
    for name, data in cases.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    return paths


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_cli_run_bad_inputs(no_bpf_leaks, tmp_path):
    paths = _cli_cases(tmp_path)
    for name, path in paths.items():
        started = time.monotonic()
        res = run_cli("run", "--duration", "2", str(path), timeout=BOUND * 2)
        assert time.monotonic() - started < BOUND * 2
        if name == "badelf.wasm":  # a valid guest: it runs and reports its failed load itself
            assert (res.returncode, res.stdout) == (1, "error load 0\n"), (res.stdout, res.stderr)
            assert "Traceback" not in res.stderr
        else:
            assert res.returncode == 1, (name, res)  # a runner error
            assert _one_error_line(res.stderr).startswith("error: "), name
            assert res.stdout == "", (name, res.stdout)


def test_cli_inspect_bad_inputs(tmp_path):
    paths = _cli_cases(tmp_path)
    for name, path in paths.items():
        res = run_cli("inspect", str(path), timeout=BOUND * 2)
        if name in ("object.bpf.o",):
            assert res.returncode == 0, res
        elif name == "badelf.wasm":  # readable wasm: the bad object is one of its problems
            assert res.returncode in (0, 3) and "Traceback" not in res.stderr, res
        else:
            assert res.returncode == 1, (name, res)
            _one_error_line(res.stderr)


def test_cli_intact_guest_runs_clean(no_bpf_leaks):
    """Control for the cases above: the intact guest runs clean."""
    res = run_cli("run", guest("maps"))
    assert res.returncode == 0 and res.stdout.endswith("done\n"), res
