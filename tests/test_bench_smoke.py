"""Smoke test of the benchmark harness (`make bench` is not part of `make
test`): build it, run the smallest case once on wasmtime, check the result
line is sane."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.kernel


def test_bench_quick_paced_wasmtime(tmp_path, no_bpf_leaks):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "run_bench.py"), "--quick", "--only", "paced",
         "--engines", "wasmtime", "--paced-rate", "5000", "--paced-seconds", "2",
         "--output", str(out)],
        capture_output=True, text=True, timeout=90, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "paced 5k/s: CPU per record" in proc.stdout
    data = json.loads(out.read_text())
    assert data["meta"]["engines"] == ["wasmtime"]
    res = data["results"]["paced"]["wasmtime"]
    run = res["runs"][0]
    assert run["consumer"] == "wasm" and run["mode"] == "ring"
    assert run["exit_code"] == 0 and run["err"] == 0
    assert 5000 <= run["calls"] <= 11000  # 5,000/s for 2 s
    assert run["received"] == run["calls"] == run["produced"]  # a low paced rate loses nothing
    assert run["gaps"] == 0 and run["reorders"] == 0 and run["missing"] == 0
    assert run["lost"] == 0 and run["kernel_drops"] == 0
    assert run["first_seq"] == 0 and run["last_seq"] == run["calls"] - 1
    assert 0 < run["p50_us"] <= run["p99_us"] <= run["max_us"]
    assert run["latency_samples"] == run["received"]
    assert run["clock"] in ("monotonic", "realtime-tai")
    assert 0 < res["cpu_us_per_record"] < 10_000
    assert run["attach_s"] > 0


def test_bench_quick_even_wasmtime(tmp_path, no_bpf_leaks):
    """The evenly paced case: both rates, and the coalescing variant."""
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "run_bench.py"), "--quick", "--only", "even",
         "--engines", "wasmtime", "--output", str(out)],
        capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for row in ("even 100k/s: CPU per record", "even 10k/s: p99 latency",
                "even 100k/s: peak RSS (16 MiB ring)", "even 100k/s, 1 ms delay: records/poll"):
        assert row in proc.stdout
    results = json.loads(out.read_text())["results"]
    for case, rate in (("even100k", 100000), ("even10k", 10000), ("even100k_delay", 100000)):
        run = results[case]["wasmtime"]["runs"][0]
        assert run["mode"] == "ring16" and run["exit_code"] == 0 and run["err"] == 0
        assert run["received"] == run["calls"] == run["produced"] and run["gaps"] == 0
        assert 0.5 * rate * 2 <= run["calls"] <= rate * 2  # --quick: 2 s at `rate`
        assert run["maxrss_kb"] > 0
    assert results["even100k_delay"]["wasmtime"]["records_per_poll"] > results["even10k"]["wasmtime"]["records_per_poll"]
