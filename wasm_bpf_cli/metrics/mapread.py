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

Raw = Tuple[int, bytes, bytes]  # (entries, keys end to end, values end to end)


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
        self._count = ctypes.c_uint()
        self._count_ref = ctypes.byref(self._count)

    def per_cpu_values(self, value: bytes) -> List[bytes]:
        return [value[i * self.slot:i * self.slot + self.shape.value_size] for i in range(self.cpus)]

    def read_raw(self, fd: int) -> Raw:
        """(entries, their keys end to end, their values end to end: `stride`
        bytes each); raises BpfError when the map cannot be read."""
        if self._batches:
            raw = self._read_batches(fd)
            if raw is not None:
                return raw
            self._batches = False
        return self._read_walk(fd)

    def _read_batches(self, fd: int) -> Optional[Raw]:
        lib = libbpf()
        ks, stride = self.shape.key_size, self.stride
        count = self._count
        n, keys, values = 0, [], []
        token_in = None
        while True:
            count.value = self.batch
            ret = lib.bpf_map_lookup_batch(fd, token_in, self._token, self._keys, self._values,
                                           self._count_ref, None)
            if ret < 0 and -ret not in (errno.ENOENT,):
                if -ret in (errno.EINVAL, errno.ENOTSUP, 524, errno.ENOSPC) and not n:
                    return None  # 524: ENOTSUPP, the kernel's own; ENOSPC: a bucket too large
                raise BpfError(f"read map {self.shape.name!r}: {describe_errno(-ret)}", errno=-ret)
            got = count.value
            if got:
                n += got
                keys.append(ctypes.string_at(self._keys, got * ks))
                values.append(ctypes.string_at(self._values, got * stride))
            if ret < 0 or got == 0 or n == self.shape.max_entries:  # ENOENT: that was the last batch;
                # or the map cannot hold more (an array read whole in one call, not two)
                if len(keys) == 1:
                    return n, keys[0], values[0]
                return n, b"".join(keys), b"".join(values)
            ctypes.memmove(self._token_in, self._token, len(self._token))
            token_in = self._token_in

    def _read_walk(self, fd: int) -> Raw:
        lib = libbpf()
        ks = self.shape.key_size
        cur = ctypes.create_string_buffer(max(1, ks))
        nxt = ctypes.create_string_buffer(max(1, ks))
        value = ctypes.create_string_buffer(max(1, self.stride))
        keys, values = [], []
        first = True
        while True:
            ret = lib.bpf_map_get_next_key(fd, None if first else cur, nxt)
            if ret == -errno.ENOENT:
                return len(keys), b"".join(keys), b"".join(values)
            if ret < 0:
                raise BpfError(f"read map {self.shape.name!r}: {describe_errno(-ret)}", errno=-ret)
            first = False
            ctypes.memmove(cur, nxt, ks)
            ret = lib.bpf_map_lookup_elem(fd, cur, value)
            if ret == -errno.ENOENT:
                continue  # deleted meanwhile
            if ret < 0:
                raise BpfError(f"read map {self.shape.name!r}: {describe_errno(-ret)}", errno=-ret)
            keys.append(cur.raw[:ks])
            values.append(value.raw[:self.stride])
