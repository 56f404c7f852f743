#!/usr/bin/env python3
"""`make test-deps`: prove the dependency ranges pyproject.toml declares.

For each bound, a throwaway venv gets the runtime dependencies at that bound
and the suite's tests that exercise them run against it:
  lower  every `>=X` pinned to exactly X (wasmtime, click, rich,
         prometheus-client, httptools)
  upper  the ranges as declared: pip picks the newest version each allows
wasmer is pinned to one version (the [wasmer] extra); `make test-wasmer`
runs the whole engine suite on it already.

The tests run with this checkout on PYTHONPATH (nothing is installed from
it) on the wasmtime engine, against the real kernel as root. Prints the
versions each run used; exit status 1 if a run failed.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RANGED = ("wasmtime", "click", "rich", "prometheus-client", "httptools")

# What each dependency carries: wasmtime the engine adapter (its raw calls,
# traps, serialization, the batch dispatch loops) and processor components,
# click and rich the CLI, prometheus-client and httptools `run --metrics`.
TESTS = [
    "tests/test_ringbatch.py", "tests/test_module_cache.py", "tests/test_api.py",
    "tests/test_fuzz_abi.py", "tests/test_limits.py", "tests/test_rewrite.py",
    "tests/test_run_cli.py", "tests/test_doctor.py", "tests/test_inspect_cli.py",
    "tests/test_policy.py", "tests/test_gen_skeleton.py", "tests/test_components.py",
    "tests/test_metrics_server.py", "tests/test_metrics.py",
]


def requirements():
    """(runtime requirement strings, test requirement strings) from pyproject.toml."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    return project["dependencies"], project["optional-dependencies"]["test"]


def lower_pins(reqs):
    """Each ranged requirement pinned to its `>=` bound; the others as they are."""
    from packaging.requirements import Requirement

    out = []
    for text in reqs:
        req = Requirement(text)
        if req.name in RANGED:
            lows = [s.version for s in req.specifier if s.operator == ">="]
            if len(lows) != 1:
                raise SystemExit(f"pyproject.toml: {text!r} needs exactly one >= lower bound")
            out.append(f"{req.name}=={lows[0]}")
        else:
            out.append(text)
    return out


def run(bound, pins, test_reqs, python, pytest_args):
    venv = tempfile.mkdtemp(prefix=f"wasm-bpf-deps-{bound}-")
    try:
        subprocess.run([python, "-m", "venv", venv], check=True)
        vpy = os.path.join(venv, "bin", "python")
        subprocess.run([vpy, "-m", "pip", "install", "-q", "--disable-pip-version-check", *pins, *test_reqs],
                       check=True)
        listed = subprocess.run([vpy, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
                                capture_output=True, text=True, check=True).stdout.split()
        used = [p for p in listed if p.split("==")[0].lower().replace("_", "-") in RANGED]
        print(f"[test-deps] {bound}: {' '.join(used)}", flush=True)
        env = dict(os.environ, PYTHONPATH=ROOT, WASM_BPF_ENGINE="wasmtime",
                   WASM_BPF_FUZZ_CALLS=os.environ.get("WASM_BPF_FUZZ_CALLS", "20000"))
        started = time.monotonic()
        res = subprocess.run([vpy, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS, *pytest_args],
                             cwd=ROOT, env=env)
        print(f"[test-deps] {bound}: {'passed' if res.returncode == 0 else 'FAILED'} "
              f"in {time.monotonic() - started:.0f} s ({' '.join(used)})", flush=True)
        return res.returncode == 0
    finally:
        shutil.rmtree(venv, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=sys.executable, help="interpreter the venvs are made from")
    ap.add_argument("--bound", choices=("lower", "upper", "both"), default="both")
    ap.add_argument("pytest_args", nargs="*", help="passed on to pytest (after --)")
    args = ap.parse_args()
    deps, test_reqs = requirements()
    plans = {"lower": lower_pins(deps), "upper": deps}
    bounds = ("lower", "upper") if args.bound == "both" else (args.bound,)
    ok = [run(b, plans[b], test_reqs, args.python, args.pytest_args) for b in bounds]
    sys.exit(0 if all(ok) else 1)


if __name__ == "__main__":
    main()
