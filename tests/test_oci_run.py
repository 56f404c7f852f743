"""End to end on the real kernel: the bootstrap example pushed to a real
registry, its local file deleted, then `wasm-bpf run localhost:PORT/tools/bootstrap:1`
sees an exec of a uniquely named program; again with the registry stopped
(from the local store); `--pull never` with an unknown reference fails in
one line."""
import os
import re
import shutil
import subprocess
import uuid

import pytest

from conftest import ROOT, cli_env, example, wasm_bpf_cmd
from oci_registry import Registry
from test_examples_tracing import START_TIMEOUT, Guest

pytestmark = [pytest.mark.kernel, pytest.mark.engine]


@pytest.fixture
def private_store(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    for key, value in (("HOME", home), ("DOCKER_CONFIG", home / "docker"), ("XDG_CACHE_HOME", home / "cache")):
        monkeypatch.setenv(key, str(value))
    return home


def _sees_exec(guest: Guest) -> None:
    prog = f"/tmp/oci-{uuid.uuid4().hex[:8]}"  # comm keeps 15 characters: all of this one
    shutil.copy("/bin/true", prog)
    try:
        guest.wait_line(r"^TIME\s+EVENT\s+COMM\s+PID\s+PPID\s+FILENAME/EXIT CODE$", START_TIMEOUT)
        assert subprocess.run([prog], timeout=10).returncode == 0
        base = os.path.basename(prog)
        m = guest.wait_line(rf"^\d\d:\d\d:\d\d EXEC  {re.escape(base)}\s+(\d+)\s+(\d+)\s+{re.escape(prog)}$")
        assert int(m.group(2)) == os.getpid()
        guest.interrupt()
        assert guest.wait_exit() == 0, guest.stderr
    finally:
        os.unlink(prog)


def test_run_bootstrap_from_a_registry(no_bpf_leaks, private_store, tmp_path):
    local = tmp_path / "bootstrap.wasm"
    shutil.copy(example("bootstrap"), local)
    with Registry(tmp_path) as registry:
        ref = f"localhost:{registry.port}/tools/bootstrap:1"
        pushed = subprocess.run(wasm_bpf_cmd("push", str(local), ref), capture_output=True, text=True,
                                env=cli_env(), cwd=ROOT, timeout=60)
        assert pushed.returncode == 0, pushed.stderr
        local.unlink()  # only the registry has it now

        guest = Guest(ref, duration=60)
        try:
            _sees_exec(guest)
        finally:
            guest.kill()
    # the registry is stopped: the second run comes from the store
    guest = Guest(ref, duration=60)
    try:
        _sees_exec(guest)
    finally:
        guest.kill()

    unknown = f"localhost:{registry.port}/tools/unknown:1"
    res = subprocess.run(wasm_bpf_cmd("run", "--pull", "never", unknown), capture_output=True, text=True,
                         env=cli_env(), cwd=ROOT, timeout=60)
    assert (res.returncode, res.stderr) == (1, f"error: {unknown}: not in the local image store (--pull never)\n")
