"""`run --metrics`: the endpoint scraped over HTTP during real runs on the
kernel, parsed with prometheus_client's own parser; the start-up errors.
Runs on both engines (WASM_BPF_ENGINE)."""
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ENGINE, ROOT, cli_env, example, finish_process, guest, run_cli, veth_pair, wasm_bpf_cmd

pytestmark = [pytest.mark.kernel, pytest.mark.engine]

RUNQLAT_CONFIG = os.path.join(ROOT, "examples", "runqlat", "metrics.toml")
SOCKFILTER_CONFIG = os.path.join(ROOT, "examples", "sockfilter", "metrics.toml")
HISTOGRAM = "runqlat_run_queue_latency_seconds"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict:
    """{family name: Metric} of one scrape."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def scrape_until(port: int, ready, proc=None, timeout: float = 30.0) -> dict:
    """Scrape until `ready(families)` is true (the endpoint comes up, the
    guest loads its objects); fail with what was last seen, or as soon as
    `proc` (a CLI process or a Runner) has ended."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        if isinstance(proc, subprocess.Popen) and proc.poll() is not None:
            out, err = finish_process(proc)
            pytest.fail(f"the runner exited ({proc.returncode}) early: {out}\nstderr: {err}")
        if proc is not None and not isinstance(proc, subprocess.Popen):
            ended = proc.wait(0)  # raises what kept the guest from running
            assert ended is None, f"the guest ended early: {ended}"
        try:
            last = scrape(port)
            if ready(last):
                return last
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"no ready scrape from port {port} in {timeout} s; last: {last and sorted(last)}")


def value(families: dict, family: str, sample: str, **labels) -> float:
    for s in families[family].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return 0.0


def histogram(families: dict):
    """([(le, cumulative count)], _count) of the runqlat histogram."""
    samples = families[HISTOGRAM].samples
    buckets = [(float(s.labels["le"]), s.value) for s in samples if s.name == HISTOGRAM + "_bucket"]
    count = [s.value for s in samples if s.name == HISTOGRAM + "_count"]
    return buckets, (count[0] if count else None)


def start_cli(*args):
    return subprocess.Popen(wasm_bpf_cmd("run", "-q", *args), env=cli_env(), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_cli(proc, expect=0):
    proc.send_signal(signal.SIGINT)
    out, err = finish_process(proc, 30)
    assert proc.returncode == expect, f"exit {proc.returncode}: {out}\nstderr: {err}"
    return out, err


def _has_histogram(families) -> bool:
    return HISTOGRAM in families and histogram(families)[1]


def check_runqlat(port, proc):
    first = scrape_until(port, _has_histogram, proc)
    buckets, count = histogram(first)
    assert len(buckets) == 27 and buckets[-1][0] == float("inf"), buckets  # 26 log2 slots + Inf
    assert [le for le, _c in buckets] == sorted(le for le, _c in buckets)
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), f"not cumulative: {buckets}"
    assert buckets[-1][1] == count > 0
    assert buckets[0][0] == pytest.approx(2e-6)  # slot 0 holds 0..1 us; the unit is seconds
    time.sleep(1.0)  # the scheduler switches tasks many times a second
    later = scrape(port)
    assert histogram(later)[1] > count, (count, histogram(later)[1])
    assert value(later, "wasm_bpf_programs_attached", "wasm_bpf_programs_attached") == 3
    assert value(later, "wasm_bpf_objects_loaded", "wasm_bpf_objects_loaded") == 1
    info = [s.labels for s in later["wasm_bpf_guest_info"].samples]
    assert info and info[0]["module"] == "runqlat.wasm" and info[0]["engine"] == ENGINE
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", info[0]["digest"])
    assert value(later, "wasm_bpf_metrics_scrape_errors", "wasm_bpf_metrics_scrape_errors_total",
                 map="hist_total") == 0
    return later


def test_runqlat_histogram_grows_between_scrapes(no_bpf_leaks):
    port = free_port()
    proc = start_cli("--metrics", f"127.0.0.1:{port}", "--metrics-config", RUNQLAT_CONFIG, "--bpf-stats",
                     example("runqlat"), "-i", "1")
    try:
        families = check_runqlat(port, proc)
        runs = {s.labels["program"]: s.value for s in families["wasm_bpf_program_runs"].samples}
        assert runs.get("handle_sched_switch", 0) > 0, runs  # --bpf-stats: counted by the kernel
        memory = value(families, "wasm_bpf_guest_memory_bytes", "wasm_bpf_guest_memory_bytes")
        assert memory > 0 and memory % 65536 == 0
    finally:
        if proc.poll() is None:
            stop_cli(proc)
    with pytest.raises(OSError):  # the endpoint is gone with the runner
        scrape(port)


def test_embedded_config_is_used(tmp_path, no_bpf_leaks):
    module = tmp_path / "runqlat.wasm"
    shutil.copy(example("runqlat"), module)
    embedded = run_cli("metrics", "embed", RUNQLAT_CONFIG, str(module))
    assert embedded.returncode == 0, embedded.stderr
    shown = run_cli("metrics", "show", str(module))
    assert shown.stdout == open(RUNQLAT_CONFIG).read()
    port = free_port()
    proc = start_cli("--metrics", f"127.0.0.1:{port}", str(module), "-i", "1")
    try:
        check_runqlat(port, proc)
    finally:
        if proc.poll() is None:
            stop_cli(proc)


def test_packet_counter_rises_by_the_packets_sent(no_bpf_leaks):
    with veth_pair("mx", "10.213.11") as veth:
        port = free_port()
        proc = start_cli("--metrics", f"127.0.0.1:{port}", "--metrics-config", SOCKFILTER_CONFIG,
                         example("sockfilter"), "-i", "1", veth["dev"])
        family, sample = "sockfilter_packets", "sockfilter_packets_total"
        try:
            scrape_until(port, lambda f: value(f, "wasm_bpf_programs_attached",
                                               "wasm_bpf_programs_attached") == 1, proc)
            before = value(scrape(port), family, sample, protocol="udp")
            sent = 25
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for _ in range(sent):
                    s.sendto(b"wasm-bpf metrics test", (veth["peer_addr"], 9))
            after = scrape_until(port, lambda f: value(f, family, sample, protocol="udp") >= before + sent,
                                 proc, timeout=10)
            assert value(after, family, sample, protocol="udp") >= before + sent
            assert family in after and after[family].type == "counter"
        finally:
            if proc.poll() is None:
                stop_cli(proc)


# -- through the Python API: the counters against the run's result ----------

def _ringbuf_runner(port, lines):
    from wasm_bpf_cli import Runner, RunOptions

    def out(data):
        lines.append(data)

    opts = RunOptions(args=[str(os.getpid()), "100000000"], engine=ENGINE, metrics=f"127.0.0.1:{port}",
                      stdout=out, grace_period=5)
    return Runner(guest("ringbuf"), opts)


def _wait_output(lines, text, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if text in b"".join(lines).decode():
            return
        time.sleep(0.02)
    pytest.fail(f"the guest did not print {text!r}: {b''.join(lines)[-500:]!r}")


def _buffer_counts(families):
    return (value(families, "wasm_bpf_buffer_delivered_samples", "wasm_bpf_buffer_delivered_samples_total",
                  buffer="rb", kind="ringbuf"),
            value(families, "wasm_bpf_buffer_lost_samples", "wasm_bpf_buffer_lost_samples_total",
                  buffer="rb", kind="ringbuf"))


def test_delivered_and_lost_match_the_result(no_bpf_leaks):
    port = free_port()
    lines = []
    with _ringbuf_runner(port, lines) as runner:
        runner.start()
        _wait_output(lines, "attached")
        sent = 300
        for _ in range(sent):
            os.getppid()
        families = scrape_until(port, lambda f: _buffer_counts(f)[0] >= sent, runner)
        scraped = _buffer_counts(families)
        runner.stop()
        result = runner.wait(30)
    assert result is not None and result.exit_code == 0, result
    rb = [b for b in result.buffers if b.name == "rb"]
    assert scraped == (rb[0].delivered, rb[0].lost) == (sent, 0)


def test_scrapes_during_a_burst_lose_no_sample(no_bpf_leaks):
    port = free_port()
    lines = []
    scrapes = []
    done = threading.Event()

    def scraper():
        while not done.is_set():
            try:
                scrapes.append(_buffer_counts(scrape(port)))
            except OSError:
                time.sleep(0.01)

    with _ringbuf_runner(port, lines) as runner:
        runner.start()
        _wait_output(lines, "attached")
        thread = threading.Thread(target=scraper, daemon=True)
        thread.start()
        while not scrapes:
            time.sleep(0.01)
        burst = 6000  # 32 bytes each: fits the 256 KiB ring only if it is drained meanwhile
        for _ in range(burst):
            os.getppid()
        scrape_until(port, lambda f: _buffer_counts(f)[0] >= burst, runner)
        done.set()
        thread.join(10)
        runner.stop()
        result = runner.wait(30)
    rb = [b for b in result.buffers if b.name == "rb"][0]
    assert (rb.delivered, rb.lost) == (burst, 0)
    during = [d for d, _lost in scrapes if 0 < d < burst]
    assert len(scrapes) >= 5 and all(lost == 0 for _d, lost in scrapes), scrapes[-5:]
    assert during or scrapes[-1][0] == burst


# -- errors at start, before anything is loaded --------------------------------

def _bad_config(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, message", [
    ('[[histogram]]\nname = "h"\nmap = "nope"\nbuckets = "log2"\n',
     "error: bad.toml: histogram 'h': map 'nope' is in none of the module's BPF objects "
     "(maps: .rodata, hist, hist_total, start, tick)"),
    ('[[counter]]\nname = "c"\nmap = "start"\nlabels = [{ name = "pid", member = "pid" }]\n',
     "error: bad.toml: counter 'c': label 'pid': no key member 'pid' in map 'start' "
     "(its key is u32, not a struct)"),
    ('[[counter]]\nname = "c"\nmap = "start"\nlabels = [{ name = "comm", decoder = "string" }]\n',
     "error: bad.toml: counter 'c': label 'comm': decoder 'string' needs a char array, "
     "but the key is a 32-bit integer"),
    ('[[gauge]]\nname = "g"\nmap = "hist"\nper_cpu = "cpu"\n',
     "error: bad.toml: gauge 'g': per_cpu = \"cpu\" but map 'hist' is not a per-CPU map"),
    ('[[counter]]\nname = "c"\nmap = "start"\nlabels = [{ name = "p", decoder = "ifnam" }]\n',
     "error: bad.toml: counter 'c': label 'p': unknown decoder 'ifnam' (known: integer, string, errno, "
     "syscall, ifname, cgroup, ksym, static_map)"),
])
def test_bad_config_is_one_line_before_anything_loads(tmp_path, text, message, no_bpf_leaks):
    got = run_cli("run", "--metrics", f"127.0.0.1:{free_port()}", "--metrics-config",
                  _bad_config(tmp_path, text), example("runqlat"))
    assert (got.returncode, got.stdout, got.stderr) == (2, "", message + "\n")


def test_occupied_port_is_one_line_before_anything_loads(no_bpf_leaks):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        got = run_cli("run", "--metrics", f"127.0.0.1:{port}", example("runqlat"))
    assert (got.returncode, got.stdout, got.stderr) == (
        1, "", f"error: --metrics 127.0.0.1:{port}: cannot listen: Address already in use\n")


def test_bad_address_and_options_without_metrics():
    got = run_cli("run", "--metrics", "localhost", example("runqlat"))
    assert (got.returncode, got.stderr) == (
        2, "error: --metrics 'localhost': expected ADDR:PORT (e.g. 127.0.0.1:9435 or :9435)\n")
    got = run_cli("run", "--bpf-stats", example("runqlat"))
    assert (got.returncode, got.stderr) == (2, "error: --metrics-config and --bpf-stats need --metrics ADDR:PORT\n")


def _stats_fds() -> int:
    """This process's BPF_ENABLE_STATS fds (the kernel names them anon_inode:bpf-stats)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:bpf-stats"
        except OSError:
            continue
    return count


def test_bpf_stats_are_held_only_while_running(no_bpf_leaks):
    from wasm_bpf_cli import Runner, RunOptions

    port = free_port()
    opts = RunOptions(args=["-i", "100"], engine=ENGINE, metrics=f"127.0.0.1:{port}", bpf_stats=True,
                      stdout=lambda data: None)
    assert _stats_fds() == 0
    with Runner(example("runqlat"), opts) as runner:
        runner.start()
        families = scrape_until(port, lambda f: "wasm_bpf_program_runs" in f and any(
            s.value > 0 for s in f["wasm_bpf_program_runs"].samples), runner)
        held = _stats_fds()
        runner.stop()
        result = runner.wait(30)
    assert result.exit_code == 0
    assert held == 1 and _stats_fds() == 0
    seconds = {s.labels["program"]: s.value for s in families["wasm_bpf_program_run_seconds"].samples}
    assert set(seconds) == {"handle_sched_wakeup", "handle_sched_wakeup_new", "handle_sched_switch"}
    assert seconds["handle_sched_switch"] > 0


BOOTSTRAP_RODATA_CONFIG = """
[[gauge]]
name = "bootstrap_min_duration_seconds"
map = ".rodata"
value = "min_duration_ns"
multiplier = 1e-9
zeros = true
"""


def test_a_global_in_rodata_is_a_gauge(tmp_path, no_bpf_leaks):
    """A `.rodata` global (set by the guest before load: bootstrap's -d)
    read as a metric. clang leaves the section's BTF size 0 in the object;
    the map is read with the ELF section's size (8 bytes here)."""
    config = tmp_path / "bootstrap.toml"
    config.write_text(BOOTSTRAP_RODATA_CONFIG)
    port = free_port()
    proc = start_cli("--metrics", f"127.0.0.1:{port}", "--metrics-config", str(config), example("bootstrap"),
                     "-d", "5")
    try:
        loaded = lambda f: value(f, "wasm_bpf_objects_loaded", "wasm_bpf_objects_loaded") == 1  # noqa: E731
        families = scrape_until(port, loaded, proc)
        assert value(families, "bootstrap_min_duration_seconds", "bootstrap_min_duration_seconds") == 0.005
        assert value(families, "wasm_bpf_metrics_scrape_errors", "wasm_bpf_metrics_scrape_errors_total",
                     map=".rodata") == 0
    finally:
        if proc.poll() is None:
            stop_cli(proc)
