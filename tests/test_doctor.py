"""`wasm-bpf doctor`: real facts of this machine, and simulated failures."""
import json
import os

import pytest

from conftest import cli_runner, run_cli, skip_or_fail
from wasm_bpf_cli import doctor
from wasm_bpf_cli.cli.doctor_cmd import doctor as doctor_cmd

NAMES = ["privilege", "kernel BTF", "bpffs", "tracefs", "BPF LSM", "lockdown", "ring buffer", "libbpf",
         "engines", "clang", "wasi-libc", "BPF build", "bpftool"]


def _invoke(*args):
    return cli_runner().invoke(doctor_cmd, list(args), env={"NO_COLOR": "1", "COLUMNS": "200"})


def _by_name(doc):
    return {c["name"]: c for c in doc["checks"]}


def test_json_document_shape_and_real_facts():
    res = _invoke("--json")
    doc = json.loads(res.stdout)
    assert set(doc) == {"ok", "checks"}
    assert [c["name"] for c in doc["checks"]] == NAMES
    for c in doc["checks"]:
        assert set(c) == {"name", "ok", "detail", "fix"}
        assert isinstance(c["ok"], bool)
        assert bool(c["fix"]) is (not c["ok"]), c  # a fix exactly for each failing row
    checks = _by_name(doc)
    assert checks["kernel BTF"]["ok"] is os.path.exists("/sys/kernel/btf/vmlinux")
    assert checks["bpffs"]["ok"] is os.path.ismount("/sys/fs/bpf")
    assert checks["tracefs"]["ok"] is os.path.ismount("/sys/kernel/tracing")
    assert checks["engines"]["ok"] is True
    assert "auto picks" in checks["engines"]["detail"]
    assert checks["libbpf"]["ok"] is True and checks["libbpf"]["detail"].startswith("libbpf 1.")
    try:
        lsm_on = "bpf" in open("/sys/kernel/security/lsm").read().split(",")
    except OSError:
        lsm_on = False
    assert checks["BPF LSM"]["ok"] is lsm_on
    assert res.exit_code == (0 if doc["ok"] else 1)


def test_root_privilege_and_ringbuf_ok():
    if os.geteuid() != 0:
        skip_or_fail("root facts")
    checks = _by_name(json.loads(_invoke("--json").stdout))
    assert checks["privilege"]["ok"] is True
    assert checks["privilege"]["detail"].startswith("root")
    assert checks["ring buffer"]["ok"] is True


def test_table_on_stdout():
    res = _invoke()
    for name in NAMES:
        assert name in res.stdout
    assert ("can run wasm-bpf guests" in res.stdout)
    assert res.exit_code in (0, 1)


def test_subprocess_json():
    res = run_cli("doctor", "--json")
    doc = json.loads(res.stdout)
    assert "Traceback" not in res.stderr
    assert res.returncode == (0 if doc["ok"] else 1)
    if os.geteuid() == 0 and os.path.exists("/sys/kernel/btf/vmlinux") and os.path.ismount("/sys/kernel/tracing"):
        assert doc["ok"] is True and res.returncode == 0


def test_missing_btf_gives_fix_and_exit_1(monkeypatch, tmp_path):
    monkeypatch.setattr(doctor, "BTF", str(tmp_path / "vmlinux"))
    res = _invoke("--json")
    doc = json.loads(res.stdout)
    btf = _by_name(doc)["kernel BTF"]
    assert btf["ok"] is False and "CONFIG_DEBUG_INFO_BTF" in btf["fix"]
    assert doc["ok"] is False and res.exit_code == 1
    table = _invoke()
    assert table.exit_code == 1 and "FAIL" in table.stdout and "CONFIG_DEBUG_INFO_BTF" in table.stdout


def test_unmounted_tracefs_and_bpffs(monkeypatch, tmp_path):
    monkeypatch.setattr(doctor, "TRACEFS", str(tmp_path))
    monkeypatch.setattr(doctor, "BPFFS", str(tmp_path))
    checks = _by_name(json.loads(_invoke("--json").stdout))
    assert checks["tracefs"]["fix"] == f"sudo mount -t tracefs tracefs {tmp_path}"
    assert checks["bpffs"]["fix"] == f"sudo mount -t bpf bpf {tmp_path}"


def test_lsm_list_without_bpf(monkeypatch, tmp_path):
    lsm = tmp_path / "lsm"
    lsm.write_text("lockdown,capability,yama\n")
    monkeypatch.setattr(doctor, "LSM", str(lsm))
    row = doctor.check_bpf_lsm()
    assert not row.ok and row.fix.startswith("boot with lsm=lockdown,capability,yama,bpf")
    lsm.write_text("capability,bpf\n")
    assert doctor.check_bpf_lsm().ok
    # BPF LSM is optional: the overall verdict does not depend on it
    assert doctor.all_ok([row])


def test_unprivileged_process(monkeypatch, tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapEff:\t0000000000000000\n")
    monkeypatch.setattr(doctor, "STATUS", str(status))
    priv = doctor.check_privilege()
    assert not priv.ok and "setcap" in priv.fix
    ring = doctor.check_ringbuf()
    assert not ring.ok and "needs privilege" in ring.detail
    status.write_text("CapEff:\t000000c000000000\n")  # CAP_BPF + CAP_PERFMON only
    assert doctor.check_privilege().ok


def test_no_engine(monkeypatch):
    from wasm_bpf_cli import engines

    monkeypatch.setattr(engines, "available",
                        lambda: [engines.EngineInfo("wasmtime", None, "not installed"),
                                 engines.EngineInfo("wasmer", None, "needs CPython <= 3.10")])
    row = doctor.check_engines()
    assert not row.ok and "pip install wasmtime" in row.fix


def test_broken_check_is_a_failing_row(monkeypatch):
    def boom():
        raise RuntimeError("kaput")

    monkeypatch.setattr(doctor, "CHECKS", [boom])
    (row,) = doctor.run_checks()
    assert not row.ok and "kaput" in row.detail and row.fix


@pytest.mark.parametrize("text,ok", [("[none] integrity confidentiality", True),
                                     ("none [integrity] confidentiality", False)])
def test_lockdown_row_explains_what_it_blocks(tmp_path, text, ok):
    from wasm_bpf_cli import doctor

    (tmp_path / "lockdown").write_text(text + "\n")
    check = doctor.check_lockdown(str(tmp_path / "lockdown"))
    assert check.ok is ok and check.required is False
    if not ok:
        assert check.detail.startswith("kernel lockdown is 'integrity': BPF LSM and fentry")
        assert "lockdown=none" in check.fix


def test_lockdown_is_unknown_not_ok_when_securityfs_is_unmounted():
    """A fresh boot of this machine has no securityfs mounted: lockdown cannot
    be read, which must not read as "not locked down". Run in a mount
    namespace of its own, so the machine's mounts are untouched."""
    import shutil
    import subprocess
    import sys

    from conftest import ROOT, cli_env, skip_or_fail

    if os.geteuid() != 0 or not shutil.which("unshare"):
        skip_or_fail("needs root and unshare(1) to unmount securityfs in a private mount namespace")
    script = ("umount /sys/kernel/security 2>/dev/null; mountpoint -q /sys/kernel/security && exit 99; "
              f"exec {sys.executable} -m wasm_bpf_cli doctor --json")
    out = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                         capture_output=True, text=True, env=cli_env(), cwd=ROOT, timeout=60)
    assert out.returncode in (0, 1), out
    row = _by_name(json.loads(out.stdout))["lockdown"]
    assert row == {"name": "lockdown", "ok": False,
                   "detail": "unknown: securityfs is not mounted on /sys/kernel/security",
                   "fix": "sudo mount -t securityfs securityfs /sys/kernel/security, then run doctor again"}
    # and in the text table, a warning (not a failure: only lsm/fentry guests need it)
    table = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            script.replace(" --json", "")], capture_output=True, text=True,
                           env=cli_env(COLUMNS="250"), cwd=ROOT, timeout=60)
    row_line = next(line for line in table.stdout.splitlines() if "│ lockdown" in line)
    assert "│ warn" in row_line and "unknown: securityfs is not mounted" in row_line, table.stdout


def test_lockdown_is_read_when_securityfs_is_mounted():
    if not os.path.ismount("/sys/kernel/security"):
        from conftest import skip_or_fail

        skip_or_fail("securityfs is not mounted (make mounts mounts it)")
    row = doctor.check_lockdown()
    assert not row.detail.startswith("unknown"), row
