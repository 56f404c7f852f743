"""wasm_bpf_map_operate: a guest's lookups, updates, deletes and
get-next-keys on the maps of the objects it loaded, with the sizes of each
map cached per fd and map walks served from batch lookups (mapwalk.py)."""
import ctypes
from typing import TYPE_CHECKING, Dict, Optional

from wasm_bpf_cli.abi import errno as werr
from wasm_bpf_cli.abi.mapwalk import MapWalks
from wasm_bpf_cli.bpf.maps import per_cpu_slot, possible_cpus

if TYPE_CHECKING:
    from wasm_bpf_cli.abi.guest_object import GuestObject
    from wasm_bpf_cli.engines.base import Instance

U32 = 0xFFFFFFFF
BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM, BPF_MAP_GET_NEXT_KEY = 1, 2, 3, 4
PERCPU_MAP_TYPES = {5, 6, 10, 21}  # PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE


class MapOperations:
    def __init__(self, fd_owner: Dict[int, "GuestObject"]):
        # fd -> the loaded object owning that map: the only fds the guest may
        # use. Shared with (and kept up to date by) HostAbi.
        self._fd_owner = fd_owner
        self._map_cache: Dict[int, tuple] = {}  # fd -> (owner, key size, value size)
        self._walks = MapWalks()
        self._cpus: Optional[int] = None
        self._libbpf = None
        self.instance: Optional["Instance"] = None

    def forget(self, gobj: "GuestObject") -> None:
        """`gobj` was closed: drop its walks and cached sizes (the cache
        entry holds the object, and with it the ELF image it came from)."""
        self._walks.drop(gobj.maps)
        for fd in gobj.maps:
            entry = self._map_cache.get(fd)
            if entry is not None and entry[0] is gobj:
                del self._map_cache[fd]

    def forget_all(self) -> None:
        """Every object was closed."""
        self._map_cache.clear()
        self._walks = MapWalks()

    def _map_sizes(self, fd: int, gobj: "GuestObject"):
        """(owner, key size, value size as the kernel copies it), cached per fd."""
        info = gobj.maps[fd]
        value_size = info.value_size
        if info.type in PERCPU_MAP_TYPES:
            if self._cpus is None:
                self._cpus = possible_cpus()
            value_size = per_cpu_slot(value_size) * self._cpus
        entry = self._map_cache[fd] = (gobj, info.key_size, value_size)
        return entry

    def map_operate(self, fd: int, cmd: int, key: int, value: int, next_key: int, flags: int) -> int:
        # Hot (a map walk is two calls per entry): no lock (dict.get is atomic),
        # sizes cached per fd, libbpf's functions called directly.
        gobj = self._fd_owner.get(fd)
        if gobj is None:
            return werr.EBADF
        entry = self._map_cache.get(fd)
        if entry is None or entry[0] is not gobj:
            entry = self._map_sizes(fd, gobj)
        _, key_size, value_size = entry
        lib = self._libbpf
        if lib is None:
            from wasm_bpf_cli.bpf import libbpf

            lib = self._libbpf = libbpf()
        # One bounds check per call: both ranges lie inside [0, end), so
        # host_address(0, end) is the memory's base if they are valid.
        host_address = self.instance.memory.host_address
        key &= U32
        key_end = key + key_size
        try:
            if cmd == BPF_MAP_GET_NEXT_KEY:
                next_key &= U32
                end = next_key + key_size
                base = host_address(0, key_end if key_end > end else end) if next_key else None
                if base is None:
                    return werr.EFAULT
                k = base + key if key else None
                nk = base + next_key
                served = self._walks.next_key(fd, gobj, k, nk, key_size, value_size)
                if served is not None:
                    return served
                ret = lib.bpf_map_get_next_key(fd, k, nk)
            elif cmd == BPF_MAP_LOOKUP_ELEM or cmd == BPF_MAP_UPDATE_ELEM:
                value &= U32
                end = value + value_size
                base = host_address(0, key_end if key_end > end else end) if value else None
                if base is None or not (key or key_size == 0):
                    return werr.EFAULT
                k, v = base + key, base + value
                if cmd == BPF_MAP_LOOKUP_ELEM:
                    if self._walks.lookup(fd, gobj, k, v):
                        return 0
                    ret = lib.bpf_map_lookup_elem(fd, k, v)
                else:
                    self._walks.forget(fd)
                    ret = lib.bpf_map_update_elem(fd, k, v, flags & 0xFFFFFFFFFFFFFFFF)
            elif cmd == BPF_MAP_DELETE_ELEM:
                k = host_address(key, key_size) if (key or key_size == 0) else None
                if k is None:
                    return werr.EFAULT
                self._walks.forget(fd)
                ret = lib.bpf_map_delete_elem(fd, k)
            else:
                return werr.EINVAL
        except (ctypes.ArgumentError, TypeError, OverflowError):
            return werr.EINVAL
        return werr.neg(ret) if ret < 0 else 0
