"""The cost of being scraped (`run --metrics`), for `make bench` (case "scrape").

Runs runqlat with its histogram config (examples/runqlat/metrics.toml) and
measures the CPU time of the runner's process tree over two windows of the
same length: one without scrapes, one scraped RATE times a second (over
HTTP, from this process, on one kept-alive connection as Prometheus does;
--new-connections opens one per scrape, like curl). cost = (CPU scraped -
CPU idle) / window: the share of one core that scraping takes. Also: the
scrapes' median wall time.

    .venv/bin/python bench/metrics_scrape.py [--engine wasmtime] [--seconds 10] [--rate 100]
"""
import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

from proctree import tree_cpu

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RUNQLAT = os.path.join(ROOT, "examples", "runqlat")
CONFIG = os.path.join(RUNQLAT, "metrics.toml")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read()


# What Prometheus 3.x asks for (UTF-8 names allowed, its default): OpenMetrics
# first, then the text format; and gzip
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
                     "application/openmetrics-text;version=0.0.1;q=0.4,"
                     "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1")


class _KeptAlive:
    def __init__(self, port: int, headers=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.headers = headers or {}

    def __call__(self, _url: str) -> bytes:
        self.conn.request("GET", "/metrics", headers=self.headers)
        resp = self.conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"scrape: HTTP {resp.status}")
        return body


def measure(python: str, engine: str, seconds: float = 10.0, rate: int = 100, wasm: str = None,
            keep_alive: bool = True, prometheus_headers: bool = False) -> dict:
    wasm = wasm or os.path.join(RUNQLAT, "runqlat.wasm")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([python, "-m", "wasm_bpf_cli", "run", "-q", "--engine", engine,
                             "--metrics", f"127.0.0.1:{port}", "--metrics-config", CONFIG, wasm, "-i", "3600"],
                            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 60
        while b"runqlat_run_queue_latency_seconds_count" not in _try(url):
            if proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"runqlat with --metrics did not come up: {proc.stderr.read().decode()}")
            time.sleep(0.1)
        time.sleep(1.0)  # start-up settles
        cpu0 = tree_cpu(proc.pid)
        time.sleep(seconds)
        idle = tree_cpu(proc.pid) - cpu0
        walls, size = [], 0
        headers = {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"} if prometheus_headers else None
        scrape = _KeptAlive(port, headers) if keep_alive else _scrape
        cpu0 = tree_cpu(proc.pid)
        t0 = time.monotonic()
        for i in range(int(seconds * rate)):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            s = time.perf_counter()
            size = len(scrape(url))
            walls.append(time.perf_counter() - s)
        elapsed = time.monotonic() - t0
        scraped = tree_cpu(proc.pid) - cpu0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    cost = scraped / elapsed - idle / seconds
    return {"engine": engine, "keep_alive": keep_alive, "prometheus_headers": prometheus_headers, "scrapes": len(walls), "seconds": elapsed, "rate": len(walls) / elapsed,
            "idle_cpu_pct": 100 * idle / seconds, "scraped_cpu_pct": 100 * scraped / elapsed,
            "scrape_cost_pct": 100 * cost, "cpu_ms_per_scrape": 1000 * cost * elapsed / len(walls),
            "scrape_wall_ms_p50": 1000 * statistics.median(walls), "scrape_bytes": size}


def _try(url: str) -> bytes:
    try:
        return _scrape(url)
    except OSError:
        return b""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--engine", default="wasmtime")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=int, default=100)
    ap.add_argument("--new-connections", action="store_true", help="a new TCP connection per scrape")
    ap.add_argument("--prometheus-headers", action="store_true",
                    help="ask as Prometheus does (OpenMetrics, gzip) instead of plain text")
    args = ap.parse_args(argv)
    print(json.dumps(measure(args.python, args.engine, args.seconds, args.rate,
                             keep_alive=not args.new_connections,
                             prometheus_headers=args.prometheus_headers), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
