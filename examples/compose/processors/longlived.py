"""longlived: a processor component in Python (the wasm-bpf:processor world),
used as `--filter rb=longlived`: of bootstrap's events, it keeps the exits
of processes that lived at least MIN_MS milliseconds (its argument,
`--with-arg longlived=MIN_MS`, default 100) and drops everything else:
exec events and short-lived processes."""
import struct

import wit_world
from componentize_py_types import Err

# struct event of ../bootstrap/bootstrap.h: pid, ppid, exit_code, pad,
# duration_ns, comm[16], filename[127], exit_event (168 bytes, little-endian)
EVENT = struct.Struct("<iiIIQ16s127sB")


class WitWorld(wit_world.WitWorld):
    min_ns = 100 * 1_000_000

    def init(self, args):
        if len(args) > 1 or (args and not args[0].isdigit()):
            raise Err("usage: --with-arg longlived=MIN_MS (a whole number of milliseconds)")
        if args:
            WitWorld.min_ns = int(args[0]) * 1_000_000

    def process(self, event):
        if len(event) != EVENT.size:
            return None
        duration_ns, exit_event = EVENT.unpack(event)[4], EVENT.unpack(event)[7]
        if not exit_event or duration_ns < WitWorld.min_ns:
            return None
        return event
