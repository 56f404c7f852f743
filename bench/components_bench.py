#!/usr/bin/env python3
"""`make bench`, processor components: what handing data to a processor costs.

Cases (each figure the median of --runs runs, default 3):
  call   per-call cost of wasm_bpf_call for a 64-byte event, measured inside
         the guest (tests/guests/procguest `calls`, CLOCK_MONOTONIC around
         20,000 calls): to the C processor `keep` (the event comes back
         whole), and to no processor at all (-ENOENT: the host crossing and
         the name lookup alone); per engine
  drain  a stalled ring buffer of --records 64-byte records (examples/bench,
         bench/loadgen; as run_bench.py's stall case, without overflow)
         drained by the same guest with and without `--filter rb=keep`
         (the C processor passing every record): records/s from resume to
         the buffer left empty; wasmtime

Needs `make build` (the test guests and processors, examples/bench). Prints a
table and writes bench/components_results.json.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import run_bench  # noqa: E402 - its loadgen, consumer process handling and stall run

GUESTS = os.path.join(ROOT, "tests", "guests", "build")
PROCGUEST = os.path.join(GUESTS, "procguest.wasm")
KEEP = os.path.join(GUESTS, "proc_keep.wasm")
CALLS = 20000


def call_cost(python: str, engine: str, with_processor: bool) -> int:
    """ns per wasm_bpf_call of a 64-byte event, as the guest measured it."""
    extra = ["--with", f"keep={KEEP}"] if with_processor else []
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=ROOT)
    done = subprocess.run([python, "-m", "wasm_bpf_cli", "run", "-q", "--engine", engine, *extra,
                           PROCGUEST, "calls", "keep", str(CALLS)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    found = re.search(r"^ret (-?\d+) ns_per_call (\d+)$", done.stdout, re.M)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"procguest calls failed ({done.returncode}): {done.stdout} {done.stderr}")
    expected = 64 if with_processor else -44  # the event back, or -ENOENT
    if int(found.group(1)) != expected:
        raise RuntimeError(f"wasm_bpf_call returned {found.group(1)}, not {expected}")
    return int(found.group(2))


class FilteredConsumer(run_bench.Consumer):
    """The bench guest with the C processor `keep` on its ring buffer."""

    def argv(self, module, guest_args, extra_runner=()):
        return super().argv(module, guest_args, ["--with", f"keep={KEEP}", "--filter", "rb=keep", *extra_runner])


def drain_rate(consumer, records: int) -> float:
    res = run_bench.run_stream(consumer, "ring", ["-n", str(records)], stall=True, sample_every=64,
                               timeout=600)
    if res["received"] != records:
        raise RuntimeError(f"{consumer.name}: received {res['received']} of {records}")
    return res["drain_rate"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python310", help="python of the 3.10 venv (the wasmer engine's call figures)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--records", type=int, default=50000, help="records in the stalled ring (drain case)")
    ap.add_argument("--output", default=os.path.join(HERE, "components_results.json"))
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        run_bench.log("needs root (BPF)")
        return 1
    for path in (PROCGUEST, KEEP):
        if not os.path.exists(path):
            run_bench.log(f"{path} is not built: run `make build`")
            return 1
    run_bench.build()
    engines = [("wasmtime", sys.executable)]
    if args.python310:
        engines.append(("wasmer", args.python310))
    results = {"call_ns": {}, "drain_rate": {}}
    for engine, python in engines:
        for label, with_processor in (("keep", True), ("none", False)):
            values = [call_cost(python, engine, with_processor) for _ in range(args.runs)]
            results["call_ns"][f"{engine}/{label}"] = statistics.median(values)
            run_bench.log(f"call {engine}/{label}: {values} ns")
    for label, consumer in (("plain", run_bench.Consumer("wasmtime", sys.executable)),
                            ("filter", FilteredConsumer("wasmtime", sys.executable))):
        values = [drain_rate(consumer, args.records) for _ in range(args.runs)]
        results["drain_rate"][label] = statistics.median(values)
        run_bench.log(f"drain {label}: {[round(v) for v in values]} rec/s")
    meta = {"runs": args.runs, "records": args.records, "calls": CALLS, "kernel": os.uname().release,
            "cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with open(args.output, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    print("processor components (median of %d)" % args.runs)
    for key, ns in results["call_ns"].items():
        engine, label = key.split("/")
        what = "to the C processor keep" if label == "keep" else "to no processor (-ENOENT)"
        print(f"  wasm_bpf_call, 64-byte event, {what:<27} {engine:<9} {ns / 1000:9.1f} us")
    plain, filtered = results["drain_rate"]["plain"], results["drain_rate"]["filter"]
    print(f"  stalled ring drain ({args.records} records), wasmtime: {plain:,.0f} rec/s without a filter, "
          f"{filtered:,.0f} rec/s with --filter rb=keep (C) ({plain / filtered:.0f}x slower)")
    print(f"results in {os.path.relpath(args.output, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
