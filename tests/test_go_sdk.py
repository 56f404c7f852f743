"""The Go guest SDK (wasm_bpf_cli/sdk/go/wasmbpf) on the real kernel, through
the guest tests/guests/gosdk (stock Go, GOOS=wasip1): map operations on byte
slices and typed values, errno values and errors.Is, .rodata knobs, a perf
buffer delivered to a Go callback through callback-wrapper + go-callback
while the poll import is in progress, a callback's negative return, and
Ctrl-C as wasmbpf.ErrInterrupted. Also `wasm-bpf sdk --go`."""
import os
import threading

import pytest
from click.testing import CliRunner

from conftest import guest
from test_examples_tracing import START_TIMEOUT, guests  # noqa: F401 - fixture
from wasm_bpf_cli.cli.sdk_cmd import sdk


@pytest.mark.kernel
@pytest.mark.engine
def test_go_sdk_guest(no_bpf_leaks, guests):  # noqa: F811
    g = guests(guest("gosdk"), str(os.getpid()), "3", duration=60)
    g.wait_line(r"^attached$", START_TIMEOUT)
    done = threading.Event()

    def trigger():  # samples: getppid() from this process (the guest's target pid)
        while not done.wait(0.02):
            os.getppid()

    t = threading.Thread(target=trigger, daemon=True)
    t.start()
    try:
        g.wait_line(r"^got 3$")
    finally:
        done.set()
        t.join()
    g.interrupt()
    assert g.wait_exit() == 0, g.stderr
    lines = g.lines
    assert lines[:11] == [
        "lookup 1 = 100", *lines[1:3],
        "lookup 1 err=-44 notfound=true",  # WASI ENOENT, and errors.Is(err, wasmbpf.ErrNotFound)
        "missing map fd=-44 (map nope: No such file or directory)",
        "typed lookup 2 = 200 err=<nil>",
        "update existing with NoExist err=-20",  # WASI EEXIST
        "keys [2 10 12] err=<nil>",
        "attach after close err=-8",  # EBADF
        "set_global no_such_knob err=-44",
        "attached",
    ], lines
    assert sorted(lines[1:3]) == ["key 1", "key 2"]
    assert lines[11].startswith("stopped by the callback: poll events: ")  # its -7 came back
    assert lines[12:] == [f"sample pid={os.getpid()} tag=perfevt size=20"] * 3 + [
        "got 3", "heap bytes overwritten: 0", "interrupted"], lines


def test_sdk_go_prints_the_module_directory():
    result = CliRunner().invoke(sdk, ["--go"])
    assert result.exit_code == 0
    path = result.stdout.strip()
    assert os.path.isfile(os.path.join(path, "imports.go"))
    with open(os.path.join(path, "go.mod")) as f:
        assert f.readline() == "module wasm-bpf.dev/wasmbpf\n"
    overview = CliRunner().invoke(sdk, []).stdout
    assert f"go:      {path} (module wasm-bpf.dev/wasmbpf)\n" in overview
