"""The policy of issue 7 (wasm_bpf_cli/policy.py): parsing and its errors,
the CLI flags, `inspect --policy`, and enforcement against the real kernel
through `wasm-bpf run`: a denied object is not loaded (the guest's load
returns 0), a denied attach returns -EPERM (WASI 63), each denial is one
`wasm-bpf: warning: policy: ...` line on stderr, and the runner survives."""
import json
import logging
import os
import subprocess
import time

import pytest

from conftest import ROOT, cli_env, example, guest, run_cli, wasm_bpf_cmd
from wasm_bpf_cli.errors import UsageError
from wasm_bpf_cli.policy import KNOWN_KINDS, Policy, parse_size, program_kinds

EPERM = 63  # WASI


def write(tmp_path, text: str, name: str = "policy.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------- parsing
FULL = """
allow = ["tracing", "kprobe"]
deny = ["lsm", "xdp"]
allow_attach = ["tracepoint"]
deny_attach = ["sock_ops"]
max_objects = 4
max_maps = 32
max_links = 8
max_memory = "64M"
max_object_size = 1048576
max_poll_timeout_ms = 1000
allow_preopens = false
"""


def test_every_key_parses(tmp_path):
    p = Policy.load(write(tmp_path, FULL))
    assert p == Policy(allow=("tracing", "kprobe"), deny=("lsm", "xdp"), allow_attach=("tracepoint",),
                       deny_attach=("sock_ops",), max_objects=4, max_maps=32, max_links=8,
                       max_memory=64 << 20, max_object_size=1 << 20, max_poll_timeout_ms=1000,
                       allow_preopens=False)
    assert p.source == "policy.toml"


def test_empty_file_restricts_nothing(tmp_path):
    p = Policy.load(write(tmp_path, ""))
    assert p == Policy()
    assert p.program_denial("lsm/path_rmdir", "lsm") is None
    assert p.bound_timeout(-1) == -1


@pytest.mark.parametrize("text, message", [
    ("max_mem = 5", "policy.toml: unknown key 'max_mem'"),
    ("max_links = '3'", "policy.toml: max_links: expected a non-negative integer"),
    ("max_links = -1", "policy.toml: max_links: expected a non-negative integer"),
    ("max_objects = true", "policy.toml: max_objects: expected a non-negative integer"),
    ("allow = 'tracing'", "policy.toml: allow: expected a list of strings"),
    ("deny = ['lsmm']", "policy.toml: deny: unknown program type 'lsmm' (did you mean lsm"),
    ("allow_attach = ['nope']", "policy.toml: allow_attach: unknown program type 'nope'"),
    ("allow_preopens = 1", "policy.toml: allow_preopens: expected true or false"),
    ("max_memory = '64 lots'", "policy.toml: max_memory: '64 lots' is not a size"),
    ("allow = [", "policy.toml: not valid TOML: "),
])
def test_malformed_file_is_a_one_line_usage_error(tmp_path, text, message):
    with pytest.raises(UsageError) as err:
        Policy.load(write(tmp_path, text))
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)
    assert err.value.exit_code == 2


def test_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot read"):
        Policy.load(str(tmp_path / "absent.toml"))


def test_sizes():
    assert parse_size("4096") == parse_size(4096) == 4096
    assert parse_size("512K") == 512 << 10
    assert parse_size("64MiB") == parse_size("64m") == 64 << 20
    assert parse_size("1G") == 1 << 30
    for bad in ("", "-1", "1.5M", "12X", True):
        with pytest.raises(ValueError):
            parse_size(bad)


@pytest.mark.parametrize("section, prog_type, kinds", [
    ("tp/syscalls/sys_enter_getppid", "tracepoint", {"tracepoint", "tp"}),
    ("lsm/path_rmdir", "lsm", {"lsm", "lsm_mac"}),
    ("xdp", "xdp", {"xdp"}),
    ("sockops", "sock_ops", {"sock_ops", "sockops", "cgroup_sock_ops"}),
    ("uprobe//bin/sh:main", "kprobe", {"kprobe", "uprobe"}),
    ("fentry/do_unlinkat", "tracing", {"tracing", "fentry", "trace_fentry"}),
    ("cgroup_skb/ingress", None, {"cgroup_skb", "cgroup_inet_ingress"}),
    ("no_such_section", None, set()),
])
def test_program_kinds(section, prog_type, kinds):
    assert program_kinds(section, prog_type) == kinds


def test_groups_allow_and_deny():
    p = Policy(allow=("tracing",), deny=("lsm", "xdp"), source="policy.toml")
    assert p.program_denial("tp/syscalls/sys_enter_execve", "tracepoint") is None
    assert p.program_denial("raw_tp/sched_switch", "raw_tracepoint") is None
    assert p.program_denial("fexit/do_exit", "tracing") is None
    assert p.program_denial("uretprobe//bin/sh:main", "kprobe") is None
    assert p.program_denial("perf_event", "perf_event") is None
    assert p.program_denial("lsm/path_rmdir", "lsm") == "lsm is denied (deny) by policy.toml"
    assert p.program_denial("xdp", "xdp") == "xdp is denied (deny) by policy.toml"
    assert p.program_denial("sockops", "sock_ops") == "sock_ops is not allowed by policy.toml"
    assert p.program_denial("kprobe/do_unlinkat", "kprobe") == "kprobe is not allowed by policy.toml"
    # fmod_ret is libbpf's "tracing" type but changes return values: not in the group
    assert p.program_denial("fmod_ret/x", "tracing") == "fmod_ret is not allowed by policy.toml"
    assert Policy(deny=("networking",)).program_denial("tc", "sched_cls")
    assert Policy(deny=("security",)).program_denial("lsm/bprm_check_security", "lsm")
    assert Policy(allow=("networking",)).program_denial("tc", "sched_cls") is None
    # the attach lists are separate
    assert p.attach_denial("xdp", "xdp") is None
    assert Policy(deny_attach=("tracepoint",)).attach_denial("tp/a/b", "tracepoint")


def test_bound_timeout():
    p = Policy(max_poll_timeout_ms=200)
    assert [p.bound_timeout(t) for t in (-1, -5, 0, 100, 200, 201, 10**6)] == [200, 200, 0, 100, 200, 200, 200]


def test_command_line_merges_into_the_file(tmp_path):
    p = Policy.load(write(tmp_path, 'allow = ["tracing"]\nmax_links = 2')).merged(
        allow=["kprobe"], deny=["lsm"], max_links=None, max_objects=1)
    assert (p.allow, p.deny, p.max_links, p.max_objects) == (("tracing", "kprobe"), ("lsm",), 2, 1)
    with pytest.raises(UsageError, match=r"--deny 'lsn': unknown program type"):
        Policy().merged(deny=["lsn"])
    assert {"tracing", "networking", "security", "lsm", "xdp", "tracepoint"} <= KNOWN_KINDS


def test_check_report_of_inspect():
    from wasm_bpf_cli.inspect import inspect_path

    report = inspect_path(example("xdp"))
    v = Policy(allow=("tracing",), max_maps=1, source="p.toml").check_report(report)
    assert not v["allowed"]
    assert any(s.startswith("program 'xdp_count' (xdp, type xdp): xdp is not allowed by p.toml")
               for s in v["violations"]), v
    assert any("max_maps is 1" in s for s in v["violations"]), v
    assert Policy(allow=("networking",)).check_report(report) == {"allowed": True, "violations": []}


# ---------------------------------------------------------------- CLI
def _one_error(proc) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_run_with_a_malformed_policy_is_a_usage_error(tmp_path):
    bad = write(tmp_path, "max_links = 'x'\n", "bad.toml")
    proc = run_cli("run", "--policy", bad, guest("ringbuf"))
    assert proc.returncode == 2
    assert _one_error(proc) == "error: bad.toml: max_links: expected a non-negative integer"


def test_run_with_unknown_allow_type_is_a_usage_error():
    proc = run_cli("run", "--allow", "tracin", guest("ringbuf"))
    assert proc.returncode == 2
    assert _one_error(proc).startswith("error: --allow 'tracin': unknown program type (did you mean tracing")


def test_run_with_a_bad_size_is_a_usage_error():
    proc = run_cli("run", "--max-memory", "lots", guest("echo"))
    assert proc.returncode == 2
    assert "'lots' is not a size" in proc.stderr


def test_dir_is_refused_when_preopens_are_not_allowed(tmp_path):
    pol = write(tmp_path, "allow_preopens = false\n")
    proc = run_cli("run", "--policy", pol, "--dir", str(tmp_path), guest("echo"))
    assert proc.returncode == 2
    assert _one_error(proc) == ("error: --dir: preopened directories are not allowed by policy.toml "
                                "(allow_preopens = false)")
    # the same policy without --dir runs
    path = guest("exitcode")
    ran = run_cli("run", "--policy", pol, path, "x")
    assert (ran.returncode, ran.stdout) == (0, f"hello\nargv[0]={path}\nargv[1]=x\n"), ran.stderr


def test_the_runner_api_refuses_preopens_too(tmp_path):
    from wasm_bpf_cli.runner import Runner, RunOptions

    opts = RunOptions(dirs=[(str(tmp_path), "/d")], policy=Policy(allow_preopens=False))
    with pytest.raises(UsageError, match="allow_preopens"):
        Runner(guest("echo"), opts).run()


def test_help_lists_the_policy_options():
    out = run_cli("run", "--help").stdout
    for opt in ("--policy FILE", "--allow TYPE", "--deny TYPE", "--max-memory SIZE", "--max-object-size SIZE"):
        assert opt in out


def test_inspect_policy_denies_xdp_under_a_tracing_policy(tmp_path):
    pol = write(tmp_path, 'allow = ["tracing"]\ndeny = ["lsm", "xdp"]\n')
    proc = run_cli("inspect", "--policy", pol, example("xdp"))
    assert proc.returncode == 3, proc.stderr
    assert "Denied by the policy:\n  - program 'xdp_count' (xdp, type xdp): xdp is denied (deny) by policy.toml\n" \
        in proc.stdout
    proc = run_cli("inspect", "--json", "--policy", pol, example("lsm"))
    assert proc.returncode == 3
    assert json.loads(proc.stdout)["policy"] == {
        "allowed": False,
        "violations": ["program 'deny_rmdir' (lsm/path_rmdir, type lsm): lsm is denied (deny) by policy.toml"]}


def test_inspect_policy_allows_a_tracing_guest(tmp_path):
    pol = write(tmp_path, 'allow = ["tracing"]\n')
    proc = run_cli("inspect", "--policy", pol, guest("ringbuf"))
    assert proc.returncode == 0, proc.stdout
    assert "Allowed by the policy" in proc.stdout
    proc = run_cli("inspect", "--json", "--policy", pol, guest("ringbuf"))
    assert json.loads(proc.stdout)["policy"] == {"allowed": True, "violations": []}
    # without --policy the report has no policy key
    assert "policy" not in json.loads(run_cli("inspect", "--json", guest("ringbuf")).stdout)


def test_inspect_with_a_malformed_policy(tmp_path):
    proc = run_cli("inspect", "--policy", write(tmp_path, "nope = 1"), guest("ringbuf"))
    assert proc.returncode == 2
    assert _one_error(proc).startswith("error: policy.toml: unknown key 'nope'")


def test_a_denial_is_reported_once(caplog):
    from wasm_bpf_cli.abi.host import HostAbi

    abi = HostAbi(policy=Policy())
    try:
        with caplog.at_level(logging.WARNING, logger="wasm_bpf.policy"):
            for _ in range(3):
                abi._deny("program 'x' (xdp, type xdp) denied: xdp is not allowed by p.toml")
            abi._deny("another")
    finally:
        abi.close()
    assert [r.getMessage() for r in caplog.records] == [
        "policy: program 'x' (xdp, type xdp) denied: xdp is not allowed by p.toml", "policy: another"]
    assert all(r.name == "wasm_bpf.policy" and r.levelno == logging.WARNING for r in caplog.records)


# ---------------------------------------------------------------- kernel
def run_pumping(*args: str, timeout: float = 30.0):
    """`wasm-bpf run ARGS` while this process calls getppid() (the test guests'
    tracepoint); (rc, stdout, stderr)."""
    proc = subprocess.Popen(wasm_bpf_cmd("run", *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=cli_env(), cwd=ROOT)
    end = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < end:
        os.getppid()
        time.sleep(0.005)
    if proc.poll() is None:
        proc.kill()
    out, err = proc.communicate(timeout=10)
    assert proc.returncode is not None and proc.returncode >= 0, "the runner did not exit by itself"
    return proc.returncode, out, err


def policy_lines(stderr: str):
    assert "Traceback" not in stderr, stderr
    return [l for l in stderr.splitlines() if l.startswith("wasm-bpf: warning: policy: ")]


TRACING_ONLY = 'allow = ["tracing"]\ndeny = ["lsm", "xdp", "sock_ops"]\n'


@pytest.mark.kernel
@pytest.mark.engine
def test_tracing_policy_lets_a_tracepoint_guest_run(tmp_path, no_bpf_leaks):
    rc, out, err = run_pumping("--policy", write(tmp_path, TRACING_ONLY), guest("ringbuf"), "0", "1")
    assert rc == 0, (out, err)
    assert "attached" in out and "got 1" in out
    assert policy_lines(err) == []


@pytest.mark.kernel
@pytest.mark.engine
@pytest.mark.parametrize("name, args, line", [
    ("xdp", [], "program 'xdp_count' (xdp, type xdp) denied: xdp is denied (deny) by policy.toml"),
    ("lsm", ["victim"], "program 'deny_rmdir' (lsm/path_rmdir, type lsm) denied: lsm is denied (deny) by policy.toml"),
    ("sockops", [], "program 'sockops_count' (sockops, type sock_ops) denied: sock_ops is denied (deny) by policy.toml"),
])
def test_tracing_policy_denies_other_objects(tmp_path, name, args, line, no_bpf_leaks):
    proc = run_cli("run", "--duration", "10", "--policy", write(tmp_path, TRACING_ONLY), example(name),
                   *args, timeout=30)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)  # the guest's own "failed to load" exit
    assert policy_lines(proc.stderr) == [f"wasm-bpf: warning: policy: {line}"]


@pytest.mark.kernel
@pytest.mark.engine
def test_allow_and_deny_flags_without_a_file(no_bpf_leaks):
    rc, out, err = run_pumping("--deny", "tracepoint", guest("ringbuf"), "0", "1")
    assert rc == 1 and out.strip() == "error load 0", (out, err)
    assert policy_lines(err) == ["wasm-bpf: warning: policy: program 'handle_getppid' "
                                 "(tp/syscalls/sys_enter_getppid, type tracepoint) denied: "
                                 "tracepoint is denied (deny) by the command line"]
    rc, out, err = run_pumping("--allow", "networking", guest("ringbuf"), "0", "1")
    assert rc == 1 and out.strip() == "error load 0"
    assert "tracepoint is not allowed by the command line" in err


@pytest.mark.kernel
@pytest.mark.engine
def test_max_objects(tmp_path, no_bpf_leaks):
    """counter loads maps.bpf.o, then ringbuf.bpf.o: the second is refused."""
    rc, out, err = run_pumping("--policy", write(tmp_path, "max_objects = 1\n"), guest("counter"))
    assert rc == 1 and out.strip() == "error load 0", (out, err)
    assert policy_lines(err) == ["wasm-bpf: warning: policy: BPF object denied: 1 loaded already, "
                                 "max_objects is 1 in policy.toml"]


@pytest.mark.kernel
@pytest.mark.engine
def test_max_maps(tmp_path, no_bpf_leaks):
    """ringbuf.bpf.o has 3 maps: rb, .rodata (target_pid), .bss (sample_seq)."""
    rc, out, err = run_pumping("--policy", write(tmp_path, "max_maps = 2\n"), guest("ringbuf"), "0", "1")
    assert rc == 1 and out.strip() == "error load 0", (out, err)
    assert policy_lines(err) == ["wasm-bpf: warning: policy: BPF object denied: its 3 maps and the 0 "
                                 "loaded already exceed max_maps 2 in policy.toml"]
    rc, out, err = run_pumping("--policy", write(tmp_path, "max_maps = 3\n"), guest("ringbuf"), "0", "1")
    assert rc == 0, (out, err)


@pytest.mark.kernel
@pytest.mark.engine
def test_max_links(tmp_path, no_bpf_leaks):
    rc, out, err = run_pumping("--policy", write(tmp_path, "max_links = 0\n"), guest("ringbuf"), "0", "1")
    assert rc == 1 and out.strip() == f"error attach -{EPERM}", (out, err)
    assert policy_lines(err) == ["wasm-bpf: warning: policy: attach of program 'handle_getppid' "
                                 "(tp/syscalls/sys_enter_getppid, type tracepoint) denied: 0 attached "
                                 "already, max_links is 0 in policy.toml"]
    rc, out, err = run_pumping("--policy", write(tmp_path, "max_links = 1\n"), guest("ringbuf"), "0", "1")
    assert rc == 0, (out, err)


@pytest.mark.kernel
@pytest.mark.engine
def test_denied_attach_type_is_eperm(tmp_path, no_bpf_leaks):
    pol = write(tmp_path, 'deny_attach = ["tracepoint"]\n')
    rc, out, err = run_pumping("--policy", pol, guest("ringbuf"), "0", "1")
    assert rc == 1 and out.strip() == f"error attach -{EPERM}", (out, err)
    assert policy_lines(err) == ["wasm-bpf: warning: policy: attach of program 'handle_getppid' "
                                 "(tp/syscalls/sys_enter_getppid, type tracepoint) denied: "
                                 "tracepoint is denied (deny_attach) by policy.toml"]
