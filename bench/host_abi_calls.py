"""Python cost per call of the host ABI's two hot paths, without a kernel or
an engine (stand-ins for the guest memory, poller, staging pages and the
dispatch loop), to compare two versions of the code on a loaded machine:

    PYTHONPATH=/path/to/tree-a python bench/host_abi_calls.py a
    PYTHONPATH=/path/to/tree-b python bench/host_abi_calls.py b

map_operate: its prologue (fd owner, size cache, libbpf, bounds check) up to
an unknown command; buffer_poll: a table-callback poll through the batch
path. Minimum over 25 repeats of process CPU time."""
import sys
import time
import timeit

from wasm_bpf_cli.abi.host import HostAbi, GuestObject
from wasm_bpf_cli.bpf import MapInfo


class Mem:
    def host_address(self, ptr, size):
        return 0x10000 + ptr if ptr + size <= 1 << 20 else None


class Inst:
    memory = Mem()

    def table_caller(self, index, sig):
        return lambda *a: 0


class Stats:
    delivered = 0


class Poller:
    in_batch = False
    can_batch = True
    ring = object()
    stats = Stats()

    def drain_batches(self, staging, call, cb, ctx, data, max_size):
        return call(cb, ctx, data, max_size, 0, 0, 0, 0)

    def poll(self, dispatch, timeout_ms, stopping, drain):
        return drain()


class Staging:
    busy = False


abi = HostAbi()
abi.bind(Inst())
gobj = GuestObject.__new__(GuestObject)
gobj.maps = {7: MapInfo(1, 4, 8, 16, "kv"), 9: MapInfo(27, 0, 0, 4096, "rb")}
gobj.pollers = {9: Poller()}
abi.objects[1] = gobj
abi._fd_owner[7] = gobj
dispatch = lambda *a: 1  # noqa: E731
if hasattr(abi, "delivery"):  # abi/delivery.py; the else branch: before the split
    abi.delivery._staging = Staging()
    from wasm_bpf_cli.abi.delivery import BatchPlan
    plan = abi.delivery._table_plans[3] = BatchPlan(None, 3)
    plan.loops["ring"] = dispatch
else:
    abi._staging = Staging()
    abi._ring_calls["__wasm_bpf_ring_dispatch"] = dispatch

op = abi.map_operate
poll = abi.buffer_poll
assert op(7, 99, 100, 200, 0, 0) == -28
assert poll(1, 9, 3, 0, 64, 64, 0) == 1, poll(1, 9, 3, 0, 64, 64, 0)
n = 200000
t_op = min(timeit.repeat(lambda: op(7, 99, 100, 200, 0, 0), number=n, repeat=25, timer=time.process_time)) / n
t_poll = min(timeit.repeat(lambda: poll(1, 9, 3, 0, 64, 64, 0), number=n // 4, repeat=25, timer=time.process_time)) / (n // 4)
print(f"{sys.argv[1] if len(sys.argv) > 1 else 'this tree'}: map_operate {t_op * 1e9:.0f} ns/call, buffer_poll (batch path) {t_poll * 1e9:.0f} ns/call")
abi.objects.clear()
