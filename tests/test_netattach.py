"""Runner-side attach of socket filters (a packet socket the runner opens) and
tc classifiers (clsact), against the real kernel on `lo` and on a veth pair
whose peer lives in a network namespace this module creates."""
import ctypes
import errno
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import skip_or_fail, veth_pair
from wasm_bpf_cli.bpf import BpfError, BpfObject, lookup
from wasm_bpf_cli.bpf.attach import attach_program
from wasm_bpf_cli.bpf.netattach import SocketAttachment, TcAttachment, parse_tc_target

pytestmark = pytest.mark.kernel

SOURCE = r"""
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void bump(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("socket")
int count_sock(struct __sk_buff *skb)
{
	bump(0);
	return 0;
}

SEC("tc")
int count_tc(struct __sk_buff *skb)
{
	bump(1);
	return TC_ACT_OK;
}

SEC("classifier")
int count_cls(struct __sk_buff *skb)
{
	bump(1);
	return TC_ACT_OK;
}
"""


@pytest.fixture(scope="module")
def net_obj_bytes(tmp_path_factory):
    clang = shutil.which("clang-14")
    if not clang:
        skip_or_fail("clang-14 is not installed")
    multiarch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True).stdout.strip()
    d = tmp_path_factory.mktemp("netattach")
    (d / "net.bpf.c").write_text(SOURCE)
    subprocess.run([clang, "-g", "-O2", "-target", "bpf", f"-I/usr/include/{multiarch}",
                    "-c", str(d / "net.bpf.c"), "-o", str(d / "net.bpf.o")], check=True)
    return (d / "net.bpf.o").read_bytes()


@pytest.fixture
def obj(net_obj_bytes, no_bpf_leaks):
    buf = ctypes.create_string_buffer(net_obj_bytes, len(net_obj_bytes))
    o = BpfObject.open_mem(ctypes.addressof(buf), len(net_obj_bytes), "net")
    o.load()
    yield o
    o.close()


def count(o, idx):
    val = ctypes.c_uint64()
    assert lookup(o.find_map("counts").fd, ctypes.addressof(ctypes.c_uint32(idx)), ctypes.addressof(val)) == 0
    return val.value


def udp_to_loopback(n=10):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(n):
            s.sendto(b"netattach", ("127.0.0.1", 9))


def wait_for(pred, timeout=3.0):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def sh(*args, check=True):
    return subprocess.run(args, capture_output=True, text=True, check=check)


def tc_filters(dev, direction="ingress", netns=None):
    pre = ["ip", "netns", "exec", netns] if netns else []
    return sh(*pre, "tc", "filter", "show", "dev", dev, direction, check=False).stdout


def has_clsact(dev):
    return "clsact" in sh("tc", "qdisc", "show", "dev", dev, check=False).stdout


@pytest.fixture
def veth():
    """A veth pair, peer in a namespace of our own (conftest.veth_pair)."""
    with veth_pair("na", "10.213.7") as v:
        yield v


def udp_to_peer(addr, n=10):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(n):
            s.sendto(b"netattach", (addr, 9))
            time.sleep(0.01)


# --- socket filters --------------------------------------------------------

def test_socket_filter_on_loopback_counts_and_close_detaches(obj):
    prog = obj.find_program("count_sock")
    attach_program(prog, "lo")
    att = obj.links[-1]
    assert isinstance(att, SocketAttachment) and not att.destroyed
    fd = att.fd
    assert os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    udp_to_loopback()
    assert wait_for(lambda: count(obj, 0) >= 10)
    obj.close()
    assert att.destroyed and obj.links == []


def test_socket_filter_sees_only_its_interface(obj, veth):
    attach_program(obj.find_program("count_sock"), veth["dev"])
    udp_to_loopback(20)
    time.sleep(0.2)
    assert count(obj, 0) == 0
    udp_to_peer(veth["peer_addr"])
    assert wait_for(lambda: count(obj, 0) > 0)


def test_socket_filter_unknown_interface(obj):
    with pytest.raises(BpfError) as exc:
        attach_program(obj.find_program("count_sock"), "nope0")
    assert str(exc.value) == "attach program 'count_sock' (socket) to interface 'nope0': no such interface"
    assert exc.value.errno == errno.ENODEV
    assert obj.links == []


def test_socket_destroy_is_idempotent(obj):
    attach_program(obj.find_program("count_sock"), "lo")
    att = obj.links[-1]
    att.destroy()
    att.destroy()
    assert att.destroyed
    with pytest.raises(BpfError):
        att.fd


# --- tc ----------------------------------------------------------------------

def test_parse_tc_target():
    assert parse_tc_target("eth0") == ("eth0", "ingress")
    assert parse_tc_target("eth0:ingress") == ("eth0", "ingress")
    assert parse_tc_target("eth0:egress") == ("eth0", "egress")
    for bad in ("eth0:sideways", ":egress", "eth0:"):
        with pytest.raises(BpfError) as exc:
            parse_tc_target(bad)
        assert exc.value.errno == errno.EINVAL


def test_tc_ingress_counts_and_close_removes_filter_and_qdisc(obj, veth):
    dev = veth["dev"]
    attach_program(obj.find_program("count_tc"), dev)
    att = obj.links[-1]
    assert isinstance(att, TcAttachment) and att.created_hook
    assert "count_tc" in tc_filters(dev, "ingress") and has_clsact(dev)
    assert tc_filters(dev, "egress").strip() == ""
    # the peer answers (ARP, ICMP port unreachable): packets in on `dev`
    udp_to_peer(veth["peer_addr"])
    assert wait_for(lambda: count(obj, 1) > 0)
    obj.close()
    assert att.destroyed
    assert tc_filters(dev, "ingress").strip() == ""
    assert not has_clsact(dev)


def test_tc_egress_and_classifier_section(obj, veth):
    dev = veth["dev"]
    attach_program(obj.find_program("count_cls"), f"{dev}:egress")
    assert "count_cls" in tc_filters(dev, "egress")
    assert tc_filters(dev, "ingress").strip() == ""
    udp_to_peer(veth["peer_addr"], 5)
    assert wait_for(lambda: count(obj, 1) >= 5)
    obj.close()
    assert tc_filters(dev, "egress").strip() == "" and not has_clsact(dev)


def test_tc_existing_clsact_is_kept(obj, veth):
    dev = veth["dev"]
    sh("tc", "qdisc", "add", "dev", dev, "clsact")
    attach_program(obj.find_program("count_tc"), f"{dev}:ingress")
    att = obj.links[-1]
    assert not att.created_hook
    obj.close()
    assert tc_filters(dev, "ingress").strip() == ""
    assert has_clsact(dev)  # not ours: left in place


def test_tc_two_programs_one_object(obj, veth):
    dev = veth["dev"]
    attach_program(obj.find_program("count_tc"), dev)
    attach_program(obj.find_program("count_cls"), f"{dev}:egress")
    assert "count_tc" in tc_filters(dev, "ingress") and "count_cls" in tc_filters(dev, "egress")
    obj.close()
    assert tc_filters(dev, "ingress").strip() == "" and tc_filters(dev, "egress").strip() == ""
    assert not has_clsact(dev)


def test_tc_errors(obj):
    with pytest.raises(BpfError) as exc:
        attach_program(obj.find_program("count_tc"), "nope0:egress")
    assert str(exc.value) == "attach program 'count_tc' (tc) to interface 'nope0:egress': no such interface"
    with pytest.raises(BpfError) as exc:
        attach_program(obj.find_program("count_tc"), "lo:sideways")
    assert exc.value.errno == errno.EINVAL
    assert obj.links == []


def test_tc_on_loopback(obj):
    if has_clsact("lo"):
        skip_or_fail("lo already has a clsact qdisc (someone else's)")
    attach_program(obj.find_program("count_tc"), "lo")
    udp_to_loopback()
    assert wait_for(lambda: count(obj, 1) >= 10)
    obj.close()
    assert not has_clsact("lo")
