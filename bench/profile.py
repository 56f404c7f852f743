#!/usr/bin/env python3
"""Profile the runner on the bench guest while it drains a flat-out load (or,
with --even RATE, an evenly paced one: one wake-up per record or so):
py-spy (install it into the venv: `pip install py-spy`) samples the runner's
process tree for a few seconds; prints the hottest lines (self and inclusive).

    .venv/bin/python bench/profile.py wasmtime
    .venv/bin/python bench/profile.py wasmer --python /work/main/.venv310/bin/python
    .venv/bin/python bench/profile.py wasmtime --even 10000 --native
"""
import argparse
import collections
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_bench as rb  # noqa: E402


def top(path: str, n_self: int, n_incl: int) -> str:
    self_c, incl, total = collections.Counter(), collections.Counter(), 0
    with open(path) as f:
        for line in f:
            stack, _, n = line.rstrip().rpartition(" ")
            frames, n = stack.split(";"), int(n)
            if not any("wasm-bpf-guest" in fr for fr in frames):
                continue  # the guest thread only (not the idle main thread / supervisor)
            total += n
            self_c[frames[-1]] += n
            for fr in set(frames):
                incl[fr] += n
    out = [f"guest-thread samples: {total}", "-- self --"]
    out += [f"{100 * n / total:5.1f}%  {fr[:140]}" for fr, n in self_c.most_common(n_self)]
    out += ["-- inclusive --"]
    out += [f"{100 * n / total:5.1f}%  {fr[:140]}" for fr, n in incl.most_common(n_incl)]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("engine", choices=["wasmtime", "wasmer"])
    ap.add_argument("--python", default=sys.executable, help="python running the runner")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--even", type=int, default=0, help="evenly paced load of RATE records/s (ring16)")
    ap.add_argument("--runner-arg", action="append", default=[], help="an extra `wasm-bpf run` option")
    ap.add_argument("--perf", action="store_true",
                    help="perf record (CPU only, native frames: kernel, libpython, wasmtime, libffi) "
                         "instead of py-spy (which counts the idle epoll wait as well)")
    ap.add_argument("--native", action="store_true", help="py-spy --native (slow sampling)")
    ap.add_argument("--output", default=None, help="raw collapsed stacks (default bench/build/profile-ENGINE.txt)")
    args = ap.parse_args()
    pyspy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not args.perf and not os.path.exists(pyspy):
        sys.exit("py-spy not found: pip install py-spy")
    if args.perf and not shutil.which("perf"):
        sys.exit("perf not found: apt-get install linux-perf")
    rb.build()
    out = args.output or os.path.join(rb.BUILD, f"profile-{args.engine}.txt")
    c = rb.Consumer(args.engine, args.python)
    pace = ["-r", str(args.even), "-e"] if args.even else []
    lg = rb.Proc([rb.LOADGEN, *pace, "-d", str(args.seconds + 2)], stdin=subprocess.PIPE)
    _, pid = lg.wait_line(lambda l: l.strip().isdigit(), 5)
    p = rb.Proc(c.argv("bench", ["-p", pid, "-i", str(rb.IDLE_MS), "ring16" if args.even else "ring"],
                       args.runner_arg), env=c.env())
    p.wait_line(lambda l: l == "attached", 60)
    lg.p.stdin.write(b"g")
    lg.p.stdin.close()
    time.sleep(0.5)
    if args.perf:
        data = out + ".perf.data"
        pids = ",".join(str(x) for x in p.tree())
        subprocess.run(["perf", "record", "-q", "-F", "2999", "-g", "-o", data, "-p", pids, "--",
                        "sleep", str(args.seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
    else:
        cmd = [pyspy, "record", "-p", str(p.p.pid), "-d", str(int(args.seconds)), "-r", "250", "-f", "raw",
               "-o", out, "--threads", "--subprocesses"] + (["--native"] if args.native else [])
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    lg.reap(60)
    p.reap(120)
    print(f"received {p.json_line()['received']:,} records")
    if args.perf:
        for sort in ("dso", "dso,sym"):
            rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", sort, "--stdio",
                                  "-g", "none", "--percent-limit", "1.5"], capture_output=True, text=True)
            print("\n".join(l for l in rep.stdout.splitlines() if l.strip() and not l.startswith("#")))
    else:
        print(f"raw profile: {out}")
        print(top(out, 15, 20))
    return 0


if __name__ == "__main__":
    sys.exit(main())
