"""The networking examples (sockfilter, tc, xdp, sockops) run through the CLI
against the real kernel, with a trigger and assertions on what they printed,
and nothing left behind: no BPF object, no XDP program or tc filter/qdisc on
the interface. Traffic goes only to loopback or to the peer address of a
veth pair whose peer lives in a network namespace the test creates."""
import json
import re
import select
import signal
import socket
import subprocess
import time

import pytest

from conftest import _foreign_holders, cli_env, example, finish_process, skip_or_fail, veth_pair, wasm_bpf_cmd

pytestmark = [pytest.mark.kernel, pytest.mark.engine]

LINE = re.compile(r"^\d\d:\d\d:\d\d\s+(\S+)\s+(\d+)$")  # TIME NAME COUNT
TC_LINE = re.compile(r"^\d\d:\d\d:\d\d\s+(\d+)\s+(\d+)$")  # TIME PACKETS BYTES


def sh(*args, check=True):
    return subprocess.run(args, capture_output=True, text=True, check=check)


class Run:
    """A running example: started, waited for its header, then finished."""

    def __init__(self, name, *args, duration=None):
        cmd = wasm_bpf_cmd("run", "-q", *(["--duration", str(duration)] if duration else []),
                           example(name), *args)
        self.proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.head = []

    def wait_header(self, timeout=30.0):
        """Read up to the column header (printed once attached)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.head.append(line)
            if line.startswith("TIME"):
                return
        self.proc.kill()
        out, err = finish_process(self.proc)
        pytest.fail(f"no header from the example: {''.join(self.head)}{out}\nstderr: {err}")

    def stop_when(self, enough, timeout=30.0):
        """Read the example's lines until `enough(last_counts(...))` holds (or
        `timeout` passes), then Ctrl-C it. A fixed --duration counted from the
        start could end before the first interval's line on a loaded host."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and not enough(last_counts("".join(self.head))):
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                break
            line = self.proc.stdout.readline()
            if not line:
                break
            self.head.append(line)
        self.proc.send_signal(signal.SIGINT)

    def finish(self, timeout=30.0):
        try:
            out, err = finish_process(self.proc, timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = finish_process(self.proc)
            pytest.fail(f"example did not stop: {out}\nstderr: {err}")
        self.stdout = "".join(self.head) + out
        self.stderr = err
        return self.proc.returncode


def last_counts(stdout):
    """{name: count} from the last line of each name (counters are cumulative);
    for tc (no name column) the key is 'packets' / 'bytes'."""
    counts = {}
    for line in stdout.splitlines():
        m = TC_LINE.match(line.strip())
        if m:
            counts["packets"], counts["bytes"] = int(m.group(1)), int(m.group(2))
            continue
        m = LINE.match(line.strip())
        if m:
            counts[m.group(1)] = int(m.group(2))
    return counts


def udp_send(addr, n, gap=0.02):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(n):
            s.sendto(b"wasm-bpf example test", (addr, 9))
            time.sleep(gap)


@pytest.fixture
def veth():
    """A veth pair, peer in a namespace of our own (conftest.veth_pair)."""
    with veth_pair("ex", "10.213.8") as v:
        yield v


def assert_interface_clean(dev):
    link = sh("ip", "link", "show", "dev", dev).stdout
    assert "xdp" not in link, link
    for direction in ("ingress", "egress"):
        filters = sh("tc", "filter", "show", "dev", dev, direction, check=False).stdout
        assert filters.strip() == "", filters
    qdiscs = sh("tc", "qdisc", "show", "dev", dev).stdout
    assert "clsact" not in qdiscs, qdiscs


EXAMPLE_PROGS = {"count_packets", "xdp_count", "tc_count", "sockops_count"}


def example_progs_left(before=frozenset(), deadline=5.0):
    """Programs of these examples still in the kernel (freed asynchronously)
    that were not there `before` and are not held by another process (other
    runs on the same machine). A tc filter left attached is held by no fd, so
    it is counted."""
    end = time.monotonic() + deadline
    while True:
        out = sh("bpftool", "-j", "prog", "show").stdout
        progs = {p["id"]: p.get("name", "") for p in json.loads(out or "[]") if p.get("name") in EXAMPLE_PROGS}
        new = {i for i in progs if i not in before}
        if new:
            new -= _foreign_holders()["prog"]
        if not new or time.monotonic() > end:
            return sorted(progs[i] for i in new)
        time.sleep(0.1)


def example_prog_ids():
    out = sh("bpftool", "-j", "prog", "show").stdout
    return frozenset(p["id"] for p in json.loads(out or "[]") if p.get("name") in EXAMPLE_PROGS)


@pytest.fixture(autouse=True)
def _example_progs_gone():
    before = example_prog_ids()
    yield
    assert not example_progs_left(before), "an example's program is still loaded"


def cgroup2_root():
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 2 and fields[2] == "cgroup2":
                return fields[1]
    skip_or_fail("no cgroup v2 hierarchy mounted")


# --- sockfilter ---------------------------------------------------------------

def test_sockfilter_counts_udp_on_loopback(no_bpf_leaks):
    run = Run("sockfilter", "-i", "1", "lo")
    run.wait_header()
    udp_send("127.0.0.1", 20)
    run.stop_when(lambda c: c.get("UDP(17)", 0) >= 20 and c.get("ICMP(1)", 0) > 0)
    assert run.finish() == 0, run.stderr
    counts = last_counts(run.stdout)
    assert "Counting packets on lo every 1s" in run.stdout
    assert counts.get("UDP(17)", 0) >= 20, run.stdout
    # each datagram to the closed port 9 gets an ICMP port unreachable
    assert counts.get("ICMP(1)", 0) > 0, run.stdout
    assert_interface_clean("lo")


def test_sockfilter_count_option_exits_by_itself(no_bpf_leaks):
    run = Run("sockfilter", "-i", "1", "-c", "2")
    run.wait_header()
    udp_send("127.0.0.1", 5)
    assert run.finish() == 0, run.stderr
    stamps = {line.split()[0] for line in run.stdout.splitlines() if LINE.match(line.strip())}
    assert 1 <= len(stamps) <= 2, run.stdout
    assert last_counts(run.stdout).get("UDP(17)", 0) >= 5


def test_sockfilter_sigint_exits_zero(no_bpf_leaks):
    run = Run("sockfilter", "-i", "5", "lo")
    run.wait_header()
    run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 0, run.stderr


def test_sockfilter_unknown_interface(no_bpf_leaks):
    run = Run("sockfilter", "nope0")
    assert run.finish() == 1
    assert "Failed to attach count_packets to nope0" in run.stderr
    assert "TIME" not in run.stdout


# --- xdp ----------------------------------------------------------------------

def test_xdp_counts_icmp_on_veth(veth, no_bpf_leaks):
    dev = veth["dev"]
    run = Run("xdp", "-i", "1", dev)
    run.wait_header()
    assert "xdp" in sh("ip", "link", "show", "dev", dev).stdout
    # datagrams to a closed port on the peer: ICMP port unreachable comes back in on dev
    udp_send(veth["peer_addr"], 10, gap=0.05)
    run.stop_when(lambda c: c.get("ICMP(1)", 0) > 0)
    assert run.finish() == 0, run.stderr
    counts = last_counts(run.stdout)
    assert counts.get("ICMP(1)", 0) > 0, run.stdout
    assert "UDP(17)" not in counts, run.stdout  # sent, not received, on dev
    assert_interface_clean(dev)


# --- tc -----------------------------------------------------------------------

def test_tc_ingress_counts_on_veth(veth, no_bpf_leaks):
    dev = veth["dev"]
    run = Run("tc", "-i", "1", dev)
    run.wait_header()
    assert "tc_count" in sh("tc", "filter", "show", "dev", dev, "ingress").stdout
    udp_send(veth["peer_addr"], 10, gap=0.05)
    run.stop_when(lambda c: c.get("packets", 0) > 0)
    assert run.finish() == 0, run.stderr
    counts = last_counts(run.stdout)
    assert counts.get("packets", 0) > 0, run.stdout
    assert counts["bytes"] >= 42 * counts["packets"], run.stdout  # ICMP errors quote the datagram
    assert_interface_clean(dev)


def test_tc_egress_counts_on_veth(veth, no_bpf_leaks):
    dev = veth["dev"]
    run = Run("tc", "-i", "1", f"{dev}:egress")
    run.wait_header()
    assert "tc_count" in sh("tc", "filter", "show", "dev", dev, "egress").stdout
    assert sh("tc", "filter", "show", "dev", dev, "ingress").stdout.strip() == ""
    udp_send(veth["peer_addr"], 10, gap=0.05)
    run.stop_when(lambda c: c.get("packets", 0) >= 10)
    assert run.finish() == 0, run.stderr
    assert last_counts(run.stdout).get("packets", 0) >= 10, run.stdout
    assert_interface_clean(dev)


def test_tc_keeps_an_existing_clsact(veth, no_bpf_leaks):
    dev = veth["dev"]
    sh("tc", "qdisc", "add", "dev", dev, "clsact")
    run = Run("tc", "-i", "1", "-c", "1", dev)
    run.wait_header()
    assert run.finish() == 0, run.stderr
    assert sh("tc", "filter", "show", "dev", dev, "ingress").stdout.strip() == ""
    assert "clsact" in sh("tc", "qdisc", "show", "dev", dev).stdout


# --- sockops ------------------------------------------------------------------

def test_sockops_counts_loopback_tcp(no_bpf_leaks):
    cgroup = cgroup2_root()
    run = Run("sockops", "-i", "1", cgroup)
    run.wait_header()
    n = 3
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        for _ in range(n):
            with socket.create_connection(listener.getsockname(), timeout=5) as c:
                a, _ = listener.accept()
                with a:
                    c.sendall(b"ping")
                    assert a.recv(4) == b"ping"
    run.stop_when(lambda c: min(c.get(k, 0) for k in ("TCP_CONNECT", "ACTIVE_ESTABLISHED",
                                                        "PASSIVE_ESTABLISHED")) >= n and c.get("STATE", 0) > 0)
    assert run.finish() == 0, run.stderr
    counts = last_counts(run.stdout)
    assert counts.get("TCP_CONNECT", 0) >= n, run.stdout
    assert counts.get("ACTIVE_ESTABLISHED", 0) >= n, run.stdout
    assert counts.get("PASSIVE_ESTABLISHED", 0) >= n, run.stdout
    assert counts.get("STATE", 0) > 0, run.stdout
