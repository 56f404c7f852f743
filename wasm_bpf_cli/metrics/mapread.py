"""Read every entry of a map by fd, for one scrape.

One BPF_MAP_LOOKUP_BATCH per up to BATCH entries (an array of 256 slots is
one syscall, not 512 get-next-key + lookup calls); a kernel or map that
refuses batches is walked key by key instead. Per-CPU values come back as
one slot per possible CPU, each rounded up to 8 bytes, as the kernel copies
them.
"""
import ctypes
import errno
from typing import List, Optional, Tuple

from wasm_bpf_cli.bpf import BpfError, libbpf
from wasm_bpf_cli.bpf.maps import per_cpu_slot
from wasm_bpf_cli.bpf.errors import describe_errno
from wasm_bpf_cli.metrics.layout import MapShape

BATCH = 1024
BATCH_MAP_TYPES = frozenset((1, 2, 5, 6, 9, 10))

Entries = List[Tuple[bytes, bytes]]  # (key, value of all CPUs)


class MapReader:
    """Buffers for reading one map (by its shape) again and again."""

    def __init__(self, shape: MapShape, cpus: int):
        self.shape = shape
        self.cpus = cpus if shape.per_cpu else 1
        self.slot = per_cpu_slot(shape.value_size) if shape.per_cpu else shape.value_size
        self.stride = self.slot * self.cpus  # bytes of one entry's value
        self.batch = max(1, min(BATCH, shape.max_entries or BATCH))
        self._keys = ctypes.create_string_buffer(max(1, shape.key_size) * self.batch)
        self._values = ctypes.create_string_buffer(max(1, self.stride) * self.batch)
        self._token = ctypes.create_string_buffer(max(8, shape.key_size))
        self._token_in = ctypes.create_string_buffer(max(8, shape.key_size))
        self._batches = shape.type in BATCH_MAP_TYPES

    def per_cpu_values(self, value: bytes) -> List[bytes]:
        return [value[i * self.slot:i * self.slot + self.shape.value_size] for i in range(self.cpus)]

    def read(self, fd: int) -> Entries:
        """(key, value) of every entry; raises BpfError when the map cannot be read."""
        if self._batches:
            entries = self._read_batches(fd)
            if entries is not None:
                return entries
            self._batches = False
        return self._read_walk(fd)

    def _read_batches(self, fd: int) -> Optional[Entries]:
        lib = libbpf()
        ks, stride = self.shape.key_size, self.stride
        entries: Entries = []
        token_in = None
        while True:
            count = ctypes.c_uint(self.batch)
            ret = lib.bpf_map_lookup_batch(fd, token_in, self._token, self._keys, self._values,
                                           ctypes.byref(count), None)
            if ret < 0 and -ret not in (errno.ENOENT,):
                if -ret in (errno.EINVAL, errno.ENOTSUP, 524, errno.ENOSPC) and not entries:
                    return None  # 524: ENOTSUPP, the kernel's own; ENOSPC: a bucket too large
                raise BpfError(f"read map {self.shape.name!r}: {describe_errno(-ret)}", errno=-ret)
            n = count.value
            keys = ctypes.string_at(self._keys, n * ks)
            values = ctypes.string_at(self._values, n * stride)
            entries.extend((keys[i * ks:(i + 1) * ks], values[i * stride:(i + 1) * stride]) for i in range(n))
            if ret < 0 or n == 0:  # ENOENT: that was the last batch
                return entries
            ctypes.memmove(self._token_in, self._token, len(self._token))
            token_in = self._token_in

    def _read_walk(self, fd: int) -> Entries:
        lib = libbpf()
        ks = self.shape.key_size
        cur = ctypes.create_string_buffer(max(1, ks))
        nxt = ctypes.create_string_buffer(max(1, ks))
        value = ctypes.create_string_buffer(max(1, self.stride))
        entries: Entries = []
        first = True
        while True:
            ret = lib.bpf_map_get_next_key(fd, None if first else cur, nxt)
            if ret == -errno.ENOENT:
                return entries
            if ret < 0:
                raise BpfError(f"read map {self.shape.name!r}: {describe_errno(-ret)}", errno=-ret)
            first = False
            ctypes.memmove(cur, nxt, ks)
            ret = lib.bpf_map_lookup_elem(fd, cur, value)
            if ret == -errno.ENOENT:
                continue  # deleted meanwhile
            if ret < 0:
                raise BpfError(f"read map {self.shape.name!r}: {describe_errno(-ret)}", errno=-ret)
            entries.append((cur.raw[:ks], value.raw[:self.stride]))
