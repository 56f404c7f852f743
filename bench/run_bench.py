#!/usr/bin/env python3
"""`make bench`: speed of the wasm-bpf runner against a native libbpf consumer.

Consumers (same BPF object examples/bench/bench.bpf.o, same load, same accounting):
  native    bench/build/native_consumer (C, libbpf ring_buffer__poll / perf_buffer__poll)
  wasmtime  `python3.11 -m wasm_bpf_cli run --engine wasmtime examples/bench/bench.wasm`
  wasmer    `python3.10 -m wasm_bpf_cli run --engine wasmer  examples/bench/bench.wasm`
  cpp       the upstream C++ runtime (WAMR), same bench.wasm: `--cpp PATH` (default
            ../shared/anchors/wasm-bpf-cpp if present); measured in the paced and even cases only

Cases (each figure the median of --runs runs, default 3; ratio to native):
  flat    loadgen calls getppid() flat out for FLAT_S: records/s delivered, loss
  paced   100,000/s for 10 s: consumer CPU (user+sys) per record, loss, p50/p99 latency
          (loadgen paces in bursts: the calls due every ~100 us, ~10 records per wake-up)
  even    evenly paced, one record every 10 us (100k/s) and every 100 us (10k/s), the
          clock busy-waited, for EVEN_S each (500,000 / 50,000 records): most records wake
          the consumer on their own. The 16 MiB ring `rb16`. CPU per record, loss,
          p50/p99 latency, peak RSS of the consumer (process tree); for the runners also
          100k/s with `--max-delivery-delay 1ms` (opt-in coalescing)
  stall   consumer SIGSTOPped while loadgen fills the 64 MiB ring (and overflows it),
          SIGCONT: drain rate (records from resume to the buffer left empty; latency
          of every 64th record only, so that the clock is not what is measured), the consumer's
          loss count (produced - received) against the kernel's drop counter
  perf    the perf-buffer program flat out: records/s, loss (producer-bound: every
          sample wakes the consumer)
  perfstall  as stall, on the perf buffer: loadgen pinned to CPU 0 fills that CPU's
          buffer (64 pages, ~3,276 samples) and overflows it by 20%
  mapwalk 10,000-entry hash map, get-next-key + lookup: entries/s
  startup spawn to "attached" for bootstrap and bench, cold (--no-cache if the
          runner has it; else the first run: there is no module cache) and warm;
          peak RSS (ru_maxrss) of the runner for bootstrap; `wasm-bpf --help` wall time
  ports   bootstrap's guest in C, Rust and Go (examples/rust_bootstrap, go_bootstrap):
          module size, spawn to the header line (attached), cold and warm, and
          the CPU time of such a run (start to exit after SIGINT)

Prints a table and writes bench/results.json. --quick: 1 run each, short loads.
"""
import argparse
import json
import os
import queue
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(HERE, "build")
EXAMPLE = os.path.join(ROOT, "examples", "bench")
# Private copies made by build(): others may `make clean` the examples meanwhile.
BENCH_WASM = os.path.join(BUILD, "bench.wasm")
BENCH_OBJ = os.path.join(BUILD, "bench.bpf.o")
BOOTSTRAP_WASM = os.path.join(BUILD, "bootstrap.wasm")
BOOTSTRAP_DIR = os.path.join(ROOT, "examples", "bootstrap")
RUNQLAT_DIR = os.path.join(ROOT, "examples", "runqlat")
RUNQLAT_WASM = os.path.join(BUILD, "runqlat.wasm")
# bootstrap's guest in three languages (the "ports" case)
PORTS = ("bootstrap", "rust_bootstrap", "go_bootstrap")
LOADGEN = os.path.join(BUILD, "loadgen")
NATIVE = os.path.join(BUILD, "native_consumer")

RING_BYTES = 64 * 1024 * 1024  # examples/bench/bench.h BENCH_RING_BYTES
RING_RECORDS = RING_BYTES // (64 + 8)  # 64-byte records + 8-byte ringbuf headers
IDLE_MS = 300  # a consumer exits this long after its last record
CASES = ("flat", "paced", "even", "stall", "perf", "perfstall", "mapwalk", "startup", "scrape", "ports")
CPP_CASES = ("paced", "even")  # what the C++ runtime is measured in
EVEN_RATES = (100000, 10000)  # records/s of the evenly paced case
EVEN_S = 5.0
EVEN_DELAY = "1ms"  # the coalescing variant of even 100k/s (runners only)
CPP_DEFAULT = os.path.join(os.path.dirname(ROOT), "shared", "anchors", "wasm-bpf-cpp")  # ../shared beside the repository
# perf buffer: 64 pages per CPU (the runner's PerfBuffer and native_consumer), a
# sample = 8-byte header + 4-byte size + 64 bytes, 8-aligned = 80 bytes
PERF_RECORDS_PER_CPU = 64 * 4096 // 80
PERF_STALL_CALLS = int(PERF_RECORDS_PER_CPU * 1.2)


def log(msg: str) -> None:
    sys.stderr.write(f"[bench] {msg}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------- building
def build(ports: bool = False) -> None:
    os.makedirs(BUILD, exist_ok=True)
    dirs = [(EXAMPLE, ("bench.wasm", "bench.bpf.o")), (BOOTSTRAP_DIR, ("bootstrap.wasm",)),
            (RUNQLAT_DIR, ("runqlat.wasm",))]
    if ports:
        dirs += [(os.path.join(ROOT, "examples", p), (p + ".wasm",)) for p in PORTS[1:]]
    for src_dir, names in dirs:
        subprocess.run(["make", "-s", "-C", src_dir, f"PYTHON={sys.executable}"], check=True)
        for name in names:
            shutil.copyfile(os.path.join(src_dir, name), os.path.join(BUILD, name + ".tmp"))
            os.replace(os.path.join(BUILD, name + ".tmp"), os.path.join(BUILD, name))
    targets = [
        (LOADGEN, [os.path.join(HERE, "loadgen.c")], []),
        (NATIVE, [os.path.join(HERE, "native_consumer.c")], ["-I", EXAMPLE, "-lbpf"]),
    ]
    deps = [os.path.join(EXAMPLE, n) for n in ("bench.h", "bench_stats.h")]
    for out, srcs, flags in targets:
        newest = max(os.path.getmtime(p) for p in srcs + deps)
        if not os.path.exists(out) or os.path.getmtime(out) < newest:
            subprocess.run(["gcc", "-O2", "-Wall", "-o", out, *srcs, *flags], check=True)


# ---------------------------------------------------------------- consumers
class Consumer:
    def __init__(self, name: str, python: str = ""):
        self.name = name
        self.python = python

    def argv(self, module: str, guest_args, extra_runner=()):
        if self.name == "cpp":
            return [self.python, BENCH_WASM if module == "bench" else BOOTSTRAP_WASM, *guest_args]
        if self.name == "native":
            assert module == "bench"
            return [NATIVE, *guest_args[:-1], BENCH_OBJ, guest_args[-1]]
        wasm = BENCH_WASM if module == "bench" else os.path.join(BUILD, module + ".wasm")
        return [self.python, "-m", "wasm_bpf_cli", "run", "-q", "--engine", self.name,
                *extra_runner, wasm, *guest_args]

    def env(self):
        env = dict(os.environ, NO_COLOR="1")
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        return env


def tai_offset_ns() -> int:
    """CLOCK_TAI - CLOCK_REALTIME, whole seconds (0 unless NTP set it)."""
    return round((time.clock_gettime_ns(time.CLOCK_TAI) - time.time_ns()) / 1e9) * 1_000_000_000


class Proc:
    """A child whose stdout lines are collected by a thread and whose own
    rusage is taken with wait4 (not RUSAGE_CHILDREN: exactly this child)."""

    def __init__(self, argv, env=None, stdin=None, cpu=None):
        self.t_spawn = time.monotonic()
        pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
        self.p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env, cwd=ROOT, preexec_fn=pin)
        self.lines: "queue.Queue[tuple]" = queue.Queue()
        self.all_lines = []
        self.stderr = b""
        self.rusage = None
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put((time.monotonic(), line.decode(errors="replace").rstrip("\n")))
        self.lines.put((time.monotonic(), None))

    def _read_err(self):
        self.stderr = self.p.stderr.read()

    def wait_line(self, pred, timeout: float):
        end = time.monotonic() + timeout
        while True:
            try:
                t, line = self.lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"timed out waiting for output of {self.p.args}") from None
            if line is None:
                raise RuntimeError(f"{self.p.args[:8]} ended early: {self.stderr.decode()[-2000:]}")
            self.all_lines.append(line)
            if pred(line):
                return t, line

    def tree(self):
        """This child and its descendants (wasm-bpf on wasmer forks a
        supervised child that runs the guest)."""
        pids, todo = [], [self.p.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            try:
                for tid in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{tid}/children") as f:
                        todo.extend(int(x) for x in f.read().split())
            except OSError:
                pass
        return pids

    @staticmethod
    def _stat(pid: int):
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()

    def cpu_s(self) -> float:
        """user+sys so far of the whole process tree, from /proc (clock ticks),
        reaped descendants included."""
        ticks = 0
        for i, pid in enumerate(self.tree()):
            try:
                fields = self._stat(pid)
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        return ticks / os.sysconf("SC_CLK_TCK")

    def signal_tree(self, sig, pids=None) -> None:
        for pid in pids if pids is not None else self.tree():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def stopped(self) -> bool:
        states = []
        for pid in self.tree():
            try:
                states.append(self._stat(pid)[0])
            except OSError:
                pass
        return all(s in ("T", "t") for s in states)

    def reap(self, timeout: float):
        """Wait for exit (SIGINT at the deadline, SIGKILL 5 s later); rusage of the child."""
        end = time.monotonic() + timeout
        signalled = None
        while True:
            try:
                pid, status, ru = os.wait4(self.p.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: no rusage
                self.p.wait()
                break
            if pid:
                self.p.returncode = os.waitstatus_to_exitcode(status)
                self.rusage = ru
                break
            now = time.monotonic()
            if now > end and signalled is None:
                log(f"{os.path.basename(self.p.args[0])}: no exit by itself, SIGINT")
                self.p.send_signal(signal.SIGINT)
                signalled = now
            elif signalled is not None and now - signalled > 5:
                self.p.kill()
            time.sleep(0.005)
        # drain the rest of stdout
        while True:
            t, line = self.lines.get(timeout=10)
            if line is None:
                break
            self.all_lines.append(line)
        return self.rusage

    def json_line(self):
        for line in reversed(self.all_lines):
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"no result line from {self.p.args[:8]}; stderr: {self.stderr.decode()[-2000:]}")


def run_stream(consumer: Consumer, mode: str, load_args, stall: bool = False,
               timeout: float = 60.0, sample_every: int = 1, load_cpu=None, extra=()) -> dict:
    """One buffer run: loadgen waits, the consumer attaches to its pid, (stall:
    is stopped), loadgen runs to the end, (stall: consumer resumed), the
    consumer exits IDLE_MS after its last record and reports."""
    lg = Proc([LOADGEN, *load_args], stdin=subprocess.PIPE, cpu=load_cpu)
    _, pid = lg.wait_line(lambda l: l.strip().isdigit(), 5)
    c = Proc(consumer.argv("bench", ["-p", pid, "-i", str(IDLE_MS), "-T", str(tai_offset_ns()),
                                      "-s", str(sample_every), mode], extra),
             env=consumer.env())
    try:
        t_att, _ = c.wait_line(lambda l: l == "attached", 60)
        if stall:
            c.signal_tree(signal.SIGSTOP)  # the runner may have forked a guest process
            while not c.stopped():
                time.sleep(0.001)
        cpu0 = c.cpu_s()
        t_release = time.time_ns()
        lg.p.stdin.write(b"g")
        lg.p.stdin.close()
        lg.reap(timeout)
        load = lg.json_line()
        t_resume = None
        if stall:
            time.sleep(0.2)
            pids = c.tree()[::-1]  # read /proc before the clock starts; the guest's process first
            t_resume = time.time_ns()
            c.signal_tree(signal.SIGCONT, pids)
        ru = c.reap(timeout)
    finally:
        for p in (lg, c):
            if p.p.returncode is None:
                p.p.kill()
                p.reap(5)
    res = c.json_line()
    if ru is None:
        raise RuntimeError("no rusage of the consumer")
    cpu = ru.ru_utime + ru.ru_stime - cpu0  # wait4: the child and its reaped descendants
    res.update(calls=load["calls"], load_s=load["duration_s"], load_rate=load["rate"],
               attach_s=t_att - c.t_spawn, cpu_s=cpu, maxrss_kb=ru.ru_maxrss,
               exit_code=c.p.returncode,
               cpu_us_per_record=cpu * 1e6 / res["received"] if res["received"] else None)
    start = t_resume if stall else t_release
    span = (res["t_last_real_ns"] - start) / 1e9
    res["rate"] = res["received"] / span if res["received"] and span > 0 else 0.0
    res["loss"] = load["calls"] - res["received"]
    if stall:
        res["drain_rate"] = res["rate"]
        res["resume_to_first_us"] = (res["t_first_real_ns"] - t_resume) / 1e3
        res["drain_rate_callbacks"] = (res["received"] / res["duration_s"]
                                       if res["duration_s"] > 0 else 0.0)
    return res


def run_mapwalk(consumer: Consumer, walk_ms: int) -> dict:
    c = Proc(consumer.argv("bench", ["-w", str(walk_ms), "mapwalk"]), env=consumer.env())
    c.reap(60)
    if c.p.returncode != 0:
        raise RuntimeError(f"mapwalk failed: {c.stderr.decode()[-2000:]}")
    return c.json_line()


def run_startup(consumer: Consumer, module: str, extra_runner=()) -> dict:
    """Spawn to "attached" (bench) or to bootstrap's header line, then SIGINT."""
    if module == "bench":
        argv = consumer.argv("bench", ["-p", "1", "ring"], extra_runner)
        pred = lambda l: l == "attached"  # noqa: E731
    else:  # bootstrap or one of its ports: the header line follows the attach
        argv = consumer.argv(module, [], extra_runner)
        pred = lambda l: l.startswith("TIME")  # noqa: E731
    c = Proc(argv, env=consumer.env())
    try:
        t, _ = c.wait_line(pred, 60)
    finally:
        c.p.send_signal(signal.SIGINT)
        ru = c.reap(15)
    return {"attach_s": t - c.t_spawn, "maxrss_kb": ru.ru_maxrss if ru else None, "exit_code": c.p.returncode,
            # CPU of the whole run (start, attach, SIGINT, teardown): less bent by a busy machine than wall time
            "cpu_s": ru.ru_utime + ru.ru_stime if ru else None}


def help_time(consumer: Consumer) -> float:
    script = os.path.join(os.path.dirname(consumer.python), "wasm-bpf")
    argv = [script, "--help"] if os.path.exists(script) else [consumer.python, "-m", "wasm_bpf_cli", "--help"]
    t0 = time.monotonic()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   env=consumer.env(), cwd=ROOT)
    return time.monotonic() - t0


def has_no_cache(consumer: Consumer) -> bool:
    out = subprocess.run([consumer.python, "-m", "wasm_bpf_cli", "run", "--help"], capture_output=True,
                         text=True, env=consumer.env(), cwd=ROOT).stdout
    return "--no-cache" in out


# ---------------------------------------------------------------- cases
def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def even_case(rate: int) -> str:
    return f"even{rate // 1000}k"


def measure(consumers, cases, runs: int, quick: bool, paced_rate: int = 100000,
            paced_s: float = None, runner_args=()) -> dict:
    flat_s = 1.0 if quick else 3.0
    even_s = 2.0 if quick else EVEN_S
    paced_s = paced_s or (2.0 if quick else 10.0)
    stall_calls = int(RING_RECORDS * 1.25)  # overflow the ring by a quarter
    walk_ms = 300 if quick else 1000
    out = {}  # case -> consumer -> {"runs": [...], metric: median}

    def record(case, cname, runs_list, metrics):
        entry = {"runs": runs_list}
        for key in metrics:
            entry[key] = med([r.get(key) for r in runs_list])
        out.setdefault(case, {})[cname] = entry
        log(f"{case:8} {cname:8} " + " ".join(f"{k}={_fmt(entry[k])}" for k in metrics))

    for c in consumers:
        if c.name == "cpp":
            mine = [k for k in cases if k in CPP_CASES]
        else:
            mine = cases
        extra = runner_args if c.name in ("wasmtime", "wasmer") else ()
        if "flat" in mine:
            rs = [run_stream(c, "ring", ["-d", str(flat_s)]) for _ in range(runs)]
            record("flat", c.name, rs, ["rate", "received", "calls", "loss", "kernel_drops", "lost",
                                        "gaps", "p99_us", "cpu_us_per_record"])
        if "paced" in mine:
            rs = [run_stream(c, "ring", ["-r", str(paced_rate), "-d", str(paced_s)], extra=extra)
                  for _ in range(runs)]
            record("paced", c.name, rs, ["cpu_us_per_record", "received", "calls", "loss", "gaps",
                                         "kernel_drops", "p50_us", "p99_us", "max_us", "load_rate"])
        if "even" in mine:
            for rate in EVEN_RATES:
                rs = [run_stream(c, "ring16", ["-r", str(rate), "-e", "-d", str(even_s)], extra=extra)
                      for _ in range(runs)]
                for r in rs:
                    r["maxrss_mb"] = r["maxrss_kb"] / 1024
                    r["records_per_poll"] = r["received"] / r["polls"] if r.get("polls") else None
                record(even_case(rate), c.name, rs, ["cpu_us_per_record", "received", "calls", "loss",
                                                     "gaps", "p50_us", "p99_us", "max_us", "maxrss_mb",
                                                     "records_per_poll", "load_rate"])
            if c.name in ("wasmtime", "wasmer"):
                rate = EVEN_RATES[0]
                rs = [run_stream(c, "ring16", ["-r", str(rate), "-e", "-d", str(even_s)],
                                 extra=tuple(extra) + ("--max-delivery-delay", EVEN_DELAY)) for _ in range(runs)]
                for r in rs:
                    r["records_per_poll"] = r["received"] / r["polls"] if r.get("polls") else None
                record(even_case(rate) + "_delay", c.name, rs, ["cpu_us_per_record", "received", "calls", "loss",
                                                                "gaps", "p50_us", "p99_us", "max_us",
                                                                "records_per_poll", "load_rate"])
        if "stall" in mine:
            rs = [run_stream(c, "ring", ["-n", str(stall_calls)], stall=True, sample_every=64) for _ in range(runs)]
            for r in rs:
                r["loss_matches_kernel"] = (r["lost"] == r["kernel_drops"]
                                            and r["calls"] == r["received"] + r["kernel_drops"])
            record("stall", c.name, rs, ["drain_rate", "drain_rate_callbacks", "received", "calls",
                                         "lost", "kernel_drops", "gaps"])
            out["stall"][c.name]["loss_matches_kernel"] = all(r["loss_matches_kernel"] for r in rs)
        if "perf" in mine:
            rs = [run_stream(c, "perf", ["-d", str(flat_s)]) for _ in range(runs)]
            record("perf", c.name, rs, ["rate", "received", "calls", "loss", "kernel_drops", "perf_lost",
                                        "gaps", "cpu_us_per_record"])
        if "perfstall" in mine:
            # loadgen pinned to CPU 0: one per-CPU buffer fills (and overflows a little)
            n = PERF_STALL_CALLS
            rs = [run_stream(c, "perf", ["-n", str(n)], stall=True, sample_every=64, load_cpu=0)
                  for _ in range(runs)]
            for r in rs:
                r["loss_matches_kernel"] = (r["lost"] == r["kernel_drops"]
                                            and r["calls"] == r["received"] + r["kernel_drops"])
            record("perfstall", c.name, rs, ["drain_rate", "drain_rate_callbacks", "received", "calls",
                                             "lost", "kernel_drops"])
            out["perfstall"][c.name]["loss_matches_kernel"] = all(r["loss_matches_kernel"] for r in rs)
        if "mapwalk" in mine:
            rs = [run_mapwalk(c, walk_ms) for _ in range(runs)]
            record("mapwalk", c.name, rs, ["entries_per_s", "fill_per_s"])
        if "scrape" in mine and c.name not in ("native", "cpp"):
            # `run --metrics`: runqlat's histogram scraped 100 times a second (metrics_scrape.py)
            from metrics_scrape import measure as measure_scrape

            # plain (curl, a scraper that sends no Accept) and as Prometheus asks
            # (OpenMetrics listed first, gzip)
            for case, prometheus in (("scrape", False), ("scrape_prom", True)):
                rs = [measure_scrape(c.python, c.name, seconds=3.0 if quick else 10.0, rate=100, wasm=RUNQLAT_WASM,
                                     prometheus_headers=prometheus) for _ in range(runs)]
                record(case, c.name, rs, ["scrape_cost_pct", "cpu_ms_per_scrape", "scrape_wall_ms_p50", "rate"])
        if "startup" in mine:
            extra = tuple(extra)
            cache = c.name != "native" and has_no_cache(c)
            if cache:
                extra += ("--no-cache",)
            res = {"module_cache": "--no-cache" if cache else ("n/a" if c.name == "native" else "none")}
            for module in (("bench",) if c.name == "native" else ("bench", "bootstrap")):
                # cold: fresh process, no module cache (--no-cache, or nothing to cache);
                # warm: after a priming run, the cache (if any) filled
                cold = [run_startup(c, module, extra) for _ in range(runs)]
                run_startup(c, module, runner_args)
                warm = [run_startup(c, module, runner_args) for _ in range(runs)]
                res[f"{module}_cold_s"] = med([r["attach_s"] for r in cold])
                res[f"{module}_warm_s"] = med([r["attach_s"] for r in warm])
                res[f"{module}_maxrss_mb"] = med([r["maxrss_kb"] / 1024 for r in warm if r["maxrss_kb"]])
                res[f"{module}_runs"] = {"cold": cold, "warm": warm}
            if c.name != "native":
                res["help_s"] = med([help_time(c) for _ in range(max(runs, 3))])
            out.setdefault("startup", {})[c.name] = res
            log(f"startup  {c.name:8} " + " ".join(f"{k}={_fmt(v)}" for k, v in res.items()
                                                     if not k.endswith("_runs")))
        if "ports" in mine and c.name not in ("native", "cpp"):
            res = {}
            for module in PORTS:
                res[f"{module}_size_kb"] = os.path.getsize(os.path.join(BUILD, module + ".wasm")) / 1024
                cold = [run_startup(c, module, ("--no-cache",)) for _ in range(runs)]
                run_startup(c, module)
                warm = [run_startup(c, module) for _ in range(runs)]
                res[f"{module}_cold_s"] = med([r["attach_s"] for r in cold])
                res[f"{module}_warm_s"] = med([r["attach_s"] for r in warm])
                res[f"{module}_maxrss_mb"] = med([r["maxrss_kb"] / 1024 for r in warm if r["maxrss_kb"]])
                res[f"{module}_cold_cpu_s"] = med([r["cpu_s"] for r in cold])
                res[f"{module}_warm_cpu_s"] = med([r["cpu_s"] for r in warm])
            out.setdefault("ports", {})[c.name] = res
            log(f"ports    {c.name:8} " + " ".join(f"{k}={_fmt(v)}" for k, v in res.items()))
    return out


# ---------------------------------------------------------------- report
def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return f"{v:,}"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.2f}M"
    if a >= 1e4:
        return f"{v / 1e3:.0f}k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


ROWS = [
    # (label, case, key, unit, scale)
    ("flat out: records/s delivered", "flat", "rate", "rec/s", 1),
    ("flat out: loss (calls - received)", "flat", "loss", "rec", 1),
    ("flat out: CPU per record", "flat", "cpu_us_per_record", "us", 1),
    ("paced 100k/s: CPU per record", "paced", "cpu_us_per_record", "us", 1),
    ("paced 100k/s: loss", "paced", "loss", "rec", 1),
    ("paced 100k/s: gaps", "paced", "gaps", "", 1),
    ("paced 100k/s: p50 latency", "paced", "p50_us", "us", 1),
    ("paced 100k/s: p99 latency", "paced", "p99_us", "us", 1),
    ("even 100k/s: CPU per record", "even100k", "cpu_us_per_record", "us", 1),
    ("even 100k/s: loss", "even100k", "loss", "rec", 1),
    ("even 100k/s: p50 latency", "even100k", "p50_us", "us", 1),
    ("even 100k/s: p99 latency", "even100k", "p99_us", "us", 1),
    ("even 100k/s: records per poll", "even100k", "records_per_poll", "", 1),
    ("even 100k/s: peak RSS (16 MiB ring)", "even100k", "maxrss_mb", "MB", 1),
    ("even 100k/s, 1 ms delay: CPU per record", "even100k_delay", "cpu_us_per_record", "us", 1),
    ("even 100k/s, 1 ms delay: loss", "even100k_delay", "loss", "rec", 1),
    ("even 100k/s, 1 ms delay: p50 latency", "even100k_delay", "p50_us", "us", 1),
    ("even 100k/s, 1 ms delay: p99 latency", "even100k_delay", "p99_us", "us", 1),
    ("even 100k/s, 1 ms delay: records/poll", "even100k_delay", "records_per_poll", "", 1),
    ("even 10k/s: CPU per record", "even10k", "cpu_us_per_record", "us", 1),
    ("even 10k/s: loss", "even10k", "loss", "rec", 1),
    ("even 10k/s: p50 latency", "even10k", "p50_us", "us", 1),
    ("even 10k/s: p99 latency", "even10k", "p99_us", "us", 1),
    ("even 10k/s: peak RSS (16 MiB ring)", "even10k", "maxrss_mb", "MB", 1),
    ("stall: drain rate (resume->empty)", "stall", "drain_rate", "rec/s", 1),
    ("stall: drain rate (1st->last cb)", "stall", "drain_rate_callbacks", "rec/s", 1),
    ("stall: consumer's lost count", "stall", "lost", "rec", 1),
    ("stall: kernel drop counter", "stall", "kernel_drops", "rec", 1),
    ("stall: lost == kernel drops", "stall", "loss_matches_kernel", "", 1),
    ("perf flat out: records/s", "perf", "rate", "rec/s", 1),
    ("perf flat out: loss", "perf", "loss", "rec", 1),
    ("perf stall: drain rate (resume->empty)", "perfstall", "drain_rate", "rec/s", 1),
    ("perf stall: drain rate (1st->last cb)", "perfstall", "drain_rate_callbacks", "rec/s", 1),
    ("perf stall: received (of 3,931 calls)", "perfstall", "received", "rec", 1),
    ("perf stall: lost == kernel drops", "perfstall", "loss_matches_kernel", "", 1),
    ("map walk: entries/s", "mapwalk", "entries_per_s", "ent/s", 1),
    ("start->attached bench, cold", "startup", "bench_cold_s", "ms", 1000),
    ("start->attached bench, warm", "startup", "bench_warm_s", "ms", 1000),
    ("start->attached bootstrap, cold", "startup", "bootstrap_cold_s", "ms", 1000),
    ("start->attached bootstrap, warm", "startup", "bootstrap_warm_s", "ms", 1000),
    ("peak RSS bootstrap", "startup", "bootstrap_maxrss_mb", "MB", 1),
    ("wasm-bpf --help", "startup", "help_s", "ms", 1000),
    ("metrics scraped 100/s: CPU", "scrape", "scrape_cost_pct", "% core", 1),
    ("metrics: CPU per scrape", "scrape", "cpu_ms_per_scrape", "ms", 1),
    ("metrics: scrape wall time p50", "scrape", "scrape_wall_ms_p50", "ms", 1),
    ("metrics as Prometheus asks 100/s: CPU", "scrape_prom", "scrape_cost_pct", "% core", 1),
    ("metrics as Prometheus asks: CPU/scrape", "scrape_prom", "cpu_ms_per_scrape", "ms", 1),
] + [row for p in PORTS for row in (
    (f"{p}: module size", "ports", f"{p}_size_kb", "KiB", 1),
    (f"{p}: start->attached, cold", "ports", f"{p}_cold_s", "ms", 1000),
    (f"{p}: start->attached, warm", "ports", f"{p}_warm_s", "ms", 1000),
    (f"{p}: CPU of a run, cold", "ports", f"{p}_cold_cpu_s", "ms", 1000),
    (f"{p}: CPU of a run, warm", "ports", f"{p}_warm_cpu_s", "ms", 1000),
    (f"{p}: peak RSS", "ports", f"{p}_maxrss_mb", "MB", 1))]


def table(results: dict, names, paced_rate: int = 100000) -> str:
    engines = [n for n in names if n != "native"]
    head = ["figure", "unit"] + list(names) + [f"{e}/native" for e in engines]
    rows = [head]
    for label, case, key, unit, scale in ROWS:
        label = label.replace("paced 100k/s", f"paced {paced_rate / 1000:g}k/s")
        if case not in results:
            continue
        vals = {}
        for n in names:
            v = results[case].get(n, {}).get(key)
            vals[n] = v * scale if isinstance(v, (int, float)) and not isinstance(v, bool) else v
        if all(v is None for v in vals.values()):
            continue
        row = [label, unit] + [_fmt(vals[n]) for n in names]
        nat = vals.get("native")
        # startup rows of bootstrap compare with the native bench consumer's attach time
        if nat is None and case == "startup" and key.startswith("bootstrap_") and key.endswith("_s"):
            nat = results["startup"].get("native", {}).get("bench_warm_s")
            nat = nat * scale if nat is not None else None
        for e in engines:
            v = vals[e]
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and isinstance(nat, (int, float)) \
                and not isinstance(nat, bool) and nat
            row.append(f"{v / nat:.3g}x" if ok else "-")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[j]) if j == 0 else c.rjust(widths[j]) for j, c in enumerate(r)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python310", help="python of the 3.10 venv (wasmer engine)")
    ap.add_argument("--python311", default=sys.executable, help="python of the wasmtime venv (default: this one)")
    ap.add_argument("--engines", default="native,cpp,wasmtime,wasmer",
                    help="comma-separated subset of native,cpp,wasmtime,wasmer")
    ap.add_argument("--cpp", default=CPP_DEFAULT, help="the upstream C++ runtime (skipped if absent)")
    ap.add_argument("--runner-arg", action="append", default=[],
                    help="an extra `wasm-bpf run` option for wasmtime and wasmer (repeatable)")
    ap.add_argument("--only", default=",".join(CASES), help="comma-separated subset of " + ",".join(CASES))
    ap.add_argument("--runs", type=int, default=None, help="runs per figure (default 3, --quick 1)")
    ap.add_argument("--quick", action="store_true", help="1 run each, short loads (smoke test)")
    ap.add_argument("--paced-rate", type=int, default=100000, help="records/s of the paced case")
    ap.add_argument("--paced-seconds", type=float, default=None, help="length of the paced case (10, --quick 2)")
    ap.add_argument("--output", default=os.path.join(HERE, "results.json"))
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args(argv)

    if os.geteuid() != 0:
        log("needs root (BPF)")
        return 1
    cases = [c.strip() for c in args.only.split(",") if c.strip()]
    bad = [c for c in cases if c not in CASES]
    if bad:
        ap.error(f"unknown case(s): {', '.join(bad)}")
    runs = args.runs or (1 if args.quick else 3)
    names = [n.strip() for n in args.engines.split(",") if n.strip()]
    consumers = []
    for n in names:
        if n == "native":
            consumers.append(Consumer("native"))
        elif n == "cpp":
            if not os.access(args.cpp, os.X_OK):
                log(f"no C++ runtime at {args.cpp}: skipping cpp")
                continue
            consumers.append(Consumer("cpp", args.cpp))
        elif n == "wasmtime":
            consumers.append(Consumer("wasmtime", args.python311))
        elif n == "wasmer":
            py = args.python310 or shutil.which("python3.10")
            if not py or not os.path.exists(py):
                log("no --python310: skipping wasmer")
                continue
            consumers.append(Consumer("wasmer", py))
        else:
            ap.error(f"unknown engine {n}")
    names = [c.name for c in consumers]
    if not args.no_build:
        build(ports="ports" in cases)
    for c in consumers:
        if c.python and c.name != "cpp":  # an installed package has its bytecode compiled: measure that, not
            # a recompile of every module edited since (PYTHONDONTWRITEBYTECODE keeps them stale)
            subprocess.run([c.python, "-m", "compileall", "-q", os.path.join(ROOT, "wasm_bpf_cli")], check=True)
    t0 = time.monotonic()
    results = measure(consumers, cases, runs, args.quick, args.paced_rate, args.paced_seconds,
                      tuple(args.runner_arg))
    meta = {
        "runs": runs, "quick": args.quick, "cases": cases, "engines": names,
        "paced_rate": args.paced_rate, "ring_bytes": RING_BYTES, "ring_records": RING_RECORDS, "record_bytes": 64,
        "kernel": os.uname().release, "cpus": os.cpu_count(),
        "pythons": {c.name: c.python for c in consumers if c.python and c.name != "cpp"},
        "cpp": args.cpp if "cpp" in names else None, "runner_args": args.runner_arg,
        "elapsed_s": time.monotonic() - t0,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with open(args.output, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    print(table(results, names, args.paced_rate))
    print(f"\n{runs} run(s) per figure (median); {meta['elapsed_s']:.0f} s; results in "
          f"{os.path.relpath(args.output, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
