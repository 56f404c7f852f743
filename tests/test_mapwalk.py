"""Map walks (get-next-key + lookup) against the real kernel, which the host
serves from batch lookups (wasm_bpf_cli/abi/mapwalk.py): every key once with
its value, the guest's own writes seen, a re-read or a late lookup read from
the kernel, bad pointers still -EFAULT. The `mapwalk` guest checks each entry
itself and prints a tally per step (tests/guests/README.md). Runs once per
engine (`make test`)."""
import pytest

from conftest import bpf_snapshot, guest, run_cli, wait_no_new_bpf

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


@pytest.fixture(scope="module")
def steps():
    """{step: {name: int}} from one run of the guest, which must end cleanly
    and leave nothing in the kernel."""
    before = bpf_snapshot()
    res = run_cli("run", guest("mapwalk"), str(possible_cpus()))
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
