"""`wasm-bpf run` as a user sees it without the kernel doing anything:
one-line errors and their exit statuses, usage errors, the status line on a
terminal, --version and --help."""
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time

import pytest
import wasmtime

from conftest import ENGINE, cli_env, guest, run_cli, wasm_bpf_cmd


def one_error_line(res) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


def test_missing_file():
    res = run_cli("run", "/nonexistent/x.wasm")
    assert res.returncode == 1
    assert one_error_line(res) == "error: /nonexistent/x.wasm: no such file"


def test_directory_instead_of_a_module_is_a_usage_error(tmp_path):
    res = run_cli("run", str(tmp_path))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == (
        f"Error: Invalid value for 'MODULE.wasm': File '{tmp_path}' is a directory.")


def test_not_a_wasm_module(tmp_path):
    path = tmp_path / "x.wasm"
    path.write_bytes(b"#!/bin/sh\n" + bytes(60))
    res = run_cli("run", str(path))
    assert res.returncode == 1
    assert one_error_line(res) == "error: not a valid wasm module: not a wasm module (bad magic)"


def test_imports_the_runner_does_not_provide_are_named(tmp_path):
    path = tmp_path / "x.wasm"
    path.write_bytes(wasmtime.wat2wasm("""
      (module
        (import "env" "mystery" (func (param i32)))
        (import "wasm_bpf" "wasm_load_bpf_object" (func (param i32) (result i64)))
        (memory (export "memory") 1)
        (func (export "_start")))"""))
    res = run_cli("run", str(path))
    assert res.returncode == 1
    assert one_error_line(res) == (
        "error: cannot run this module: import env.mystery: module 'env' is not provided by "
        "this runner; import wasm_bpf.wasm_load_bpf_object: signature (i32) -> (i64) does not "
        "match the expected (i32, i32) -> (i64)")


def test_no_privilege_is_said_plainly():
    """Without CAP_BPF / CAP_SYS_ADMIN (all capabilities dropped with setpriv)."""
    if not shutil.which("setpriv"):
        pytest.fail("setpriv (util-linux) is missing")
    res = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all"]
                         + wasm_bpf_cmd("run", guest("maps")),
                         capture_output=True, text=True, env=cli_env(), timeout=60)
    assert res.returncode == 1
    assert one_error_line(res) == (
        f"error: loading BPF programs needs root or CAP_BPF and CAP_PERFMON: this process has "
        f"neither CAP_BPF nor CAP_SYS_ADMIN (uid {os.geteuid()})")


@pytest.mark.parametrize("args,message", [
    (["--env", "NOEQUALS"], "--env 'NOEQUALS': expected KEY=VALUE"),
    (["--dir", "/nonexistent-dir"], "--dir '/nonexistent-dir': '/nonexistent-dir' is not a directory"),
])
def test_bad_option_values_are_usage_errors(args, message):
    res = run_cli("run", *args, guest("exitcode"))
    assert res.returncode == 2
    assert one_error_line(res) == f"error: {message}"


@pytest.mark.parametrize("args", [["--duration", "0"], ["--engine", "v8"], []])
def test_click_usage_errors_exit_2(args):
    res = run_cli("run", *args)
    assert res.returncode == 2
    assert "Usage: wasm-bpf run" in res.stderr


def test_help_documents_exit_statuses_and_engines():
    res = run_cli("run", "--help")
    assert res.returncode == 0
    for text in ("--duration", "--env", "--dir", "--engine", "--wrapper-module-name",
                 "--callback-export-name", "124", "130", "143", "wasmer cannot interrupt"):
        assert text in res.stdout, text


def test_version_lists_engines_and_the_auto_choice():
    res = run_cli("--version")
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert lines[0].startswith("wasm-bpf 0.1.0 (Python ")
    assert any(line.split()[:2] == ["engine", "wasmtime"] for line in lines)
    assert any(line.split()[:2] == ["engine", "wasmer"] for line in lines)
    assert sum("<- auto" in line for line in lines) == 1


def _run_with_stderr_on_a_terminal(*args, timeout=30):
    """Run the CLI with stderr on a pseudo-terminal and stdout on a pipe."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(wasm_bpf_cmd(*args), stdout=subprocess.PIPE, stderr=slave,
                            stdin=subprocess.DEVNULL, env=cli_env(TERM="xterm", COLUMNS="120"))
    os.close(slave)
    tty = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            tty += chunk
        elif proc.poll() is not None:
            break
    stdout = proc.stdout.read()
    proc.wait(timeout=10)
    os.close(master)
    return proc.returncode, stdout, tty.decode(errors="replace")


@pytest.mark.kernel
@pytest.mark.engine
def test_status_line_and_summary_go_to_the_terminal_never_to_stdout(no_bpf_leaks):
    code, stdout, tty = _run_with_stderr_on_a_terminal(
        "run", "--duration", "1.5", guest("ringbuf"), "0xffffffff", "3")
    assert code == 0
    assert stdout == b"attached\ninterrupted\n"  # byte for byte, no escape codes
    tty = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", tty)  # what the terminal shows, without styles
    assert "ringbuf.wasm" in tty and "programs 1" in tty and "lost 0" in tty
    assert "ringbuf.wasm exited with status 0 after" in tty
    assert "rb (ringbuf): 0 events" in tty


def test_quiet_prints_no_status_or_summary():
    code, stdout, tty = _run_with_stderr_on_a_terminal("run", "-q", guest("exitcode"), "0")
    assert code == 0 and stdout == b"hello\n"
    assert tty == ""


if sys.version_info >= (3, 11):  # on CPython <= 3.10 the wasmer engine exists and is tested
    def test_wasmer_on_a_python_without_it_is_one_clear_line():
        res = run_cli("run", "--engine", "wasmer", guest("exitcode"))
        assert res.returncode == 1
        v = sys.version_info
        assert one_error_line(res) == (
            f"error: engine wasmer needs CPython <= 3.10 with `pip install 'wasm-bpf[wasmer]'` "
            f"(this is Python {v.major}.{v.minor}); use --engine wasmtime")
