"""`run --metrics` over every map shape and label decoder a config can use:
the `metricsfill` guest writes known entries (tests/guests/README.md) and
the scrape, parsed with prometheus_client's parser, must show them decoded.
Real kernel, both engines."""
import os

import pytest

from conftest import ENGINE, guest
from test_mapwalk import possible_cpus
from test_metrics import free_port, scrape, scrape_until

pytestmark = [pytest.mark.kernel, pytest.mark.engine]

CONFIG = """
[[counter]]
name = "fill_events_total"
map = "decoded"
value = "events"
labels = [
  { name = "pid", member = "pid" },
  { name = "comm", member = "comm", decoder = "string" },
  { name = "ifname", member = "ifindex", decoder = "ifname" },
  { name = "err", member = "err", decoder = "errno" },
  { name = "syscall", member = "syscall", decoder = "syscall" },
  { name = "cgroup", member = "cgroup", decoder = "cgroup" },
  { name = "sym", member = "addr", decoder = "ksym" },
]

[[gauge]]
name = "fill_bytes"
map = "decoded"
value = "bytes"
multiplier = 0.5
labels = [{ name = "pid", member = "pid" }]

[[gauge]]
name = "fill_percpu_sum"
map = "percpu"
labels = [{ name = "index" }]

[[gauge]]
name = "fill_percpu_by_cpu"
map = "percpu"
per_cpu = "cpu"
labels = [{ name = "index" }]

[[histogram]]
name = "fill_slots"
map = "slots_hist"
value = "slots"
buckets = "log2"
labels = [{ name = "key" }]

[[histogram]]
name = "fill_keyed"
map = "keyed_hist"
buckets = "keyed"
bucket_member = "le"
labels = [{ name = "op", member = "op", decoder = "static_map", static_map = { 1 = "read" } }]

[[gauge]]
name = "fill_unreadable"
map = "unreadable"
"""


def own_cgroup():
    """(cgroup v2 path, id) of this process."""
    from wasm_bpf_cli.metrics.decoders import cgroup2_root

    root = cgroup2_root()
    if root is None:
        pytest.fail("no cgroup v2 hierarchy is mounted")
    with open("/proc/self/cgroup") as f:
        path = next(line.split("::", 1)[1].strip() for line in f if line.startswith("0::"))
    return path, os.stat(root.rstrip("/") + path).st_ino


def a_kernel_symbol():
    """(address, name) of a text symbol with a unique address."""
    seen = {}
    with open("/proc/kallsyms") as f:
        for line in f:
            addr, kind, name = line.split()[:3]
            if kind in "tT" and int(addr, 16):
                seen.setdefault(int(addr, 16), []).append(name)
    for addr in sorted(seen):
        if len(seen[addr]) == 1 and seen[addr][0] in ("schedule", "do_sys_openat2", "ksys_read"):
            return addr, seen[addr][0]
    pytest.fail("no known kernel symbol in /proc/kallsyms")


def samples(families, family):
    return [(s.name, s.labels, s.value) for s in families[family].samples]


def test_every_decoder_and_map_shape(tmp_path, no_bpf_leaks):
    from wasm_bpf_cli import Runner, RunOptions

    config = tmp_path / "fill.toml"
    config.write_text(CONFIG)
    cgroup_path, cgroup_id = own_cgroup()
    addr, symbol = a_kernel_symbol()
    cpus = possible_cpus()
    port = free_port()
    out = []
    opts = RunOptions(args=[str(cgroup_id), str(addr), str(cpus)], engine=ENGINE, stdout=out.append,
                      metrics=f"127.0.0.1:{port}", metrics_config=str(config))
    with Runner(guest("metricsfill"), opts) as runner:
        runner.start()
        families = scrape_until(port, lambda f: b"filled" in b"".join(out)
                                and len(samples(f, "fill_events")) == 2, runner)
        again = scrape(port)
        runner.stop()
        result = runner.wait(30)
    assert result.exit_code == 0, (result, b"".join(out))

    common = {"comm": "wasm-guest", "ifname": "lo", "syscall": "getppid", "cgroup": cgroup_path, "sym": symbol}
    assert sorted(samples(families, "fill_events"), key=lambda s: s[1]["pid"]) == [
        ("fill_events_total", dict(common, pid="4242", err="ENOENT"), 7.0),
        ("fill_events_total", dict(common, pid="4343", err="EACCES"), 3.0),
    ]
    assert sorted(samples(families, "fill_bytes"), key=lambda s: s[1]["pid"]) == [
        ("fill_bytes", {"pid": "4242"}, 350.0), ("fill_bytes", {"pid": "4343"}, 150.0)]
    # zeros are left out: only key 1 of the 4 holds anything
    assert samples(families, "fill_percpu_sum") == [("fill_percpu_sum", {"index": "1"}, cpus * (cpus + 1) / 2)]
    assert sorted(samples(families, "fill_percpu_by_cpu"), key=lambda s: int(s[1]["cpu"])) == [
        ("fill_percpu_by_cpu", {"index": "1", "cpu": str(i)}, float(i + 1)) for i in range(cpus)]
    slots = [(s[1]["le"], s[2]) for s in samples(families, "fill_slots") if s[0] == "fill_slots_bucket"]
    assert slots == [("2.0", 1), ("4.0", 3), ("8.0", 3), ("16.0", 7), ("32.0", 7), ("64.0", 7),
                     ("128.0", 7), ("256.0", 7), ("+Inf", 7)]
    assert ("fill_slots_count", {"key": "5"}, 7.0) in samples(families, "fill_slots")
    assert samples(families, "fill_keyed") == [
        ("fill_keyed_bucket", {"op": "read", "le": "10.0"}, 2.0),
        ("fill_keyed_bucket", {"op": "read", "le": "100.0"}, 7.0),
        ("fill_keyed_bucket", {"op": "read", "le": "+Inf"}, 7.0),
        ("fill_keyed_count", {"op": "read"}, 7.0)]
    # the unreadable map: no series, one error per scrape, and the scrape still answered
    assert "fill_unreadable" not in again
    errors = lambda f: {s.labels["map"]: s.value for s in f["wasm_bpf_metrics_scrape_errors"].samples}
    assert errors(again)["unreadable"] == errors(families)["unreadable"] + 1 >= 2
    assert {m: n for m, n in errors(again).items() if m != "unreadable"} == {
        "decoded": 0, "percpu": 0, "slots_hist": 0, "keyed_hist": 0}
