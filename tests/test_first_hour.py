"""The first hour of a new user, from the README alone: `wasm-bpf new` from
each template, `make`, `run` with a trigger, `inspect` in a pipe, the Python
API (whole lines, a typed map lookup, a policy denial), and the mistakes a
newcomer makes, each answered with its fix. `run | head -1` is covered with
the guest's stdout path (test_run_kernel.py)."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
import wasmtime

from conftest import ENGINE, ROOT, cli_env, example, run_cli, wasm_bpf_cmd
from wasm_bpf_cli.scaffold import render, templates

README = os.path.join(ROOT, "README.md")
NAMES = {"ringbuf": "opentrace", "map": "counter"}  # the names the README uses


def readme() -> str:
    with open(README) as f:
        return f.read()


def fenced(marker: str) -> str:
    """The code block right after `<!-- marker -->` in the README."""
    match = re.search(rf"<!-- {re.escape(marker)} -->\n```\w*\n(.*?)```", readme(), re.S)
    assert match, f"no README block marked {marker!r}"
    return match.group(1)


def build_env() -> dict:
    """The environment of a user who installed wasm-bpf: its `wasm-bpf` on PATH."""
    env = cli_env()
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    return env


def one_error_line(res) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    return lines[0]


# ------------------------------------------------------------ no kernel
def test_the_readme_guest_is_the_ringbuf_template_verbatim():
    files = render("ringbuf", "opentrace")
    shown = re.findall(r"<!-- template ringbuf: (\S+) -->", readme())
    assert sorted(shown) == sorted(f for f in files if f != "README.md")
    for name in shown:
        assert fenced(f"template ringbuf: {name}") == files[name], name


def test_every_template_writes_both_halves_a_makefile_and_a_readme(tmp_path):
    for template in templates():
        name = NAMES[template]
        res = run_cli("new", name, "--template", template, "--dir", str(tmp_path / name))
        assert res.returncode == 0, res.stderr
        assert res.stdout.splitlines()[-1] == (
            f"next: cd {tmp_path / name} && make && sudo wasm-bpf run {name}.wasm")
        written = set(os.listdir(tmp_path / name))
        assert {f"{name}.bpf.c", f"{name}.c", "Makefile", "README.md"} <= written
        makefile = (tmp_path / name / "Makefile").read_text()
        for step in ("btf dump file /sys/kernel/btf/vmlinux format c", "-target bpf",
                     "$(WASM_BPF) gen skeleton", "$$($(WASM_BPF) sdk --cflags)", f"APP := {name}"):
            assert step in makefile, step


@pytest.mark.parametrize("args,status,message", [
    (["9lives"], 2, "error: '9lives' is not a usable guest name: it names C functions "
                    "(NAME_bpf__open), so use letters, digits and _ (at most 31), not starting with a digit"),
    (["ok", "--template", "kprobe"], 2, "error: no template 'kprobe': choose one of map, ringbuf"),
])
def test_new_with_a_bad_name_or_template_writes_nothing(tmp_path, args, status, message):
    res = subprocess.run(wasm_bpf_cmd("new", *args), capture_output=True, text=True, env=cli_env(),
                         cwd=tmp_path, timeout=60)
    assert res.returncode == status
    assert one_error_line(res) == message
    assert os.listdir(tmp_path) == []


def test_new_never_overwrites(tmp_path):
    (tmp_path / "opentrace").mkdir()
    (tmp_path / "opentrace" / "mine.c").write_text("precious")
    res = subprocess.run(wasm_bpf_cmd("new", "opentrace"), capture_output=True, text=True,
                         env=cli_env(), cwd=tmp_path, timeout=60)
    assert res.returncode == 1
    assert one_error_line(res) == "error: opentrace: already exists; choose another name or directory"
    assert os.listdir(tmp_path / "opentrace") == ["mine.c"]
    assert sorted(os.listdir(tmp_path)) == ["opentrace"]  # no staging directory left


def test_running_the_bpf_object_says_it_is_the_kernel_half():
    bpf_object = os.path.join(os.path.dirname(example("bootstrap")), "bootstrap.bpf.o")
    res = run_cli("run", bpf_object)
    assert res.returncode == 1
    assert one_error_line(res) == (
        "error: this is an ELF file (a BPF object: the kernel half of a guest), not a wasm module: "
        "run the wasm user half that embeds it (`wasm-bpf new NAME` writes one; "
        "`wasm-bpf gen skeleton` embeds an object)")


def test_a_module_without_its_table_export_is_told_the_linker_flag(tmp_path):
    path = tmp_path / "notable.wasm"
    path.write_bytes(wasmtime.wat2wasm("""
      (module
        (import "wasm_bpf" "wasm_bpf_buffer_poll"
          (func (param i64 i32 i32 i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "_start")))"""))
    res = run_cli("run", str(path))
    assert res.returncode == 1
    assert one_error_line(res) == (
        "error: cannot run this module: export __indirect_function_table: missing "
        "(wasm_bpf.wasm_bpf_buffer_poll calls samples back through it): link the guest with "
        "-Wl,--export-table (`wasm-bpf sdk --cflags` includes it)")


@pytest.mark.parametrize("option,value,extra", [
    ("--duration", "abc", ""), ("--duration", "inf", ""), ("--duration", "0", ""),
    ("--grace-period", "-1", "; 0 is allowed"),
])
def test_a_duration_that_is_not_seconds_says_so(option, value, extra):
    res = run_cli("run", option, value, "x.wasm")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1] == (
        f"Error: Invalid value for '{option}': '{value}' is not a number of seconds (e.g. 10 or 0.5{extra})")


def test_line_writer_delivers_whole_lines_whatever_the_chunks():
    from wasm_bpf_cli import LineWriter

    got = []
    out = LineWriter(got.append)
    for chunk in (b"PID  CO", b"MM\n1 a /x\n2 b", b" /\xc3", b"\xa9\n", b"tail"):
        out(chunk)
    assert got == ["PID  COMM", "1 a /x", "2 b /\u00e9"]
    out.flush()
    assert got[-1] == "tail"
    raw = []
    LineWriter(raw.append, binary=True)(b"a\nb\xff\n")
    assert raw == [b"a", b"b\xff"]


def test_policy_option_takes_a_mapping_or_a_path_and_says_what_else(tmp_path):
    from wasm_bpf_cli import RunOptions, Runner, UsageError
    from wasm_bpf_cli.policy import Policy, as_policy

    assert as_policy({"deny": ["xdp"], "max_links": 2}) == Policy(deny=("xdp",), max_links=2)
    (tmp_path / "p.toml").write_text('allow = ["tracing"]\n')
    assert as_policy(str(tmp_path / "p.toml")) == Policy(allow=("tracing",))
    with pytest.raises(UsageError, match=r"^RunOptions.policy: unknown key 'max_mem' \(known: "):
        as_policy({"max_mem": 1})
    with pytest.raises(UsageError) as err:
        Runner(b"\0asm\x01\0\0\0", RunOptions(engine=ENGINE, policy=42)).run()
    assert str(err.value) == ("RunOptions.policy: expected a Policy, a mapping of policy keys "
                              "(e.g. {'deny': ['xdp']}) or the path of a TOML policy file, not int")


def test_doctor_says_what_a_guest_build_lacks(monkeypatch, tmp_path):
    from wasm_bpf_cli import doctor, doctor_toolchain

    rows = {c.name: c for c in doctor.run_checks()}
    for name in ("clang", "wasi-libc", "BPF build", "bpftool"):  # `make deps` installed them
        assert rows[name].ok, rows[name]
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    rows = {c.name: c for c in doctor.run_checks()}
    assert rows["clang"].detail == "no clang-14 or clang on PATH: guests cannot be built here"
    assert rows["clang"].fix == doctor_toolchain.APT_HINT
    assert not rows["bpftool"].ok and rows["bpftool"].fix == "apt-get install bpftool"
    assert doctor.all_ok([c for c in rows.values() if c.name in ("clang", "bpftool")])  # not required


# ------------------------------------------------------------ the kernel
kernel = [pytest.mark.kernel, pytest.mark.engine]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Both templates made and built exactly as the README's first-hour
    block says (its `run` line is what the tests below do)."""
    if os.geteuid() != 0:
        from conftest import skip_or_fail

        skip_or_fail("building and running guests needs root")
    work = tmp_path_factory.mktemp("first-hour")
    steps = [line.split("#")[0].strip() for line in fenced("first-hour").splitlines()]
    assert steps == ["wasm-bpf new opentrace", "cd opentrace", "make", "sudo wasm-bpf run opentrace.wasm"]
    script = " && ".join(steps[:3]) + " && cd .. && wasm-bpf new counter --template map && make -C counter"
    res = subprocess.run(["bash", "-c", script], cwd=work, env=build_env(), capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return work


def trigger_until(proc_lines, pattern: str, trigger, timeout: float = 30) -> str:
    """Call trigger() until a line matching `pattern` arrives (queue of lines)."""
    import queue

    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        trigger()
        try:
            line = proc_lines.get(timeout=0.2)
        except queue.Empty:
            continue
        seen.append(line)
        if re.search(pattern, line):
            return line
    raise AssertionError(f"no line matching {pattern!r} in {seen[-20:]!r}")


def try_open(path: str) -> None:
    """openat(path), which the templates trace; the file need not exist."""
    try:
        os.close(os.open(path, os.O_RDONLY))
    except FileNotFoundError:
        pass


def spawn_run(*args, cwd):
    """`wasm-bpf run ARGS` as the README's first-hour block runs it; (proc, queue of stdout lines)."""
    import queue

    proc = subprocess.Popen(wasm_bpf_cmd("run", *args), cwd=cwd, env=build_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = queue.Queue()

    def pump():
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


@pytest.mark.kernel
@pytest.mark.engine
def test_ringbuf_guest_prints_the_file_this_test_opens(built, no_bpf_leaks):
    marker = f"/tmp/first-hour-{uuid.uuid4().hex}"
    proc, lines = spawn_run("opentrace.wasm", cwd=built / "opentrace")
    try:
        header = lines.get(timeout=60)
        assert header.split() == ["PID", "COMM", "FILE"]

        line = trigger_until(lines, re.escape(marker) + "$", lambda: try_open(marker))
        pid, comm, filename = line.split()
        assert (int(pid), filename) == (os.getpid(), marker)
        with open(f"/proc/{os.getpid()}/comm") as f:
            assert comm == f.read().strip()
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err  # the guest saw -EINTR and returned 0
    assert "Traceback" not in err


@pytest.mark.kernel
@pytest.mark.engine
def test_map_guest_prints_this_process_count(built, no_bpf_leaks):
    proc, lines = spawn_run("counter.wasm", "1", cwd=built / "counter")
    try:
        assert lines.get(timeout=60).split() == ["PID", "CALLS"]
        line = trigger_until(lines, rf"^{os.getpid()}\s+\d+$",
                             lambda: os.close(os.open("/etc/hostname", os.O_RDONLY)))
        assert int(line.split()[1]) >= 1
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


@pytest.mark.kernel
def test_inspect_in_a_pipe_prints_whole_names_and_exits_quietly_when_cut(built):
    env = build_env()
    env.pop("COLUMNS")  # as in a user's shell: only a terminal has a width
    wasm = str(built / "opentrace" / "opentrace.wasm")
    res = subprocess.run(["bash", "-c", f"{' '.join(wasm_bpf_cmd('inspect'))} {wasm} | cat"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0 and res.stderr == ""
    assert re.search(r"│ handle_openat +│ tracepoint/syscalls/sys_enter_openat +│ tracepoint +│ - +│ "
                     r"syscalls/sys_enter_openat +│", res.stdout), res.stdout
    # the reader is gone before anything is written: quiet, status 141
    proc = subprocess.Popen(wasm_bpf_cmd("inspect", wasm), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()
    _out, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (141, b"")
    # and as typed in a shell (the reader may also go away after the last write)
    res = subprocess.run(["bash", "-c", f"{' '.join(wasm_bpf_cmd('inspect'))} {wasm} | head -1; "
                          "echo status ${PIPESTATUS[0]}"], capture_output=True, text=True, env=env, timeout=60)
    assert res.stdout.splitlines() == [f"{wasm}: wasm module, {os.path.getsize(wasm)} bytes",
                                       res.stdout.splitlines()[1]]
    assert res.stdout.splitlines()[1] in ("status 0", "status 141") and res.stderr == ""


@pytest.mark.kernel
def test_inspect_deny_shortcut_puts_the_verdict_first(built):
    wasm = str(built / "opentrace" / "opentrace.wasm")
    res = run_cli("inspect", "--deny", "tracing", wasm)
    assert res.returncode == 3
    assert res.stdout.splitlines()[1:3] == [
        "Denied by the policy:",
        "  - program 'handle_openat' (tracepoint/syscalls/sys_enter_openat, type tracepoint): "
        "tracepoint is denied (deny) by the command line"]
    res = run_cli("inspect", "--json", "--allow", "tracing", wasm)
    assert res.returncode == 0 and json.loads(res.stdout)["policy"] == {"allowed": True, "violations": []}


@pytest.mark.kernel
@pytest.mark.engine
def test_api_collects_whole_lines_of_this_process_only(built, no_bpf_leaks):
    import queue

    from wasm_bpf_cli import LineWriter, RunOptions, Runner

    marker = f"/tmp/first-hour-{uuid.uuid4().hex}-" + "x" * 60  # long lines: more chunks
    lines = queue.Queue()
    got = []
    options = RunOptions(engine=ENGINE, args=[str(os.getpid())],  # the .rodata knob: this pid only
                         stdout=LineWriter(lambda line: (got.append(line), lines.put(line))))
    with Runner(str(built / "opentrace" / "opentrace.wasm"), options) as runner:
        runner.start()
        assert lines.get(timeout=60).split() == ["PID", "COMM", "FILE"]

        trigger_until(lines, re.escape(marker) + "$", lambda: try_open(marker))
        maps = {m.name: m.kernel_name for m in runner.maps()}
        runner.stop()
        result = runner.wait(30)
    # the names `inspect` shows (and the source uses); the kernel's own name apart
    assert maps == {"rb": "rb", ".rodata": "opentrac.rodata"}
    report = json.loads(run_cli("inspect", "--json", str(built / "opentrace" / "opentrace.wasm")).stdout)
    assert {m["name"] for m in report["objects"][0]["maps"]} == set(maps)
    assert result.exit_code == 0
    assert len(got) >= 2
    for line in got[1:]:  # every event line whole, and of this process
        assert re.fullmatch(rf"{os.getpid()} +\S+ +/\S*", line), line


def run_readme_example(marker: str, cwd) -> subprocess.CompletedProcess:
    """Run a Python block of the README in `cwd`, where the guests it names were built."""
    res = subprocess.run([sys.executable, "-c", fenced(marker)], cwd=cwd, capture_output=True,
                         env=dict(build_env(), PYTHONPATH=ROOT), text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res


@pytest.mark.kernel
@pytest.mark.engine
def test_readme_map_example_looks_up_a_u32_key_as_an_int(built, no_bpf_leaks):
    res = run_readme_example("api-example-maps", cwd=built)
    assert int(res.stdout) >= 5  # this example's own five openat() calls, at least


@pytest.mark.kernel
@pytest.mark.engine
def test_readme_policy_example_shows_the_denial_in_the_result_and_on_stderr(built, no_bpf_leaks):
    res = run_readme_example("api-example-policy", cwd=built)
    denial = ("program 'handle_openat' (tracepoint/syscalls/sys_enter_openat, type tracepoint) "
              "denied: tracepoint is denied (deny) by RunOptions.policy")
    assert res.stdout.splitlines() == [
        f"1 [{denial!r}]",
        f"wasm-bpf: warning: policy: {denial}",
        f"cannot load the BPF object: {-28}",  # the guest's own line: wasm_bpf_object_load failed (EINVAL)
    ]
    assert "policy" not in res.stderr  # nothing went to the log instead


# ------------------------------------------------------------ the README's other fragments
def test_readme_policy_file_is_a_valid_policy(tmp_path):
    from wasm_bpf_cli.policy import Policy

    toml = re.search(r"```toml\n(.*?)```", readme(), re.S).group(1)
    (tmp_path / "policy.toml").write_text(toml)
    assert Policy.load(str(tmp_path / "policy.toml")) == Policy(
        allow=("tracing",), deny=("lsm", "xdp"), allow_attach=(), deny_attach=("sock_ops",),
        max_objects=4, max_maps=32, max_links=8, max_memory=64 << 20, max_object_size=4 << 20,
        max_poll_timeout_ms=1000, allow_preopens=False)


def usage_commands():
    """The `wasm-bpf ...` lines of the README's "Using it" block, comments cut."""
    block = readme().split("## Using it", 1)[1].split("`run` options", 1)[0]
    return [line.split(" #")[0].strip() for line in block.splitlines()
            if line.startswith("    wasm-bpf ")]


@pytest.mark.kernel
@pytest.mark.engine
def test_readme_usage_commands_run_as_written(tmp_path, no_bpf_leaks):
    """Each command with the README's placeholder files made real (a built
    example); the two `run` lines get a --duration so that they end."""
    commands = usage_commands()
    assert len(commands) == 12 and commands[0] == "wasm-bpf run bootstrap.wasm -d 100"
    bootstrap = example("bootstrap")
    (tmp_path / "bootstrap.wasm").symlink_to(bootstrap)
    (tmp_path / "guest.wasm").symlink_to(bootstrap)
    (tmp_path / "prog.bpf.o").symlink_to(bootstrap.replace(".wasm", ".bpf.o"))
    for command in commands:
        argv = command.split()[1:]
        if argv[0] == "run":
            argv = ["run", "--duration", "1"] + argv[1:]
            if "--duration" in argv[3:]:
                i = argv.index("--duration", 3)
                del argv[i:i + 2]
        res = subprocess.run(wasm_bpf_cmd(*argv), cwd=tmp_path, env=cli_env(), capture_output=True,
                             text=True, timeout=120)
        # 0 for `run` too: bootstrap returns by itself when --duration makes its poll -EINTR
        assert res.returncode == 0, (command, res.stderr)
        assert "Traceback" not in res.stderr and "error" not in res.stderr, (command, res.stderr)
    assert (tmp_path / "opentrace" / "opentrace.bpf.c").exists()
    assert "prog_bpf__open_and_load(void)" in (tmp_path / "prog.skel.h").read_text()
