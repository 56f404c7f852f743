"""The runner loads a guest's embedded BPF objects while its engine starts
(abi/preload.py). What a user sees must not change: one load per object the
guest asks for (with its libbpf messages once), the guest's patched image
when it patched one, and nothing left behind when the guest never loads."""
import re

import pytest

from conftest import example, run_cli

pytestmark = [pytest.mark.kernel, pytest.mark.engine]

LOAD_LINE = re.compile(r"libbpf: loading object 'bootstrap' from buffer")


def _loads_logged(stderr: str) -> int:
    return len(LOAD_LINE.findall(stderr))


@pytest.mark.parametrize("guest_args", [[], ["-d", "5"]], ids=["as-embedded", "rodata-patched"])
def test_each_object_the_guest_loads_is_logged_once(guest_args, no_bpf_leaks):
    # as embedded: the preloaded object is taken (its held messages replayed);
    # patched .rodata (-d): the preload does not match, the guest loads its own
    res = run_cli("run", "-v", "--duration", "1", example("bootstrap"), *guest_args)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("TIME"), res.stdout
    assert _loads_logged(res.stderr) == 1, res.stderr


def test_a_guest_that_never_loads_leaves_nothing_and_logs_nothing(no_bpf_leaks):
    # a bad option: bootstrap prints its usage and exits before loading
    path = example("bootstrap")
    res = run_cli("run", "-v", path, "-x")
    assert res.returncode == 1, res.stderr  # bootstrap's own status for a bad option
    assert f"{path}: unrecognized option: x\n" in res.stderr and "USAGE: " in res.stderr, res.stderr
    assert _loads_logged(res.stderr) == 0, res.stderr
