"""Resource limits that hold (issue 7), on the engine under test:

- guest linear memory cap (RunOptions.max_memory, policy max_memory,
  `--max-memory`): memory.grow past the cap returns -1 in the guest, the
  runner survives. wasmtime: Store.set_limits; wasmer: the module's memory
  maximum is rewritten to the cap (engines/rewrite.py).
- BPF object size cap (`--max-object-size`, policy max_object_size): the
  guest's wasm_load_bpf_object returns 0, one warning line on stderr.
- bounded poll timeouts (policy max_poll_timeout_ms): a guest polling with
  timeout -1 (forever) gets its answer within the bound.
- a runaway guest (pure-wasm infinite loop) is stopped by --duration:
  tests/test_faults.py::test_spinning_guest_stopped_by_duration and
  tests/test_run_kernel.py::test_duration_interrupts_a_spinning_guest_with_124.
"""
import os
import time

import pytest

from conftest import ENGINE, GUESTS, guest, run_cli, skip_or_fail
from wasm_bpf_cli.policy import Policy
from wasm_bpf_cli.runner import Outcome, Runner, RunOptions

PAGE = 65536

# exit status = 10 * (memory.grow(100) failed) + (memory.grow(1) failed)
GROW_WAT = r"""
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $big i32) (local $small i32)
    (local.set $big (memory.grow (i32.const 100)))
    (local.set $small (memory.grow (i32.const 1)))
    (call $exit (i32.add
      (i32.mul (i32.const 10) (i32.eq (local.get $big) (i32.const -1)))
      (i32.eq (local.get $small) (i32.const -1))))))
"""


def wat2wasm(text: str) -> bytes:
    import wasmtime

    return wasmtime.wat2wasm(text)


def run_bytes(wasm: bytes, **options):
    return Runner(wasm, RunOptions(engine=ENGINE, **options)).run()


@pytest.mark.engine
def test_memory_grows_freely_without_a_cap():
    result = run_bytes(wat2wasm(GROW_WAT))
    assert (result.outcome, result.exit_code) == (Outcome.EXITED, 0)


@pytest.mark.engine
@pytest.mark.parametrize("how", ["options", "policy"])
def test_memory_cap_makes_grow_fail_in_the_guest(how):
    cap = 4 * PAGE
    opts = {"max_memory": cap} if how == "options" else {"policy": Policy(max_memory=cap)}
    result = run_bytes(wat2wasm(GROW_WAT), **opts)
    # memory.grow(100) -> -1, memory.grow(1) -> 1 (still under the cap)
    assert (result.outcome, result.exit_code, result.message) == (Outcome.EXITED, 10, None)


@pytest.mark.engine
def test_the_smaller_cap_wins():
    result = run_bytes(wat2wasm(GROW_WAT), max_memory=200 * PAGE, policy=Policy(max_memory=PAGE))
    assert result.exit_code == 11  # already at the cap: both grows fail


@pytest.mark.engine
def test_max_memory_flag(tmp_path):
    path = tmp_path / "grow.wasm"
    path.write_bytes(wat2wasm(GROW_WAT))
    proc = run_cli("run", "--max-memory", "256K", str(path))
    assert (proc.returncode, proc.stderr) == (10, "")
    assert run_cli("run", str(path)).returncode == 0


@pytest.mark.kernel
@pytest.mark.engine
@pytest.mark.parametrize("how", ["flag", "policy"])
def test_object_size_cap(tmp_path, how, no_bpf_leaks):
    size = os.path.getsize(os.path.join(GUESTS, "ringbuf.bpf.o"))
    if how == "flag":
        args = ["--max-object-size", "1K"]
    else:
        (tmp_path / "p.toml").write_text('max_object_size = "1K"\n')
        args = ["--policy", str(tmp_path / "p.toml")]
    proc = run_cli("run", *args, guest("ringbuf"), "0xffffffff", "1", timeout=30)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stdout.strip() == "error load 0"  # the guest saw the failure
    assert proc.stderr.splitlines() == [
        f"wasm-bpf: warning: refused to load a {size}-byte BPF object: the limit is 1024 bytes"]


def _poll_forever_wat(obj: bytes) -> str:
    """A guest that loads `obj` (not attaching anything: no sample can come),
    then polls its ring buffer "rb" with timeout -1; exit status 0 when the
    poll returned 0 samples, 100 + what went wrong otherwise."""
    data = "".join(f"\\{b:02x}" for b in obj)
    return rf"""
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasm_bpf" "wasm_load_bpf_object" (func $load (param i32 i32) (result i64)))
  (import "wasm_bpf" "wasm_bpf_map_fd_by_name" (func $map_fd (param i64 i32) (result i32)))
  (import "wasm_bpf" "wasm_bpf_buffer_poll"
    (func $poll (param i64 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (table (export "__indirect_function_table") 1 funcref)
  (elem (i32.const 0) $cb)
  (data (i32.const 16) "rb\00")
  (data (i32.const 4096) "{data}")
  (func $cb (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "_start")
    (local $obj i64) (local $fd i32) (local $r i32)
    (local.set $obj (call $load (i32.const 4096) (i32.const {len(obj)})))
    (if (i64.eqz (local.get $obj)) (then (call $exit (i32.const 101))))
    (local.set $fd (call $map_fd (local.get $obj) (i32.const 16)))
    (if (i32.lt_s (local.get $fd) (i32.const 0)) (then (call $exit (i32.const 102))))
    (local.set $r (call $poll (local.get $obj) (local.get $fd) (i32.const 0) (i32.const 0)
                              (i32.const 64) (i32.const 64) (i32.const -1)))
    (if (i32.ne (local.get $r) (i32.const 0)) (then (call $exit (i32.const 103))))
    (call $exit (i32.const 0))))
"""


@pytest.mark.kernel
@pytest.mark.engine
def test_poll_forever_is_bounded_by_the_policy(no_bpf_leaks):
    obj_path = os.path.join(GUESTS, "ringbuf.bpf.o")
    if not os.path.exists(obj_path):
        skip_or_fail(f"{obj_path} is not built: run `make build`")
    with open(obj_path, "rb") as f:
        wasm = wat2wasm(_poll_forever_wat(f.read()))
    t0 = time.monotonic()
    result = run_bytes(wasm, policy=Policy(max_poll_timeout_ms=300), duration=20)
    took = time.monotonic() - t0
    assert (result.outcome, result.exit_code) == (Outcome.EXITED, 0), result
    assert 0.25 <= took < 10, took


def test_host_functions_bound_both_poll_variants():
    """The bound sits in front of wasm_bpf_buffer_poll and the wrapper poll
    (timeout_ms is their last argument); nothing changes without a bound."""
    from wasm_bpf_cli.abi.host import HostAbi

    for policy, expect in ((Policy(max_poll_timeout_ms=250), [250, 250, 7]), (None, [-1, 10**6, 7])):
        abi = HostAbi(policy=policy)
        seen = []
        abi.buffer_poll = lambda *args: seen.append(("table", args[-1])) or 0
        abi.wrapper_buffer_poll = lambda *args: seen.append(("wrapper", args[-1])) or 0
        try:
            funcs = {(f.module, f.name): f.func for f in abi.host_functions()}
            for timeout in (-1, 10**6, 7):
                assert funcs[("wasm_bpf", "wasm_bpf_buffer_poll")](1, 2, 0, 0, 0, 8, timeout) == 0
                assert funcs[("callback-wrapper", "wasm_bpf_buffer_poll")](1, 2, 0, 0, 8, timeout) == 0
        finally:
            abi.close()
        assert [t for kind, t in seen if kind == "table"] == expect
        assert [t for kind, t in seen if kind == "wrapper"] == expect
