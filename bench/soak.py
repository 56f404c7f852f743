#!/usr/bin/env python3
"""`make soak`: a long busy event stream through the runner; does it grow?

bench/build/loadgen calls getppid() at --rate per second (default 50,000)
for --minutes (default 10); examples/bench/bench.wasm (ring mode, run by
`wasm-bpf run -q --engine ENGINE`) receives every record through the ring
buffer. Every --interval seconds (default 10) the runner's whole process tree
is sampled: resident memory (VmRSS from /proc/PID/status, summed) and open
file descriptors (/proc/PID/fd, summed).

Samples taken in the first --warmup seconds (default 60: the allocator, the
engine's code caches and the ring's pages settle) are printed but left out
of the fit. Over the rest: the least-squares slope of RSS (KB/min) and of
fds (fds/min). Verdict: growth when a slope is above 1% of that series'
mean per minute (noise is well below that: an allocator's jitter is tens of
KB on a ~100 MB process, i.e. < 0.1%); exit status 1 on growth, 2 when the
run itself failed (the runner died, records stopped arriving).

    bench/soak.py [--minutes 10] [--rate 50000] [--engine wasmtime] [--python PY]
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_bench as rb  # noqa: E402  (build(), Proc, LOADGEN, BENCH_WASM)

GROWTH_PER_MIN = 0.01  # of the mean, per minute


def tree_sample(proc: "rb.Proc"):
    """(RSS KB, open fds) summed over the runner's process tree."""
    rss = fds = 0
    for pid in proc.tree():
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                        break
            fds += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue  # exited between listing and reading
    return rss, fds


def slope(xs, ys) -> float:
    """Least-squares slope of ys over xs."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def verdict(name: str, unit: str, xs, ys):
    """(grew, line) for one series."""
    mean = sum(ys) / len(ys)
    s = slope(xs, ys)
    limit = GROWTH_PER_MIN * mean
    grew = s > limit
    return grew, (f"{name}: mean {mean:,.0f} {unit}, slope {s:+,.1f} {unit}/min "
                  f"({(s / mean * 100) if mean else 0:+.3f}%/min; limit {limit:,.1f}) -> "
                  f"{'GROWTH' if grew else 'flat'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=int, default=50000, help="getppid() calls per second")
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds left out of the fit")
    ap.add_argument("--engine", default="wasmtime", choices=["wasmtime", "wasmer"])
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter running the runner (wasmer: a CPython 3.10 with wasmer)")
    ap.add_argument("--json", metavar="FILE", help="also write the samples and figures here")
    args = ap.parse_args()

    rb.build()
    seconds = args.minutes * 60
    lg = rb.Proc([rb.LOADGEN, "-r", str(args.rate), "-d", str(seconds + 3600)], stdin=subprocess.PIPE)
    _, pid = lg.wait_line(lambda l: l.strip().isdigit(), 5)
    consumer = rb.Consumer(args.engine, args.python)
    runner = rb.Proc(consumer.argv("bench", ["-p", pid, "-s", "1024", "ring"]), env=consumer.env())
    samples = []  # (seconds since start, rss KB, fds)
    failed = None
    try:
        runner.wait_line(lambda l: l == "attached", 60)
        lg.p.stdin.write(b"g")
        lg.p.stdin.close()
        t0 = time.monotonic()
        print(f"soak: {args.engine}, loadgen {args.rate:,}/s, {args.minutes:g} min, "
              f"a sample every {args.interval:g} s (first {args.warmup:g} s: warm-up, not fitted)",
              flush=True)
        print(f"{'t_s':>6} {'rss_kb':>10} {'fds':>5}", flush=True)
        next_at = args.interval
        while True:
            now = time.monotonic() - t0
            if now >= next_at:
                if runner.p.poll() is not None:
                    failed = f"the runner exited early ({runner.p.returncode}): {runner.stderr.decode()[-500:]}"
                    break
                rss, fds = tree_sample(runner)
                samples.append((now, rss, fds))
                print(f"{now:6.0f} {rss:10,d} {fds:5d}", flush=True)
                next_at += args.interval
                if now >= seconds - 0.5:
                    break
            time.sleep(min(0.5, max(0.0, next_at - now)))
    except RuntimeError as err:
        failed = str(err)
    finally:
        if runner.p.poll() is None:
            runner.p.send_signal(signal.SIGINT)
        runner.reap(30)
        lg.p.kill()
        lg.reap(5)
    if failed:
        print(f"soak: FAILED: {failed}", file=sys.stderr)
        return 2
    try:
        report = runner.json_line()
    except RuntimeError as err:
        print(f"soak: FAILED: {err}", file=sys.stderr)
        return 2
    fit = [s for s in samples if s[0] >= args.warmup] or samples
    if len(fit) < 3:
        print("soak: FAILED: fewer than 3 samples after the warm-up: run longer", file=sys.stderr)
        return 2
    minutes = [s[0] / 60 for s in fit]
    rss_grew, rss_line = verdict("rss", "KB", minutes, [s[1] for s in fit])
    fds_grew, fds_line = verdict("fds", "fds", minutes, [s[2] for s in fit])
    received = report.get("received", 0)
    print(f"records received: {received:,} ({received / seconds:,.0f}/s), "
          f"lost: {report.get('lost')}, kernel drops: {report.get('kernel_drops')}, "
          f"runner exit status: {runner.p.returncode}")
    print(f"fitted: {len(fit)} samples from t={fit[0][0]:.0f} s")
    print(rss_line)
    print(fds_line)
    grew = rss_grew or fds_grew
    print("verdict: " + ("GROWTH beyond noise" if grew else "no growth beyond noise"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"engine": args.engine, "rate": args.rate, "minutes": args.minutes,
                       "samples": [{"t_s": t, "rss_kb": r, "fds": n} for t, r, n in samples],
                       "rss_slope_kb_per_min": slope(minutes, [s[1] for s in fit]),
                       "fds_slope_per_min": slope(minutes, [s[2] for s in fit]),
                       "received": received, "growth": grew}, f, indent=2)
    if received == 0 or runner.p.returncode not in (0, 130):
        print("soak: FAILED: no records, or the runner did not stop cleanly", file=sys.stderr)
        return 2
    return 1 if grew else 0


if __name__ == "__main__":
    sys.exit(main())
