#!/usr/bin/env python3
"""What line buffering of guest stdout costs (`wasm-bpf run --output-buffering`).

A guest written the upstream way (tests/guests/plainprint.c: plain printf of
one line per ring-buffer record, no fflush) consumes records that loadgen
produces at an even RATE per second for SECONDS; its stdout is a pipe this
script reads. For each engine and each mode:

  line  the default: the guest's libc flushes at every newline, one host
        write per record, each line out as soon as the record is in
  libc  the guest's libc keeps its 4 KiB buffer (a pipe is not a terminal):
        one host write per ~4 KiB of output

Reported: CPU per record of the runner's process tree (user + system, from
the go signal until its output stops), records produced, lines received
(fewer than records: the guest fell behind and the kernel dropped records
from its 256 KiB ring; libc mode also loses its last buffer, up to 4 KiB,
when the guest, which ignores -EINTR, is interrupted at the end), and one
JSON document in bench/output_buffering.json.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

from proctree import tree, tree_cpu

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GUEST = os.path.join(ROOT, "tests", "guests", "build", "plainprint.wasm")
LOADGEN = os.path.join(HERE, "build", "loadgen")


def _holds_bpf_link(root: int) -> bool:
    for pid in tree(root):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:bpf_link":
                    return True
        except OSError:
            continue
    return False


def one_run(python: str, engine: str, mode: str, rate: int, seconds: float) -> dict:
    gen = subprocess.Popen([LOADGEN, "-r", str(rate), "-d", str(seconds)], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    target = gen.stdout.readline().strip()
    runner = subprocess.Popen([python, "-m", "wasm_bpf_cli", "run", "--engine", engine, "--grace-period", "0.3",
                               "--output-buffering", mode, GUEST, target],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    lines = [0]

    def count() -> None:
        while True:
            chunk = runner.stdout.read1(1 << 16)
            if not chunk:
                return
            lines[0] += chunk.count(b"\n")

    reader = threading.Thread(target=count, daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while not _holds_bpf_link(runner.pid):
        if time.monotonic() > deadline or runner.poll() is not None:
            raise SystemExit(f"{engine}/{mode}: the guest never attached")
        time.sleep(0.05)
    time.sleep(0.2)
    cpu0 = tree_cpu(runner.pid)
    gen.stdin.write("g")
    gen.stdin.flush()
    produced = json.loads(gen.stdout.readline())["calls"]
    gen.wait()
    # The records still in the ring reach the guest (line mode: until the
    # count stops moving; libc mode cannot be watched, its lines sit in the
    # guest's buffer).
    seen, quiet_since = lines[0], time.monotonic()
    while time.monotonic() - quiet_since < 0.5 and time.monotonic() < deadline + 60:
        time.sleep(0.1)
        if lines[0] != seen:
            seen, quiet_since = lines[0], time.monotonic()
    cpu = tree_cpu(runner.pid) - cpu0
    runner.send_signal(signal.SIGINT)
    runner.wait(30)
    reader.join(10)
    return {"engine": engine, "mode": mode, "rate": rate, "seconds": seconds, "produced": produced,
            "lines": lines[0] - 1,  # less "ready"
            "cpu_s": round(cpu, 3), "cpu_us_per_record": round(cpu / max(produced, 1) * 1e6, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python310", help="python of the 3.10 venv (wasmer engine)")
    ap.add_argument("--python311", default=sys.executable, help="python of the wasmtime venv")
    ap.add_argument("--rate", type=int, default=100000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--output", default=os.path.join(HERE, "output_buffering.json"))
    args = ap.parse_args(argv)
    if not os.path.exists(LOADGEN):
        os.makedirs(os.path.dirname(LOADGEN), exist_ok=True)
        subprocess.run(["gcc", "-O2", "-o", LOADGEN, os.path.join(HERE, "loadgen.c")], check=True)
    if not os.path.exists(GUEST):
        raise SystemExit(f"{GUEST} is not built: run `make build`")
    engines = [("wasmtime", args.python311)] + ([("wasmer", args.python310)] if args.python310 else [])
    results = []
    print(f"guest stdout, one line per record, even {args.rate}/s for {args.seconds:g} s, median of {args.runs}")
    print(f"{'engine':<10}{'mode':<6}{'CPU/record':>12}{'records':>10}{'lines':>10}")
    for engine, python in engines:
        for mode in ("line", "libc"):
            runs = [one_run(python, engine, mode, args.rate, args.seconds) for _ in range(args.runs)]
            runs.sort(key=lambda r: r["cpu_us_per_record"])
            median = runs[len(runs) // 2]
            results.append({"median": median, "runs": runs})
            print(f"{engine:<10}{mode:<6}{median['cpu_us_per_record']:>10.2f}us{median['produced']:>10}"
                  f"{median['lines']:>10}")
    with open(args.output, "w") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
