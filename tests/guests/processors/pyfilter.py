"""pyfilter [N]: the Python twin of everyn.c: keeps a struct test_sample
(20 bytes: pid, seq, tag[8], cpu; little-endian) whose seq is a multiple
of N (default 2), with its tag replaced by "kept-py"; drops the others."""
import struct

import wit_world
from componentize_py_types import Err

SAMPLE = struct.Struct("<II8sI")


class WitWorld(wit_world.WitWorld):
    every = 2

    def init(self, args):
        if args:
            if not args[0].isdigit() or int(args[0]) <= 0:
                raise Err("N must be positive")
            WitWorld.every = int(args[0])

    def process(self, event):
        if len(event) != SAMPLE.size:
            return None
        pid, seq, _tag, cpu = SAMPLE.unpack(event)
        if seq % WitWorld.every:
            return None
        return SAMPLE.pack(pid, seq, b"kept-py\0", cpu)
