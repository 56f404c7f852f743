"""Maps: the `Map` view of a map inside a BpfObject, and raw operations by fd.

The raw operations serve the host ABI, which hands the kernel's answer to the
guest as a number: they never raise and return 0 or a negative Linux errno.
Addresses are native; the caller has already validated them."""
from __future__ import annotations

import ctypes
import errno
from typing import NamedTuple, Optional

from .errors import BpfError, check_int
from .lib import libbpf


# Per-CPU map types (PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH,
# PERCPU_CGROUP_STORAGE): a lookup copies one value per possible CPU, each
# rounded up to 8 bytes, so the value buffer is per_cpu_value_size() bytes.
PERCPU_MAP_TYPES = frozenset((5, 6, 10, 21))


def possible_cpus() -> int:
    """The number of possible CPUs, as the kernel sizes per-CPU values."""
    return max(1, libbpf().libbpf_num_possible_cpus())


def per_cpu_slot(value_size: int) -> int:
    """Bytes of one CPU's value in a per-CPU lookup's buffer."""
    return (value_size + 7) & ~7


def _call(name: str, *args) -> int:
    try:
        ret = getattr(libbpf(), name)(*args)
    except BpfError:
        return -errno.ENOSYS  # no usable libbpf
    except (ctypes.ArgumentError, TypeError, OverflowError):
        return -errno.EINVAL
    return ret if ret < 0 else 0


def lookup(fd: int, key_addr: int, value_addr: int) -> int:
    return _call("bpf_map_lookup_elem", fd, key_addr, value_addr)


def update(fd: int, key_addr: int, value_addr: int, flags: int) -> int:
    return _call("bpf_map_update_elem", fd, key_addr, value_addr, flags)


def delete(fd: int, key_addr: int) -> int:
    return _call("bpf_map_delete_elem", fd, key_addr)


def next_key(fd: int, key_addr_or_0: int, next_key_addr: int) -> int:
    """0 with the first key when `key_addr_or_0` is 0; -ENOENT after the last."""
    return _call("bpf_map_get_next_key", fd, key_addr_or_0 or None, next_key_addr)


class MapInfo(NamedTuple):
    type: int
    key_size: int
    value_size: int
    max_entries: int
    name: str


def map_info(fd: int) -> MapInfo:
    """The kernel's description of map `fd` (raises BpfError on a bad fd)."""
    lib = libbpf()
    info = lib.struct_bpf_map_info()
    length = ctypes.c_uint(ctypes.sizeof(info))
    check_int(lib.bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(length)),
              f"map info for fd {fd}")
    return MapInfo(info.type, info.key_size, info.value_size, info.max_entries,
                   info.name.decode("utf-8", "replace"))


class Map:
    """A map of a BpfObject. Borrowed: valid while its object is open."""

    def __init__(self, ptr, owner) -> None:
        self._ptr = ptr
        self._owner = owner

    def _p(self):
        if self._owner.closed:
            raise BpfError("map used after its bpf object was closed")
        return self._ptr

    @property
    def name(self) -> str:
        return libbpf().bpf_map__name(self._p()).decode()

    @property
    def fd(self) -> int:
        return libbpf().bpf_map__fd(self._p())

    @property
    def type(self) -> int:
        return libbpf().bpf_map__type(self._p())

    @property
    def type_name(self) -> str:
        name = libbpf().libbpf_bpf_map_type_str(self.type)
        return name.decode() if name else f"type {self.type}"

    @property
    def key_size(self) -> int:
        return libbpf().bpf_map__key_size(self._p())

    @property
    def value_size(self) -> int:
        return libbpf().bpf_map__value_size(self._p())

    @property
    def max_entries(self) -> int:
        return libbpf().bpf_map__max_entries(self._p())

    @property
    def pin_path(self) -> Optional[str]:
        """Where libbpf pins (or reuses) this map in bpffs at load, if anywhere."""
        path = libbpf().bpf_map__pin_path(self._p())
        return path.decode(errors="replace") if path else None

    def __repr__(self) -> str:
        if self._owner.closed:
            return "<Map (object closed)>"
        return f"<Map {self.name!r} {self.type_name} fd={self.fd}>"
