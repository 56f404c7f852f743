"""Batch delivery of ring-buffer records (abi/poller.py drain_batches + the
dispatch loop rewrite.add_ring_dispatch adds to the module), against a ring
laid out as the kernel lays it out, in process memory; and MappedRing over a
real BPF ring buffer map. Runs on the engine under test (`make test` runs it
on both: the wasmer pass takes the `engine` tests)."""
import ctypes
import struct
import time

import pytest

from conftest import ENGINE
from wasm_bpf_cli.abi.poller import BufferPoller, BufferStats, Staging
from wasm_bpf_cli.engines import rewrite
from wasm_bpf_cli.engines.base import GuestTrap, WasiOptions

BUSY, DISCARD = 1 << 31, 1 << 30

# The callback logs (ctx, first u32 of the sample, size, the sample's last
# byte) at 0x1000 + 16*n; it returns -7 for a sample starting with 99, and
# traps on one starting with 98.
GUEST = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 2)
  (table (export "__indirect_function_table") 2 funcref)
  (elem (i32.const 1) func $cb)
  (global $n (export "n") (mut i32) (i32.const 0))
  (func (export "_start"))
  (func $cb (export "go-callback") (param i32 i32 i32) (result i32)
    (local $at i32)
    (local.set $at (i32.add (i32.const 0x1000) (i32.shl (global.get $n) (i32.const 4))))
    (i32.store (local.get $at) (local.get 0))
    (i32.store offset=4 (local.get $at) (i32.load (local.get 1)))
    (i32.store offset=8 (local.get $at) (local.get 2))
    (i32.store offset=12 (local.get $at) (i32.load8_u (i32.sub (i32.add (local.get 1) (local.get 2)) (i32.const 1))))
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (if (i32.eq (i32.load (local.get 1)) (i32.const 98)) (then unreachable))
    (if (result i32) (i32.eq (i32.load (local.get 1)) (i32.const 99))
      (then (i32.const -7)) (else (i32.const 0)))))"""

pytestmark = pytest.mark.engine

DATA, MAX_SIZE, CTX = 0x8000, 64, 5


class FakeRing:
    """MappedRing's interface over process memory: the data area once, as
    MappedRing maps it (records wrap around its end)."""

    def __init__(self, size=4096):
        self.size, self.mask = size, size - 1
        self.buf = ctypes.create_string_buffer(size)
        self.data = ctypes.addressof(self.buf)
        self.cons = self.prod = 0

    def consumer(self):
        return self.cons

    def producer(self):
        return self.prod

    def set_consumer(self, pos):
        self.cons = pos

    def _put(self, pos, raw):
        for i, b in enumerate(raw):
            off = (pos + i) & self.mask
            self.buf[off] = b

    def submit(self, value, size=16, flags=0, fill=0xAB):
        body = struct.pack("<I", value) + bytes([fill]) * (size - 4)
        hdr = struct.pack("<II", size | flags, 0)
        self._put(self.prod, hdr + body)
        pos = self.prod
        self.prod += (8 + size + 7) & ~7
        return pos

    def commit(self, pos):
        hdr = struct.unpack("<I", bytes(self.buf[pos & self.mask:(pos & self.mask) + 4]))[0]
        self._put(pos, struct.pack("<I", hdr & ~BUSY))


@pytest.fixture
def guest():
    from wasm_bpf_cli import engines as registry
    import wasmtime

    engine = registry.create(ENGINE)
    inst = engine.instantiate(engine.compile(bytes(wasmtime.wat2wasm(GUEST)), cache=False),
                              WasiOptions(argv=["g"]), [])
    yield inst
    inst.close()


def poller_for(ring, staging):
    poller = BufferPoller.__new__(BufferPoller)
    poller.ring = ring
    poller.stats = BufferStats("rb", "ringbuf")
    poller._buffer = None
    poller._dispatch = None
    return poller


def log_of(inst, n):
    raw = inst.memory.read(0x1000, 16 * n)
    return [struct.unpack_from("<iiii", raw, 16 * i) for i in range(n)]


def drain(inst, ring, window=1024, which=rewrite.RING_DISPATCH_TABLE):
    staging = getattr(inst, "_test_staging", None)
    if staging is None:
        staging = inst._test_staging = Staging(inst.memory, window)
    poller = poller_for(ring, staging)
    got = poller.drain_batches(staging, inst.ring_dispatcher(which), 1, CTX, DATA, MAX_SIZE)
    return got, poller.stats.delivered


@pytest.mark.parametrize("which", [rewrite.RING_DISPATCH_TABLE,
                                   rewrite.RING_DISPATCH_EXPORT_PREFIX + "go-callback"])
def test_records_across_the_wraparound_in_order(guest, which):
    ring = FakeRing(4096)
    ring.cons = ring.prod = 4096 - 40  # the 2nd record straddles the end of the data area
    for v in range(1, 6):
        ring.submit(v, size=20, fill=v)
    got, delivered = drain(guest, ring, which=which)
    assert (got, delivered) == (5, 5)
    assert log_of(guest, 5) == [(CTX, v, 20, v) for v in range(1, 6)]
    assert ring.cons == ring.prod


def test_busy_stops_and_discarded_is_skipped(guest):
    ring = FakeRing()
    ring.submit(1)
    ring.submit(2, flags=DISCARD)
    ring.submit(3)
    busy = ring.submit(4, flags=BUSY)
    ring.submit(5)
    assert drain(guest, ring) == (2, 2)
    assert [r[1] for r in log_of(guest, 2)] == [1, 3]
    assert ring.cons == busy  # the busy record and what follows stay
    ring.commit(busy)
    assert drain(guest, ring) == (2, 2)
    assert [r[1] for r in log_of(guest, 4)] == [1, 3, 4, 5]
    assert ring.cons == ring.prod


def test_negative_return_stops_and_leaves_the_rest_for_the_next_poll(guest):
    ring = FakeRing()
    ring.submit(1)
    ring.submit(99)
    after = ring.submit(2)
    ring.submit(3)
    got, delivered = drain(guest, ring)
    assert got == -7 and delivered == 2  # the stopping record was delivered, and consumed
    assert ring.cons == after
    assert drain(guest, ring) == (2, 2)
    assert [r[1] for r in log_of(guest, 4)] == [1, 99, 2, 3]


def test_samples_are_cut_to_max_size(guest):
    ring = FakeRing()
    ring.submit(1, size=200, fill=0x11)
    ring.submit(2, size=MAX_SIZE, fill=0x22)
    ring.submit(3, size=5, fill=0x33)
    drain(guest, ring)
    assert log_of(guest, 3) == [(CTX, 1, MAX_SIZE, 0x11), (CTX, 2, MAX_SIZE, 0x22), (CTX, 3, 5, 0x33)]


def test_batches_smaller_than_the_backlog(guest):
    ring = FakeRing(8192)
    for v in range(100):
        ring.submit(1000 + v, size=24)
    got, _ = drain(guest, ring, window=256)  # 8 records per crossing
    assert got == 100 and ring.cons == ring.prod
    assert [r[1] for r in log_of(guest, 100)] == list(range(1000, 1100))


@pytest.mark.kernel
def test_records_larger_than_the_window_reach_the_guest_through_libbpf(monkeypatch, no_bpf_leaks):
    """A staging window smaller than one record (28 bytes): the batch loop
    copies nothing, hands the ring to libbpf's per-sample consume, and the
    guest still sees every sample, whole, in order."""
    import subprocess
    import sys

    from conftest import guest as built_guest
    from wasm_bpf_cli import Outcome, RunOptions, Runner

    monkeypatch.setattr(Staging.__init__, "__defaults__", (16,))
    consumed = []
    libbpf_consume = BufferPoller._consume

    def spy(self):
        got = libbpf_consume(self)
        consumed.append(got)
        return got

    monkeypatch.setattr(BufferPoller, "_consume", spy)
    child = subprocess.Popen([sys.executable, "-c", "import os,sys; sys.stdin.readline(); "
                              "[os.getppid() for _ in range(3)]"], stdin=subprocess.PIPE, text=True)
    out = []
    try:
        runner = Runner(built_guest("ringbuf"), RunOptions(engine=ENGINE, args=[str(child.pid), "3"],
                                                           stdout=out.append, duration=20))
        runner.start()
        deadline = time.monotonic() + 20
        while b"attached\n" not in b"".join(out) and time.monotonic() < deadline:
            time.sleep(0.02)
        child.stdin.write("go\n")
        child.stdin.flush()
        result = runner.wait(30)
    finally:
        child.kill()
        child.wait()
    assert (result.outcome, result.exit_code) == (Outcome.EXITED, 0), result
    lines = b"".join(out).decode().splitlines()
    assert lines == ["attached"] + [f"sample pid={child.pid} tag=ringevt size=20"] * 3 + ["got 3"]
    assert [(b.name, b.delivered) for b in result.buffers] == [("rb", 3)]
    assert sum(n for n in consumed if n > 0) == 3  # all three went through libbpf


def test_trap_in_the_callback_consumes_nothing(guest):
    ring = FakeRing()
    ring.submit(1)
    ring.submit(98)
    with pytest.raises(GuestTrap):
        drain(guest, ring)
    assert ring.cons == 0


def test_dispatch_loops_are_added_only_where_they_apply():
    import wasmtime

    plain = bytes(wasmtime.wat2wasm('(module (func (export "f")))'))
    assert rewrite.add_ring_dispatch(plain, ["go-callback"]) == (plain, [])
    wrong = bytes(wasmtime.wat2wasm('(module (func (export "go-callback") (param i32)))'))
    assert rewrite.add_ring_dispatch(wrong, ["go-callback"])[1] == []
    w, added = rewrite.add_ring_dispatch(bytes(wasmtime.wat2wasm(GUEST)), ["go-callback", "other"])
    assert added == [rewrite.RING_DISPATCH_TABLE, rewrite.PERF_DISPATCH_TABLE,
                     rewrite.RING_DISPATCH_EXPORT_PREFIX + "go-callback",
                     rewrite.PERF_DISPATCH_EXPORT_PREFIX + "go-callback"]
    wasmtime.Module(wasmtime.Engine(), w)  # validates


class FakePerf:
    """One CPU's perf buffer as the kernel lays it out: the mmap page
    (data_head at 1024, data_tail at 1032), then the data area (not mapped
    twice: records wrap around its end)."""

    def __init__(self, size=4096):
        import mmap

        self.page_size = mmap.PAGESIZE
        self.buf = ctypes.create_string_buffer(self.page_size + size)
        self.page = ctypes.addressof(self.buf)
        self.size = size
        self.head = 0

    def _put(self, raw):
        for i, b in enumerate(raw):
            self.buf[self.page_size + ((self.head + i) % self.size)] = b
        self.head += len(raw)
        ctypes.c_uint64.from_address(self.page + 1024).value = self.head

    @property
    def tail(self):
        return ctypes.c_uint64.from_address(self.page + 1032).value

    @tail.setter
    def tail(self, value):
        ctypes.c_uint64.from_address(self.page + 1032).value = value

    def sample(self, value, size=12, fill=0xCD):
        raw = struct.pack("<I", value) + bytes([fill]) * (size - 4)
        raw_size = ((size + 4 + 7) & ~7) - 4  # the kernel pads the raw data
        raw += bytes(raw_size - size)
        self._put(struct.pack("<IHHI", 9, 0, 8 + 4 + raw_size, raw_size) + raw)
        return raw_size

    def lost(self, count):
        self._put(struct.pack("<IHHQQQ", 2, 0, 32, 0, count, 0))


def perf_drain(inst, perf, which=rewrite.PERF_DISPATCH_TABLE):
    from wasm_bpf_cli.abi.poller import _PerfRing

    staging = getattr(inst, "_test_staging", None)
    if staging is None:
        staging = inst._test_staging = Staging(inst.memory, 1024)
    poller = poller_for(None, staging)
    poller.perf_rings = [_PerfRing(perf.page, perf.size)]
    poller._buffer = type("B", (), {"lost": 0})()
    got = poller.drain_perf_batches(staging, inst.ring_dispatcher(which), 1, CTX, DATA, MAX_SIZE)
    return got, poller.stats.delivered, poller.stats.lost


@pytest.mark.parametrize("which", [rewrite.PERF_DISPATCH_TABLE,
                                   rewrite.PERF_DISPATCH_EXPORT_PREFIX + "go-callback"])
def test_perf_records_across_the_end_lost_counts_and_truncation(guest, which):
    perf = FakePerf(4096)
    perf.head = perf.tail = 4096 - 40
    sizes = [perf.sample(1, fill=1), perf.sample(2, size=100, fill=2)]
    perf.lost(17)
    sizes.append(perf.sample(3, size=20, fill=3))
    got, delivered, lost = perf_drain(guest, perf, which)
    assert (got, delivered, lost) == (3, 3, 17)
    assert [r[:3] for r in log_of(guest, 3)] == [(CTX, 1, sizes[0]), (CTX, 2, MAX_SIZE), (CTX, 3, sizes[2])]
    assert perf.tail == perf.head


def test_perf_negative_return_leaves_the_rest(guest):
    perf = FakePerf()
    perf.sample(1)
    perf.sample(99)
    after = perf.head
    perf.sample(2)
    assert perf_drain(guest, perf)[:2] == (-7, 2)
    assert perf.tail == after
    assert perf_drain(guest, perf)[:2] == (1, 1)
    assert [r[1] for r in log_of(guest, 3)] == [1, 99, 2]


@pytest.mark.kernel
def test_mapped_ring_over_a_real_ring_buffer_map(no_bpf_leaks):
    import os

    from wasm_bpf_cli.bpf.ringbuf import MappedRing

    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(struct.pack("<IIII", 27, 0, 0, 8192) + bytes(112))
    fd = libc.syscall(321, 0, attr, len(attr))  # bpf(BPF_MAP_CREATE) of a ring buffer
    assert fd >= 0, os.strerror(ctypes.get_errno())
    try:
        ring = MappedRing(fd, 8192)
        assert ring.consumer() == 0 and ring.producer() == 0
        ring.set_consumer(0)
        ctypes.c_uint8.from_address(ring.data + 8191).value  # the whole data area is readable
        assert ring.segments(8192 - 8, 24) == ((ring.data + 8184, 8), (ring.data, 16))  # wraps in two
        assert ring.segments(8192 + 16, 24) == ((ring.data + 16, 24),)
        ring.close()
    finally:
        os.close(fd)


def test_a_callback_polling_its_own_buffer_mid_batch_gets_nothing():
    """The rest of the batch is not consumed yet: it must not be delivered twice."""
    from wasm_bpf_cli.abi.delivery import BatchPlan
    from wasm_bpf_cli.abi.host import GuestObject, HostAbi
    from wasm_bpf_cli.bpf import MapInfo

    class Memory:
        def host_address(self, ptr, size):
            return 0x1000 + ptr if ptr + size <= 65536 else None

    class Poller:
        in_batch = True
        stats = BufferStats("rb", "ringbuf")

        def poll(self, *a):
            raise AssertionError("polled inside its own batch")

    abi = HostAbi()
    abi.bind(type("I", (), {"memory": Memory()})())
    gobj = GuestObject.__new__(GuestObject)
    gobj.maps = {7: MapInfo(27, 0, 0, 4096, "rb")}
    gobj.pollers = {7: Poller()}
    abi.objects[1] = gobj
    assert abi.delivery._poll(1, 7, None, 0, 64, 64, 0, BatchPlan(None, 1)) == 0
    abi.objects.clear()
    abi.close()


def test_a_record_arriving_as_a_held_poll_begins_is_held_too():
    """With max_delivery_delay, a record that arrives just after the poll
    found nothing waiting (between its look and its first consume) is held
    like one the wait finds, not delivered at once."""
    import os
    import select

    class Ring:  # nothing committed at the poll's first look; one record right after
        looks = 0

        def producer(self):
            self.looks += 1
            if self.looks == 1:
                os.write(ready_w, b"r")  # the ring's fd turns readable
                return 0
            return 16

        def consumer(self):
            return 0

    ready_r, ready_w = os.pipe()
    wake_r, wake_w = os.pipe()
    poller = BufferPoller.__new__(BufferPoller)
    poller.ring, poller.perf_rings, poller._buffer, poller._dispatch = Ring(), [], None, None
    poller._epoll, poller._stop_epoll = select.epoll(), select.epoll()
    poller._epoll.register(ready_r, select.EPOLLIN)
    poller._epoll.register(wake_r, select.EPOLLIN)
    poller._stop_epoll.register(wake_r, select.EPOLLIN)
    drained = []
    t0 = time.monotonic()
    try:
        got = poller.poll(None, 5000, lambda: False, lambda: drained.append(time.monotonic() - t0) or 1,
                          max_delay=0.3)
    finally:
        poller._epoll.close()
        poller._stop_epoll.close()
        for fd in (ready_r, ready_w, wake_r, wake_w):
            os.close(fd)
    assert got == 1
    assert len(drained) == 1 and drained[0] >= 0.29, drained  # held the 0.3 s, then delivered once
