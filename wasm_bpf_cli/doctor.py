"""What this machine can run: the checks behind `wasm-bpf doctor`.

Each check is a plain function returning a Check (name, ok, detail, fix).
No click or rich here: the command only renders. `required` says whether a
failing check keeps guests from running at all (the exit status); the
others explain what some guests will miss (e.g. BPF LSM for lsm programs).
"""
import ctypes
import errno
import os
from typing import Callable, List, Optional

from wasm_bpf_cli.doctor_check import Check
from wasm_bpf_cli.doctor_toolchain import GUEST_BUILD_CHECKS  # what building a guest needs

STATUS = "/proc/self/status"
BTF = "/sys/kernel/btf/vmlinux"
BPFFS = "/sys/fs/bpf"
TRACEFS = "/sys/kernel/tracing"
LSM = "/sys/kernel/security/lsm"

CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39
BPF_MAP_TYPE_RINGBUF = 27


def effective_caps(path: Optional[str] = None) -> int:
    """The CapEff bit mask of this process, 0 if unreadable."""
    path = path or STATUS  # read at call time: tests patch the module constant
    try:
        with open(path) as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def has_bpf_privilege() -> bool:
    caps = effective_caps()
    return bool(caps & (1 << CAP_SYS_ADMIN) or (caps & (1 << CAP_BPF) and caps & (1 << CAP_PERFMON)))


def check_privilege() -> Check:
    caps = effective_caps()
    names = [n for n, bit in (("CAP_SYS_ADMIN", CAP_SYS_ADMIN), ("CAP_BPF", CAP_BPF),
                              ("CAP_PERFMON", CAP_PERFMON)) if caps & (1 << bit)]
    who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"
    ok = has_bpf_privilege()
    detail = f"{who}, effective capabilities: {', '.join(names) or 'none of CAP_SYS_ADMIN/CAP_BPF/CAP_PERFMON'}"
    fix = "" if ok else ("run as root (sudo wasm-bpf ...) or grant the capabilities: "
                         "sudo setcap cap_bpf,cap_perfmon+ep $(readlink -f $(which python3))")
    return Check("privilege", ok, detail, fix)


def check_btf(path: Optional[str] = None) -> Check:
    path = path or BTF  # read at call time: tests patch the module constant
    if os.path.exists(path):
        return Check("kernel BTF", True, f"{path} present")
    return Check("kernel BTF", False, f"{path} missing: CO-RE programs cannot load",
                 "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (most distribution kernels since 5.4)")


def _mount_check(name: str, path: str, fstype: str, required: bool) -> Check:
    if os.path.ismount(path):
        return Check(name, True, f"mounted at {path}", required=required)
    return Check(name, False, f"not mounted at {path}", f"sudo mount -t {fstype} {fstype} {path}",
                 required=required)


def check_bpffs(path: Optional[str] = None) -> Check:
    path = path or BPFFS  # read at call time: tests patch the module constant
    return _mount_check("bpffs", path, "bpf", required=False)


def check_tracefs(path: Optional[str] = None) -> Check:
    path = path or TRACEFS  # read at call time: tests patch the module constant
    return _mount_check("tracefs", path, "tracefs", required=True)


LOCKDOWN = "/sys/kernel/security/lockdown"


def check_bpf_lsm(path: Optional[str] = None) -> Check:
    path = path or LSM  # read at call time: tests patch the module constant
    try:
        with open(path) as f:
            active = f.read().strip()
    except OSError as err:
        return Check("BPF LSM", False, f"cannot read {path}: {err.strerror}",
                     "mount securityfs (sudo mount -t securityfs securityfs /sys/kernel/security); "
                     "only lsm/ programs need it", required=False)
    if "bpf" in active.split(","):
        return Check("BPF LSM", True, f"active ({active})", required=False)
    return Check("BPF LSM", False, f"not in the active LSMs ({active or 'none'}); only lsm/ programs need it",
                 f'boot with lsm={active + "," if active else ""}bpf on the kernel command line '
                 "(needs CONFIG_BPF_LSM=y)", required=False)


def check_libbpf() -> Check:
    try:
        from wasm_bpf_cli.bpf import lib

        have = lib.version()
    except Exception as err:  # noqa: BLE001 - reported as a failing row
        return Check("libbpf", False, f"cannot load libbpf: {err}", "apt-get install libbpf1 (1.0 or newer)")
    text = f"{have[0]}.{have[1]}"
    if have >= lib.MIN_VERSION:
        return Check("libbpf", True, f"libbpf {text}")
    return Check("libbpf", False, f"libbpf {text} is older than 1.0", "install libbpf 1.0 or newer (apt-get install libbpf1)")


def check_ringbuf() -> Check:
    """Create a tiny BPF_MAP_TYPE_RINGBUF map and close it again."""
    name = "ring buffer"
    if not has_bpf_privilege():
        return Check(name, False, "not tested: needs privilege (root or CAP_BPF)",
                     "run `sudo wasm-bpf doctor` to test it")
    try:
        from wasm_bpf_cli.bpf import lib

        gen = lib.libbpf()
        raw = gen._lib["bpf_map_create"]  # a fresh function object: no shared argtypes
    except Exception as err:  # noqa: BLE001
        return Check(name, False, f"cannot test: {err}", "install libbpf 1.0 or newer (apt-get install libbpf1)")
    raw.restype = ctypes.c_int
    raw.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32,
                    ctypes.c_void_p]
    fd = raw(BPF_MAP_TYPE_RINGBUF, b"doctor_rb", 0, 0, 4096, None)
    if fd < 0:
        err = -fd
        return Check(name, False, f"creating a ring buffer map failed: {os.strerror(err)}",
                     "ring buffers need Linux 5.8 or newer; perf-buffer guests may still run")
    os.close(fd)
    return Check(name, True, "BPF_MAP_TYPE_RINGBUF map created and closed")


def check_engines() -> Check:
    from wasm_bpf_cli import engines

    infos = engines.available()
    usable = [i for i in infos if i.version is not None]
    parts = [f"{i.name} {i.version}" if i.version else f"{i.name}: {i.note}" for i in infos]
    if not usable:
        return Check("engines", False, "; ".join(parts), "pip install wasmtime (or, on CPython <= 3.10, "
                     "pip install 'wasm-bpf[wasmer]')")
    try:
        auto = engines.resolve("auto")
    except Exception as err:  # noqa: BLE001
        auto = f"? ({err})"
    return Check("engines", True, f"{'; '.join(parts)}; auto picks {auto}")

def check_lockdown(path: Optional[str] = None) -> Check:
    """Kernel lockdown: in integrity or confidentiality mode the kernel may
    refuse BPF LSM and fentry programs (EPERM, even to root)."""
    path = path or LOCKDOWN  # read at call time: tests patch the module constant
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError as err:
        securityfs = os.path.dirname(path)
        if not os.path.ismount(securityfs):
            # Unmounted securityfs hides lockdown: never report that as "not locked down".
            return Check("lockdown", False, f"unknown: securityfs is not mounted on {securityfs}",
                         f"sudo mount -t securityfs securityfs {securityfs}, then run doctor again",
                         required=False)
        if err.errno == errno.ENOENT:
            return Check("lockdown", True, "no lockdown interface (kernel built without it)", required=False)
        return Check("lockdown", False, f"unknown: cannot read {path}: {err.strerror}",
                     "run doctor as root to read it", required=False)
    mode = text[text.find("[") + 1:text.find("]")] if "[" in text else text
    if mode == "none":
        return Check("lockdown", True, "none", required=False)
    return Check("lockdown", False, f"kernel lockdown is '{mode}': BPF LSM and fentry programs may be "
                 "refused with EPERM even to root", "boot without lockdown (lockdown=none, or Secure "
                 "Boot off) to run lsm/ and fentry/ programs", required=False)


CHECKS: List[Callable[[], Check]] = [check_privilege, check_btf, check_bpffs, check_tracefs, check_bpf_lsm,
                                     check_lockdown, check_ringbuf, check_libbpf, check_engines,
                                     *GUEST_BUILD_CHECKS]


def run_checks() -> List[Check]:
    out = []
    for check in CHECKS:
        try:
            out.append(check())
        except Exception as err:  # noqa: BLE001 - one broken check must not hide the others
            out.append(Check(check.__name__.replace("check_", ""), False, f"check failed: {err}",
                             "report this as a wasm-bpf bug"))
    return out


def all_ok(checks: List[Check]) -> bool:
    """True when everything needed to run guests is in place."""
    return all(c.ok for c in checks if c.required)


def report(checks: List[Check]) -> dict:
    return {"ok": all_ok(checks), "checks": [c.as_dict() for c in checks]}
