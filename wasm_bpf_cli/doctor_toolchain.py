"""What building a guest needs (doctor's "guest build" rows): clang with the
wasm32 and bpf targets, wasi-libc with clang's wasm32 builtins, libbpf's BPF
headers, and bpftool for vmlinux.h. Running a guest needs none of it, so
every row is `required=False`. Each check runs the tool the way a guest's
Makefile (`wasm-bpf new`) does, on a tiny source, in a temporary directory.
"""
import os
import shutil
import subprocess
import tempfile
from typing import List, Optional

from wasm_bpf_cli.doctor_check import Check

CLANGS = ("clang-14", "clang")
APT_HINT = "apt-get install clang-14 lld-14 llvm-14 wasi-libc libclang-rt-14-dev-wasm32 libbpf-dev bpftool"
TIMEOUT = 60  # seconds for one compile on a loaded machine


def _clang() -> Optional[str]:
    return next((c for c in CLANGS if shutil.which(c)), None)


def _run(argv: List[str], source: str = "", cwd: Optional[str] = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=source, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd)


def _first_error(res: subprocess.CompletedProcess) -> str:
    lines = [l for l in (res.stderr or res.stdout).splitlines() if l.strip()]
    error = next((l for l in lines if "error" in l), lines[0] if lines else f"exit status {res.returncode}")
    return error.strip()[:200]


def check_clang() -> Check:
    clang = _clang()
    if clang is None:
        return Check("clang", False, "no clang-14 or clang on PATH: guests cannot be built here",
                     APT_HINT, required=False)
    res = _run([clang, "-print-targets"])
    targets = {line.split()[0] for line in res.stdout.splitlines()[1:] if line.strip()}
    missing = [t for t in ("wasm32", "bpf") if t not in targets]
    if missing:
        return Check("clang", False, f"{clang} lacks the {' and '.join(missing)} target",
                     "install an LLVM build with the WebAssembly and BPF targets (Debian's clang-14 has both)",
                     required=False)
    return Check("clang", True, f"{clang}: wasm32 and bpf targets", required=False)


def check_wasi_libc() -> Check:
    from wasm_bpf_cli.sdk import guest_cflags

    clang = _clang()
    if clang is None:
        return Check("wasi-libc", False, "not tested: no clang", APT_HINT, required=False)
    with tempfile.TemporaryDirectory(prefix="wasm-bpf-doctor.") as tmp:
        res = _run([clang, *guest_cflags(), "-x", "c", "-o", os.path.join(tmp, "g.wasm"), "-"],
                   '#include <stdio.h>\n#include "wasm_bpf.h"\nint main(void) { puts("ok"); return 0; }\n')
    if res.returncode != 0:
        return Check("wasi-libc", False, f"a C guest does not build: {_first_error(res)}",
                     "apt-get install wasi-libc libclang-rt-14-dev-wasm32 lld-14", required=False)
    return Check("wasi-libc", True, "a C guest builds (clang $(wasm-bpf sdk --cflags))", required=False)


def check_bpf_headers() -> Check:
    clang = _clang()
    if clang is None:
        return Check("BPF build", False, "not tested: no clang", APT_HINT, required=False)
    source = ('#include <linux/types.h>\n#include <bpf/bpf_helpers.h>\n'
              'SEC("tp/syscalls/sys_enter_getppid") int p(void *ctx) { return 0; }\n'
              'char LICENSE[] SEC("license") = "GPL";\n')
    with tempfile.TemporaryDirectory(prefix="wasm-bpf-doctor.") as tmp:
        res = _run([clang, "-g", "-O2", "-target", "bpf", "-I/usr/include/" + _multiarch(),
                    "-c", "-x", "c", "-o", os.path.join(tmp, "p.bpf.o"), "-"], source)
    if res.returncode != 0:
        return Check("BPF build", False, f"a BPF program does not build: {_first_error(res)}",
                     "apt-get install libbpf-dev (bpf/bpf_helpers.h)", required=False)
    return Check("BPF build", True, "a BPF program builds (clang -target bpf, libbpf headers)",
                 required=False)


def _multiarch() -> str:
    machine = os.uname().machine
    return {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}.get(machine, f"{machine}-linux-gnu")


def check_bpftool() -> Check:
    if shutil.which("bpftool") is None:
        return Check("bpftool", False, "not on PATH: no vmlinux.h for CO-RE programs",
                     "apt-get install bpftool", required=False)
    res = _run(["bpftool", "version"])
    if res.returncode != 0:
        return Check("bpftool", False, f"bpftool version failed: {_first_error(res)}",
                     "apt-get install bpftool", required=False)
    first = res.stdout.splitlines()[0] if res.stdout else "bpftool"
    return Check("bpftool", True, f"{first.strip()} (vmlinux.h: bpftool btf dump file "
                 "/sys/kernel/btf/vmlinux format c)", required=False)


GUEST_BUILD_CHECKS = [check_clang, check_wasi_libc, check_bpf_headers, check_bpftool]
