"""`wasm-bpf inspect` through click's CliRunner: the output a user sees,
--json, and the exit codes 0 / 1 / 2 / 3."""
import json

import pytest

from conftest import cli_runner
from test_inspect_helpers import WASI_IMPORTS, bpf_object, make_wasm
from wasm_bpf_cli.cli.main import cli

ENV = {"NO_COLOR": "1", "COLUMNS": "100", "TERM": "dumb"}


def run(*args):
    return cli_runner().invoke(cli, ["inspect", *args], env=ENV)


@pytest.fixture
def guest(tmp_path):
    path = tmp_path / "guest.wasm"
    path.write_bytes(make_wasm([bpf_object()]))
    return str(path)


@pytest.fixture
def unrunnable(tmp_path):
    path = tmp_path / "small.wasm"
    path.write_bytes(make_wasm(
        imports=WASI_IMPORTS[:1] + [("env", "abort", (), ()),
                                    ("wasm_bpf", "wasm_close_bpf_object", ("i32",), ("i32",))],
        table=False, memory=False))
    return str(path)


def test_runnable_module_human_output(guest):
    result = run(guest)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    out = result.stdout
    assert out.startswith(f"{guest}: wasm module, ")
    for line in [
        "│ memory                             │ 2 pages min, no max │",
        "│ __indirect_function_table exported │ yes                 │",
        "├── wasi_snapshot_preview1 (2)",
        "│   ├── fd_write (i32, i32, i32, i32) -> (i32)",
        "└── wasm_bpf (6)",
        "    ├── wasm_bpf_buffer_poll (i64, i32, i32, i32, i32, i32, i32) -> (i32)",
        "Runnable: every import is provided; samples are delivered via the table route",
        "├── license: GPL",
        "└── BTF: yes, .BTF.ext: yes, CO-RE relocations: 1",
        "│ handle_exec │ tp/sched/sched_process_exec │ tracepoint │ -           │ sched/sched_process_exec │",
        "│ xdp_pass    │ xdp                         │ xdp        │ xdp         │ -                        │",
        "│ exec_start │ hash    │ 4 (int) │ 8 (unsigned long long) │ 8192        │ 0x1   │",
        "│ rb         │ ringbuf │ 0       │ 0                      │ 262144      │ 0x0   │",
        "│ .rodata │ target_pid      │ const volatile int                │ 4    │ 0x8    │ 2a000000         │",
    ]:
        assert line in out.splitlines(), line
    assert "BPF object 0 (offset 0x1a8, " in out and "memory address 0x400)" in out


def test_not_runnable_whole_output(unrunnable):
    result = run(unrunnable)
    assert result.exit_code == 3
    assert result.stderr == ""
    assert result.stdout == f"""{unrunnable}: wasm module, 131 bytes
                   Module                    
┌────────────────────────────────────┬──────┐
│ memory                             │ none │
│ __indirect_function_table exported │ no   │
│ data segments                      │ 0    │
└────────────────────────────────────┴──────┘
Imports
├── wasi_snapshot_preview1 (1)
│   └── fd_write (i32, i32, i32, i32) -> (i32)
├── env (1)
│   └── abort () -> ()
└── wasm_bpf (1)
    └── wasm_close_bpf_object (i32) -> (i32)
           Exports           
┏━━━━━━━━┳━━━━━━┳━━━━━━━━━━━┓
┃ name   ┃ kind ┃ signature ┃
┡━━━━━━━━╇━━━━━━╇━━━━━━━━━━━┩
│ _start │ func │ () -> ()  │
└────────┴──────┴───────────┘
Not runnable:
  - import env.abort: module 'env' is not provided by this runner
  - import wasm_bpf.wasm_close_bpf_object: signature (i32) -> (i32) does not match the expected (i64) -> (i32)
  - export memory: missing (host functions read and write guest memory)
No embedded BPF objects found in the data segments.
"""


def test_json_is_the_only_stdout(guest, unrunnable):
    result = run("--json", guest)
    assert result.exit_code == 0 and result.stderr == ""
    doc = json.loads(result.stdout)
    assert doc["kind"] == "wasm" and doc["verdict"]["runnable"] is True
    assert [p["name"] for p in doc["objects"][0]["programs"]] == ["handle_exec", "on_unlink", "xdp_pass"]
    result = run(unrunnable, "--json")
    assert result.exit_code == 3 and result.stderr == ""
    assert json.loads(result.stdout)["verdict"]["problems"][0] == (
        "import env.abort: module 'env' is not provided by this runner")


def test_plain_bpf_object_exits_0(tmp_path):
    path = tmp_path / "probe.bpf.o"
    path.write_bytes(bpf_object())
    result = run(str(path))
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.startswith(f"{path}: BPF object, {len(bpf_object())} bytes\n")
    assert "Runnable" not in result.stdout
    doc = json.loads(run("--json", str(path)).stdout)
    assert doc["kind"] == "bpf" and doc["verdict"]["applicable"] is False


@pytest.mark.parametrize("content, message", [
    (b"\0asm\x01\0\0\0\x01\x80\x80", "truncated module at offset 0xb"),
    (b"\x7fELF\x02\x01\x01" + b"\0" * 30, "truncated ELF header (37 of 64 bytes)"),
    (b"#!/bin/sh\n", "not a wasm module or BPF object (bad magic)"),
])
@pytest.mark.parametrize("as_json", [False, True])
def test_corrupt_input_is_one_line_on_stderr(tmp_path, content, message, as_json):
    path = tmp_path / "bad.wasm"
    path.write_bytes(content)
    result = run(*(["--json"] if as_json else []), str(path))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.endswith(f"{message}\n") and result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_truncated_object_file(tmp_path):
    path = tmp_path / "cut.bpf.o"
    path.write_bytes(bpf_object()[:500])
    result = run(str(path))
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: {path}: section header table (offset 0x")


def test_missing_file_and_usage(tmp_path):
    result = run(str(tmp_path / "nope.wasm"))
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot read {tmp_path / 'nope.wasm'}: No such file or directory\n"
    assert run().exit_code == 2
    assert run("--bogus", "x").exit_code == 2


def test_custom_wrapper_names(tmp_path):
    path = tmp_path / "go.wasm"
    path.write_bytes(make_wasm(
        imports=WASI_IMPORTS + [("cbw", "wasm_bpf_buffer_poll",
                                 ("i64", "i32", "i32", "i32", "i32", "i32"), ("i32",))],
        table=False, exports=[("deliver", ("i32",) * 3, ("i32",))]))
    assert run(str(path)).exit_code == 3
    result = run("--wrapper-module-name", "cbw", "--callback-export-name", "deliver", str(path))
    assert result.exit_code == 0, result.stdout
    assert "samples are delivered via the wrapper route" in result.stdout
