"""The metrics config (wasm_bpf_cli/metrics/config.py), its check against a
module's BTF (layout.py) and its custom section (section.py). No kernel."""
import os

import pytest

from conftest import ROOT, guest, run_cli
from wasm_bpf_cli.errors import ModuleError, UsageError
from wasm_bpf_cli.inspect.wasm_reader import read_wasm
from wasm_bpf_cli.metrics import check, embed, embedded_config, parse_config
from wasm_bpf_cli.metrics.section import SECTION_NAME, embedded_text


def parse(text):
    return parse_config(text.encode(), "m.toml")


def test_a_full_config_parses():
    cfg = parse("""
[[histogram]]
name = "lat_seconds"
help = "latency"
map = "hist"
value = "slots"
per_cpu = "cpu"
buckets = "linear"
bucket_width = 5
multiplier = 1e-3
labels = [{ name = "op", member = "key.op", decoder = "static_map", static_map = { 1 = "read", 0x2 = "write" } }]
[[counter]]
name = "c_total"
map = "m"
zeros = true
""")
    counter, hist = cfg.metrics  # counters, then gauges, then histograms
    assert (hist.kind, hist.name, hist.help, hist.map, hist.value, hist.per_cpu, hist.buckets,
            hist.bucket_width, hist.multiplier) == ("histogram", "lat_seconds", "latency", "hist", "slots",
                                                    "cpu", "linear", 5.0, 1e-3)
    label = hist.labels[0]
    assert (label.name, label.member, label.decoder, dict(label.static_map)) == (
        "op", "key.op", "static_map", {1: "read", 2: "write"})
    assert (counter.kind, counter.help, counter.zeros, counter.per_cpu, counter.labels) == (
        "counter", "map m", True, "sum", ())
    assert cfg.maps == ["hist", "m"]


@pytest.mark.parametrize("text, message", [
    ('[[counters]]\nname = "a"', "m.toml: unknown key 'counters' (expected [[counter]], [[gauge]] or [[histogram]] tables)"),
    ('', "m.toml: defines no metric ([[counter]], [[gauge]] or [[histogram]])"),
    ('[[counter]]\nmap = "m"', "m.toml: counter #1: 'name' is missing"),
    ('[[counter]]\nname = "a-b"\nmap = "m"', "m.toml: counter #1: name 'a-b' is not a Prometheus metric name"),
    ('[[gauge]]\nname = "a"', "m.toml: gauge 'a': 'map' is missing"),
    ('[[gauge]]\nname = "a"\nmap = "m"\nbuckets = "log2"',
     "m.toml: gauge 'a': unknown key 'buckets' (known: help, labels, map, multiplier, name, per_cpu, value, zeros)"),
    ('[[gauge]]\nname = "a"\nmap = "m"\nper_cpu = "max"', 'm.toml: gauge \'a\': per_cpu must be "sum" or "cpu", not \'max\''),
    ('[[gauge]]\nname = "a"\nmap = "m"\nmultiplier = true', "m.toml: gauge 'a': 'multiplier' must be a number"),
    ('[[gauge]]\nname = "a"\nmap = "m"\nvalue = "a..b"',
     'm.toml: gauge \'a\': value \'a..b\' is not a member path (e.g. "pid" or "key.cpu")'),
    ('[[gauge]]\nname = "a"\nmap = "m"\nlabels = ["pid"]',
     "m.toml: gauge 'a': labels[0] must be a table ({ name = ..., member = ... })"),
    ('[[gauge]]\nname = "a"\nmap = "m"\nlabels = [{ name = "p", size = 4 }]', "m.toml: gauge 'a': labels[0]: unknown key 'size'"),
    ('[[gauge]]\nname = "a"\nmap = "m"\nlabels = [{ name = "1p" }]',
     "m.toml: gauge 'a': labels[0]: name '1p' is not a Prometheus label name"),
    ('[[gauge]]\nname = "a"\nmap = "m"\nlabels = [{ name = "p", static_map = { 1 = "x" } }]',
     'm.toml: gauge \'a\': label \'p\': static_map (a table) goes with decoder = "static_map", and only there'),
    ('[[gauge]]\nname = "a"\nmap = "m"\nlabels = [{ name = "p", decoder = "static_map", static_map = { x = "y" } }]',
     "m.toml: gauge 'a': label 'p': static_map key 'x' is not a number"),
    ('[[gauge]]\nname = "a"\nmap = "m"\nper_cpu = "cpu"\nlabels = [{ name = "cpu" }]',
     "m.toml: gauge 'a': label 'cpu' is defined twice"),
    ('[[gauge]]\nname = "a"\nmap = "m"\n[[counter]]\nname = "a"\nmap = "n"', "m.toml: metric name 'a' is defined twice"),
    ('[[histogram]]\nname = "h"\nmap = "m"', "m.toml: histogram 'h': buckets must be one of log2, linear, keyed ('buckets' is missing)"),
    ('[[histogram]]\nname = "h"\nmap = "m"\nbuckets = "linear"',
     'm.toml: histogram \'h\': bucket_width (> 0) goes with buckets = "linear", and only there'),
    ('[[histogram]]\nname = "h"\nmap = "m"\nbuckets = "log2"\nlabels = [{ name = "le" }]',
     "m.toml: histogram 'h': a histogram cannot have a label named 'le'"),
    ('[[counter]\nname = "a"', "m.toml: not valid TOML: Expected ']]' at the end of an array declaration (at line 1, column 10)"),
])
def test_config_errors_are_one_line(text, message):
    with pytest.raises(UsageError) as err:
        parse(text)
    assert str(err.value) == message


def test_not_utf8():
    with pytest.raises(UsageError, match=r"^m\.toml: not UTF-8 text$"):
        parse_config(b"\xff\xfe", "m.toml")


FILL = os.path.join(ROOT, "tests", "guests", "build", "metricsfill.wasm")


@pytest.mark.parametrize("text, message", [
    ('[[histogram]]\nname = "h"\nmap = "slots_hist"\nbuckets = "log2"',
     "m.toml: histogram 'h': value: the whole value is struct hist: not a number, a char array or an array "
     "of numbers (name one of its members)"),
    ('[[histogram]]\nname = "h"\nmap = "slots_hist"\nvalue = "slots"\nbuckets = "keyed"',
     'm.toml: histogram \'h\': buckets = "keyed" needs the bound in the key, but the value is an array of slots '
     '(use log2 or linear)'),
    ('[[counter]]\nname = "c"\nmap = "slots_hist"\nvalue = "slots"',
     'm.toml: counter \'c\': the value (slots) is an array of 8 integers, not a number: name a member with '
     'value = "...", or use a histogram'),
    ('[[counter]]\nname = "c"\nmap = "decoded"\nvalue = "events"\nlabels = [{ name = "c", member = "ifindex", decoder = "cgroup" }]',
     "m.toml: counter 'c': label 'c': decoder 'cgroup' needs a 64-bit integer, but ifindex has 4 bytes"),
    ('[[counter]]\nname = "c"\nmap = "decoded"\nvalue = "events"\nlabels = [{ name = "c", member = "cpu" }]',
     "m.toml: counter 'c': label 'c': no key member 'cpu' in map 'decoded' (members: pid, comm, ifindex, err, "
     "syscall, cgroup, addr)"),
    ('[[counter]]\nname = "c"\nmap = "decoded"\nvalue = "events"\nlabels = [{ name = "c", member = "comm", decoder = "errno" }]',
     "m.toml: counter 'c': label 'c': decoder 'errno' needs an integer, but comm is char[16]"),
    ('[[counter]]\nname = "c"\nmap = "decoded"',
     "m.toml: counter 'c': value: the whole value is struct counts: not a number, a char array or an array of "
     "numbers (name one of its members)"),
    ('[[counter]]\nname = "c"\nmap = "idle"',
     "m.toml: counter 'c': map 'idle' (type 27) holds no entries a metric can read (readable: array, hash, "
     "lru_hash, lru_percpu_hash, percpu_array, percpu_hash)"),
])
def test_config_checked_against_the_modules_btf(text, message):
    with open(guest("metricsfill"), "rb") as f:
        wasm = f.read()
    with pytest.raises(UsageError) as err:
        check(wasm, parse(text))
    assert str(err.value) == message


def test_embedded_section_round_trip(tmp_path):
    with open(guest("metricsfill"), "rb") as f:
        wasm = f.read()
    assert embedded_config(wasm) is None
    once = embed(wasm, b'[[gauge]]\nname = "a"\nmap = "percpu"\n')
    twice = embed(once, b'[[gauge]]\nname = "b"\nmap = "percpu"\n')
    assert read_wasm(twice).custom_sections.count(SECTION_NAME) == 1  # replaced, not added
    assert embedded_text(twice) == b'[[gauge]]\nname = "b"\nmap = "percpu"\n'
    assert [m.name for m in embedded_config(twice).metrics] == ["b"]
    assert len(twice) - len(wasm) == len(once) - len(wasm)
    with pytest.raises(ModuleError, match="^not a valid wasm module: not a wasm module"):
        embed(b"\x7fELF....", b"")


def test_metrics_commands(tmp_path):
    config = tmp_path / "m.toml"
    config.write_text('[[gauge]]\nname = "fill_percpu"\nmap = "percpu"\nlabels = [{ name = "index" }]\n')
    module = tmp_path / "fill.wasm"
    module.write_bytes(open(guest("metricsfill"), "rb").read())
    none = run_cli("metrics", "show", str(module))
    assert (none.returncode, none.stdout, none.stderr) == (3, "", f"{module}: no embedded metrics config\n")
    done = run_cli("metrics", "embed", str(config), str(module))
    assert (done.returncode, done.stderr) == (0, f"{module}: 1 metrics from m.toml embedded\n")
    checked = run_cli("metrics", "check", str(module))
    assert (checked.returncode, checked.stdout) == (0, "gauge     fill_percpu  map percpu  labels index=integer\n")
    config.write_text('[[gauge]]\nname = "g"\nmap = "nope"\n')
    bad = run_cli("metrics", "embed", str(config), str(module))
    assert (bad.returncode, bad.stderr) == (
        2, "error: m.toml: gauge 'g': map 'nope' is in none of the module's BPF objects (maps: decoded, idle, "
           "keyed_hist, percpu, slots_hist, unreadable)\n")
    assert run_cli("metrics", "show", str(module)).stdout.startswith('[[gauge]]\nname = "fill_percpu"')


def test_the_readmes_config_fits_the_examples_it_names():
    """The README's config block parses; its counter fits sockfilter's map,
    its histogram runqlat's."""
    from test_first_hour import fenced

    from conftest import example

    cfg = parse(fenced("metrics-config"))
    counter, histogram = cfg.metrics
    for spec, name in ((counter, "sockfilter"), (histogram, "runqlat")):
        with open(example(name), "rb") as f:
            plans = check(f.read(), type(cfg)((spec,), "README.md"))
        assert [p.spec for p in plans] == [spec]
    assert (counter.map, histogram.map, histogram.multiplier) == ("proto_count", "hist_total", 1e-6)
