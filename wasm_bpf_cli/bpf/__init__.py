"""The bpf core: a small typed layer over the generated libbpf bindings."""
from .errors import BpfError, check_int, check_ptr
from .ids import link_ids, map_ids, prog_ids, prog_names
from .lib import libbpf, require_libbpf
from .link import Link
from .maps import Map, MapInfo, delete, lookup, map_info, next_key, update
from .object import BpfObject, Program
from .perfbuf import PerfBuffer
from .ringbuf import RingBuffer

__all__ = [
    "BpfError", "check_int", "check_ptr",
    "libbpf", "require_libbpf",
    "BpfObject", "Program", "Map", "MapInfo", "Link",
    "lookup", "update", "delete", "next_key", "map_info",
    "RingBuffer", "PerfBuffer",
    "prog_ids", "link_ids", "map_ids", "prog_names",
]
