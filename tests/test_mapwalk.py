"""Map walks (get-next-key + lookup) against the real kernel, which the host
serves from batch lookups (wasm_bpf_cli/abi/mapwalk.py): every key once with
its value, the guest's own writes seen, a re-read or a late lookup read from
the kernel, bad pointers still -EFAULT. The `mapwalk` guest checks each entry
itself and prints a tally per step (tests/guests/README.md). Runs once per
engine (`make test`)."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT, bpf_snapshot, cli_env, example, guest, run_cli, wait_no_new_bpf, wasm_bpf_cmd

pytestmark = [pytest.mark.kernel, pytest.mark.engine]

KEYS = 1000
EFAULT, ENOENT = -21, -44  # WASI numbers


def possible_cpus() -> int:
    """CPUs in /sys/devices/system/cpu/possible ("0-1", "0-3,8-11")."""
    with open("/sys/devices/system/cpu/possible") as f:
        total = 0
        for part in f.read().strip().split(","):
            low, _, high = part.partition("-")
            total += int(high or low) - int(low) + 1
    return total


def walk_steps(**env):
    """{step: {name: int}} from one run of the guest (with `env` added), which
    must end cleanly and leave nothing in the kernel."""
    before = bpf_snapshot()
    res = subprocess.run(wasm_bpf_cmd("run", guest("mapwalk"), str(possible_cpus())), capture_output=True,
                         text=True, timeout=60, env=cli_env(**env), cwd=ROOT)
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert res.stderr == ""
    lines = res.stdout.splitlines()
    assert lines[-1] == "done", lines
    parsed = {}
    for line in lines[:-1]:
        step, *fields = line.split()
        parsed[step] = {name: int(value) for name, value in (f.split("=") for f in fields)}
    left = wait_no_new_bpf(before)
    assert not left, f"BPF objects left in the kernel: {left}"
    return parsed


@pytest.fixture(scope="module")
def steps():
    return walk_steps()


def test_a_hash_walk_hands_out_every_key_once_with_its_value(steps):
    assert steps["hash"] == {"count": KEYS, "sum": sum(k * 7 + 1 for k in range(1, KEYS + 1)),
                             "dup": 0, "bad": 0}


def test_the_guests_writes_during_a_walk_are_seen_by_its_lookups(steps):
    # updates of the key just handed out and of keys the walk reaches next
    assert steps["update"] == {"missed": 0, "bad": 0}
    assert steps["arrupdate"] == {"count": 300, "order": 0, "bad": 0}


def test_deleting_while_walking_empties_the_map(steps):
    expected = {"count": KEYS, "dup": 0, "bad": 0, "left": 0}
    assert steps["walkdel"] == expected  # next key first, then delete the current one
    assert steps["restartdel"] == expected  # a new walk from NULL after each delete


def test_a_walk_slower_than_a_batch_stays_fresh_goes_on_where_it_was(steps):
    assert steps["slow"] == {"count": KEYS, "dup": 0, "bad": 0}


def test_a_second_lookup_of_a_key_reads_the_kernel(steps):
    # a BPF program counts bpf(BPF_MAP_DELETE_ELEM) calls; the guest deletes
    # once between two lookups of the counter
    reread = steps["reread"]
    assert reread["second"] >= reread["first"] + 1, reread


def test_a_lookup_long_after_the_key_was_handed_out_reads_the_kernel(steps):
    stale = steps["stale"]
    assert stale["later"] >= stale["before"] + 1, stale


def test_bad_pointers_in_the_middle_of_a_walk_are_efault_and_the_walk_goes_on(steps):
    assert steps["bounds"] == {"next": EFAULT, "lookup": EFAULT, "count": KEYS, "dup": 0, "bad": 0}


def test_an_array_walk_hands_out_every_index_in_order(steps):
    assert steps["array"] == {"count": 300, "sum": sum(i * 5 + 3 for i in range(300)),
                              "order": 0, "bad": 0}


def test_a_percpu_walk_gets_each_cpus_value(steps):
    assert steps["percpu"] == {"count": 200, "bad": 0}


def test_two_walks_at_once_keep_apart(steps):
    assert steps["interleave"] == {"hash": KEYS, "array": 300, "bad": 0}


def test_an_empty_map_ends_the_walk_at_once(steps):
    assert steps["empty"] == {"err": ENOENT}


def test_a_new_object_after_close_is_walked_from_its_own_maps(steps):
    assert steps["reopen"] == {"count": KEYS, "dup": 0, "bad": 0}


# ---------------------------------------------------------------- wasmer: map calls without arguments

# On wasmer the guest's map calls reach the host without arguments
# (rewrite.serve_import_in_wasm: they are left in a slot in memory); these switches
# give them their arguments again.
ARGUMENTS = {"WASM_BPF_MAP_OPERATE_IN_WASM": "0", "WASM_BPF_MAP_FD_BY_NAME_IN_WASM": "0"}


@pytest.mark.wasmer_only
def test_map_calls_without_arguments_give_the_guests_the_same_results(steps):
    off = walk_steps(**ARGUMENTS)
    # the delete counter is system-wide (another process may delete meanwhile)
    changing = ("reread", "stale")
    assert {k: v for k, v in off.items() if k not in changing} == {
        k: v for k, v in steps.items() if k not in changing}
    assert off["reread"]["second"] >= off["reread"]["first"] + 1
    assert off["stale"]["later"] >= off["stale"]["before"] + 1

    def run(*argv, **env):
        res = subprocess.run(wasm_bpf_cmd("run", *argv), capture_output=True, text=True, timeout=60,
                             env=cli_env(**env), cwd=ROOT)
        assert res.returncode == 0 and res.stderr == "", (res.stdout, res.stderr)
        return res.stdout

    maps = [run(guest("maps"), **env).splitlines() for env in ({}, ARGUMENTS)]
    assert [lines[:1] + sorted(lines[1:3]) + lines[3:] for lines in maps] == [
        ["lookup 1 = 100", "key 1", "key 2", "lookup 1 err=-44", "missing map fd=-44", "done"]] * 2
    # the bench's walks of its 10,000-entry map: one walk each (-w 0), the same sum
    walk = [json.loads(run(example("bench"), "-w", "0", "mapwalk", **env).splitlines()[-1])
            for env in ({}, ARGUMENTS)]
    assert [(w["walked"], w["checksum"]) for w in walk] == [(10000, sum(3 * i for i in range(10000)))] * 2


# A runner in a fresh process (its peak RSS is its own): a WAT guest loads
# maps.bpf.o, stores one entry of `kv`, then looks it up WARM times, prints a
# line, looks it up CALLS times more, prints a line. Each line is answered by
# the RSS at that moment (KB; not the peak: compiling the guest may have set
# a higher one), then the exit code.
MAP_RSS_GUEST = r"""(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasm_bpf" "wasm_load_bpf_object" (func $load (param i32 i32) (result i64)))
  (import "wasm_bpf" "wasm_bpf_map_fd_by_name" (func $map_fd (param i64 i32) (result i32)))
  (import "wasm_bpf" "wasm_bpf_map_operate" (func $operate (param i32 i32 i32 i32 i32 i64) (result i32)))
  (import "wasm_bpf" "wasm_close_bpf_object" (func $close (param i64) (result i32)))
  (memory (export "memory") %(pages)d)
  (data (i32.const 8) "kv\00")
  (data (i32.const 16) "\40\00\00\00\02\00\00\00.\n")  ;; one iovec: ".\n" at 64
  (data (i32.const 64) ".\n")
  (data (i32.const 4096) "%(object)s")
  (global $fd (mut i32) (i32.const 0))
  (func $mark
    (if (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)) (then unreachable)))
  (func $lookups (param $n i32)
    (loop $again
      (i64.store (i32.const 2056) (i64.const 0))
      (if (call $operate (global.get $fd) (i32.const 1) (i32.const 2048) (i32.const 2056) (i32.const 0) (i64.const 0))
        (then unreachable))
      (if (i64.ne (i64.load (i32.const 2056)) (i64.const 100)) (then unreachable))
      (br_if $again (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
  (func (export "_start")
    (local $obj i64)
    (local.set $obj (call $load (i32.const 4096) (i32.const %(size)d)))
    (if (i64.eqz (local.get $obj)) (then unreachable))
    (global.set $fd (call $map_fd (local.get $obj) (i32.const 8)))
    (i32.store (i32.const 2048) (i32.const 1))
    (i64.store (i32.const 2056) (i64.const 100))
    (if (call $operate (global.get $fd) (i32.const 2) (i32.const 2048) (i32.const 2056) (i32.const 0) (i64.const 0))
      (then unreachable))
    (call $lookups (i32.const %(warm)d))
    (call $mark)
    (call $lookups (i32.const %(calls)d))
    (call $mark)
    (if (call $close (local.get $obj)) (then unreachable))))"""
MAP_RSS_RUNNER = """
import os, sys
from wasm_bpf_cli import RunOptions, Runner
def out(data):
    for _ in range(data.count(b"\\n")):
        with open("/proc/self/statm") as f:
            print(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024, flush=True)
print("exit", Runner(sys.argv[1], RunOptions(engine=sys.argv[2], stdout=out)).run().exit_code, flush=True)
"""


@pytest.mark.wasmer_only
def test_map_calls_on_wasmer_do_not_grow_the_rss_by_more_than_a_few_bytes_each(tmp_path, no_bpf_leaks):
    # wasmer-python keeps each host call's Python objects until the guest's
    # _start returns: ~8.5 B for a call without arguments, ~48 B more per
    # argument that is not a small int. The guest's map_operate calls reach
    # the host without arguments (rewrite.serve_import_in_wasm: ~9 B a
    # call); with its 6 arguments (two pointers) a lookup costs ~170 B
    # (WASM_BPF_MAP_OPERATE_IN_WASM=0 fails here): a guest walking a
    # 10k-entry map every second grew by ~3.4 MB a second.
    import os

    import wasmtime
    from conftest import ENGINE, GUESTS
    with open(os.path.join(GUESTS, "maps.bpf.o"), "rb") as f:  # built by `make build`: missing is a failure
        obj = f.read()
    warm, calls = 20000, 200000
    text = MAP_RSS_GUEST % dict(object="".join("\\%02x" % b for b in obj), size=len(obj), warm=warm,
                                calls=calls, pages=(4096 + len(obj)) // 65536 + 1)
    path = tmp_path / "maprss.wasm"
    path.write_bytes(wasmtime.wat2wasm(text))
    res = subprocess.run([sys.executable, "-c", MAP_RSS_RUNNER, str(path), ENGINE], capture_output=True,
                         text=True, timeout=60, env=cli_env(), cwd=ROOT)
    lines = res.stdout.split("\n")
    assert lines[2:4] == ["exit 0", ""], (res.stdout, res.stderr)
    rss0, rss1 = int(lines[0]), int(lines[1])
    per_call = (rss1 - rss0) * 1024 / calls
    assert per_call < 40, f"{per_call:.0f} B per map call ({rss0} -> {rss1} KB over {calls} lookups)"
