"""The bpf core against the real kernel: load from memory, maps, attach,
ring and perf buffers, errors, and that close() leaves nothing behind."""
import ctypes
import errno
import glob
import os
import shutil
import struct
import subprocess
import time

import pytest

from conftest import skip_or_fail
from wasm_bpf_cli.bpf import (
    BpfError, BpfObject, PerfBuffer, RingBuffer, delete, lookup, map_info,
    next_key, prog_ids, prog_names, update,
)
from wasm_bpf_cli.bpf import _libbpf_generated as gen

pytestmark = pytest.mark.kernel

HERE = os.path.dirname(os.path.abspath(__file__))
EVENT = struct.Struct("<II16s")  # struct event in tests/bpf/events.bpf.c


@pytest.fixture(scope="session")
def bpf_objects(tmp_path_factory):
    """Compile tests/bpf/*.bpf.c once; name -> ELF bytes."""
    clang = shutil.which("clang-14")
    if not clang:
        skip_or_fail("clang-14 is not installed")
    multiarch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True).stdout.strip()
    out_dir = tmp_path_factory.mktemp("bpf")
    objects = {}
    for src in sorted(glob.glob(os.path.join(HERE, "bpf", "*.bpf.c"))):
        name = os.path.basename(src)[: -len(".bpf.c")]
        obj = out_dir / f"{name}.bpf.o"
        subprocess.run([clang, "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86",
                        f"-I/usr/include/{multiarch}", "-c", src, "-o", str(obj)], check=True)
        objects[name] = obj.read_bytes()
    return objects


def open_bytes(data: bytes, name: str = "guest") -> BpfObject:
    buf = ctypes.create_string_buffer(data, len(data))
    return BpfObject.open_mem(ctypes.addressof(buf), len(data), name)


@pytest.fixture
def events(bpf_objects, no_bpf_leaks):
    obj = open_bytes(bpf_objects["events"], "events")
    obj.load()
    yield obj
    obj.close()


def u32(v):
    return ctypes.c_uint32(v)


def arm(obj):
    """Filter on this process and attach the getppid tracepoint program."""
    target = obj.find_map("target")
    assert update(target.fd, ctypes.addressof(u32(0)), ctypes.addressof(u32(os.getpid())), 0) == 0
    return obj.find_program("handle_getppid").attach()


def test_lists_programs_and_maps(events):
    progs = {p.name: p for p in events.programs}
    assert set(progs) == {"handle_getppid", "handle_missing"}
    p = progs["handle_getppid"]
    assert p.section == "tp/syscalls/sys_enter_getppid"
    assert p.prog_type == gen.BPF_PROG_TYPE_TRACEPOINT and p.prog_type_name == "tracepoint"
    assert p.fd > 0
    assert prog_names().get(_prog_id(p.fd)) == "handle_getppid"
    names = {m.name for m in events.maps}
    assert {"target", "rb", "pb", "kv"} <= names
    rb = events.find_map("rb")
    assert (rb.type, rb.type_name, rb.max_entries) == (gen.BPF_MAP_TYPE_RINGBUF, "ringbuf", 64 * 1024)
    kv = events.find_map("kv")
    assert (kv.key_size, kv.value_size, kv.max_entries) == (4, 8, 64)
    assert events.find_map("nope") is None and events.find_program("nope") is None


def _prog_id(fd):
    info = gen.struct_bpf_prog_info()
    n = ctypes.c_uint(ctypes.sizeof(info))
    assert gen.bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(n)) == 0
    assert info.id in prog_ids()
    return info.id


def test_map_ops_round_trip(events):
    fd = events.find_map("kv").fd
    key, value, out = u32(0), ctypes.c_uint64(0), ctypes.c_uint64(0)
    for k in (3, 1, 2):
        key.value, value.value = k, k * 1000
        assert update(fd, ctypes.addressof(key), ctypes.addressof(value), gen.BPF_ANY) == 0
    key.value = 2
    assert lookup(fd, ctypes.addressof(key), ctypes.addressof(out)) == 0 and out.value == 2000
    assert update(fd, ctypes.addressof(key), ctypes.addressof(value), gen.BPF_NOEXIST) == -errno.EEXIST
    seen, cur, nxt = [], 0, u32(0)
    while next_key(fd, cur, ctypes.addressof(nxt)) == 0:
        seen.append(nxt.value)
        cur_key = u32(nxt.value)
        cur = ctypes.addressof(cur_key)
    assert sorted(seen) == [1, 2, 3]
    assert delete(fd, ctypes.addressof(key)) == 0
    assert lookup(fd, ctypes.addressof(key), ctypes.addressof(out)) == -errno.ENOENT
    assert delete(fd, ctypes.addressof(key)) == -errno.ENOENT
    assert lookup(-1, ctypes.addressof(key), ctypes.addressof(out)) == -errno.EBADF
    assert lookup(None, 0, 0) == -errno.EINVAL  # a bad argument never raises


def test_map_info(events):
    info = map_info(events.find_map("kv").fd)
    assert info == (gen.BPF_MAP_TYPE_HASH, 4, 8, 64, "kv")
    with pytest.raises(BpfError) as exc:
        map_info(-1)
    assert exc.value.errno in (errno.EBADF, errno.EBADFD)  # the kernel says EBADFD here
    assert str(exc.value).startswith("map info for fd -1: File descriptor in bad state (EBADFD)")


def test_ring_buffer_delivers_records(events):
    arm(events)
    got = []
    with RingBuffer(events.find_map("rb").fd,
                    lambda addr, size: got.append(ctypes.string_at(addr, size)) or 0) as rb:
        assert rb.epoll_fd > 0
        for _ in range(3):
            os.getppid()
        assert _drain(rb, 3) == 3
    pid, seqs = os.getpid(), []
    for rec in got:
        rpid, seq, comm = EVENT.unpack(rec)
        assert rpid == pid and comm.rstrip(b"\0")
        seqs.append(seq)
    assert seqs == [0, 1, 2]
    assert rb.closed
    rb.close()  # idempotent


def _drain(buf, want, deadline_s=3.0):
    total, end = 0, time.monotonic() + deadline_s
    while total < want and time.monotonic() < end:
        n = buf.poll(100)
        assert n >= 0
        total += n
    return total


def test_perf_buffer_delivers_samples(events):
    arm(events)
    got = []
    pb = PerfBuffer(events.find_map("pb").fd, lambda addr, size: got.append(ctypes.string_at(addr, size)) or 0,
                    page_count=8)
    try:
        assert pb.epoll_fd > 0
        os.getppid()
        os.getppid()
        assert _drain(pb, 2) == 2
        assert pb.lost == 0
    finally:
        pb.close()
        pb.close()
    # perf samples are padded to 8 bytes; the event is the prefix
    assert [EVENT.unpack(r[:EVENT.size])[:2] for r in got] == [(os.getpid(), 0), (os.getpid(), 1)]


class Boom(BaseException):
    pass


@pytest.mark.parametrize("exc_type", [ValueError, Boom, SystemExit])
def test_exception_in_ring_sample_is_reraised(events, exc_type):
    arm(events)
    calls = []

    def on_sample(addr, size):
        calls.append(size)
        if len(calls) == 1:
            raise exc_type("from callback")
        return 0

    rb = RingBuffer(events.find_map("rb").fd, on_sample)
    try:
        os.getppid()
        os.getppid()
        with pytest.raises(exc_type):
            _poll_until_raise(rb)
        assert len(calls) == 1  # consumption stopped at the first record
        assert rb.consume() == 1  # the second record was kept, not lost
        assert len(calls) == 2
    finally:
        rb.close()


def _poll_until_raise(buf, deadline_s=3.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        buf.poll(100)
    pytest.fail("nothing raised")


def test_negative_return_stops_ring_consumption(events):
    arm(events)
    calls = []
    rb = RingBuffer(events.find_map("rb").fd, lambda a, s: calls.append(s) or -7)
    try:
        os.getppid()
        os.getppid()
        end = time.monotonic() + 3
        ret = 0
        while ret == 0 and time.monotonic() < end:
            ret = rb.poll(100)
        assert ret == -7 and len(calls) == 1
    finally:
        rb.close()


def test_exception_in_perf_sample_is_reraised_and_round_dropped(events):
    arm(events)
    calls = []

    def on_sample(addr, size):
        calls.append(size)
        raise Boom()

    pb = PerfBuffer(events.find_map("pb").fd, on_sample, page_count=8)
    try:
        os.getppid()
        os.getppid()
        with pytest.raises(Boom):
            _poll_until_raise(pb)
        assert len(calls) == 1
    finally:
        pb.close()


def test_attach_missing_tracepoint_names_program_and_section(events):
    prog = events.find_program("handle_missing")
    with pytest.raises(BpfError) as exc:
        prog.attach()
    msg = str(exc.value)
    assert msg.startswith("attach program 'handle_missing' (tp/wasm_bpf_no_such_category/no_such_event): ")
    assert "(ENOENT)" in msg and "\n" not in msg
    assert exc.value.errno == errno.ENOENT


def test_attach_xdp_unknown_interface(events):
    with pytest.raises(BpfError, match="no network interface named 'wasmbpf-nope0'"):
        events.find_program("handle_getppid").attach_xdp("wasmbpf-nope0")


def test_corrupt_elf(bpf_objects, no_bpf_leaks):
    data = bytearray(bpf_objects["events"])
    data[40:64] = b"\xff" * 24  # section header table offset and counts
    with pytest.raises(BpfError) as exc:
        open_bytes(bytes(data), "corrupt")
    assert str(exc.value).startswith("open bpf object 'corrupt': ")
    assert exc.value.errno is not None and "\n" not in str(exc.value)
    with pytest.raises(BpfError, match=r"^open bpf object 'junk': .+ \(\w+\)$"):
        open_bytes(b"not an elf at all", "junk")


def test_verifier_rejection_carries_log(bpf_objects, no_bpf_leaks):
    with open_bytes(bpf_objects["rejected"], "rejected") as obj:
        with pytest.raises(BpfError) as exc:
            obj.load()
    err = exc.value
    assert str(err).startswith("load bpf object 'rejected': program 'unchecked_lookup': ")
    assert "\n" not in str(err)
    assert err.errno in (errno.EACCES, errno.EINVAL)
    assert "invalid mem access" in err.details or "R0" in err.details, err.details
    assert len(err.details.splitlines()) <= 20


def test_close_is_idempotent_and_destroys_links(bpf_objects, no_bpf_leaks):
    obj = open_bytes(bpf_objects["events"], "events")
    try:
        obj.load()
        link = arm(obj)
        assert link.fd > 0
    finally:
        obj.close()
    assert link.destroyed and obj.closed
    obj.close()
    link.destroy()
    with pytest.raises(BpfError, match="closed"):
        obj.programs


def test_empty_buffer_is_rejected(no_bpf_leaks):
    with pytest.raises(BpfError, match="empty buffer"):
        BpfObject.open_mem(0, 0)


def test_own_programs_gone_after_close(bpf_objects, no_bpf_leaks):
    """Leak check scoped to this module's own program names (the global
    no_bpf_leaks snapshot can also see other processes' objects)."""
    obj = open_bytes(bpf_objects["events"], "events")
    try:
        obj.load()
        arm(obj)
        ids = {_prog_id(p.fd) for p in obj.programs}
    finally:
        obj.close()
    end = time.monotonic() + 5
    while ids & set(prog_names()) and time.monotonic() < end:
        time.sleep(0.1)
    assert not ids & set(prog_names())
