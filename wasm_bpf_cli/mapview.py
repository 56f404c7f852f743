"""Host-side read access to a running guest's maps (Runner.maps())."""
import ctypes
from typing import Any, Iterator, Optional, Tuple

from wasm_bpf_cli.bpf import maps as raw
from wasm_bpf_cli.bpf.errors import BpfError, describe_errno


# Map types that stream samples instead of holding keys and values
# (BPF_MAP_TYPE_PERF_EVENT_ARRAY, _RINGBUF, _USER_RINGBUF).
BUFFER_MAP_TYPES = {4: "perf buffer", 27: "ring buffer", 31: "user ring buffer"}


class MapView:
    """One map of a BPF object the guest loaded. Reads go straight to the
    kernel by fd; they fail with BpfError once the guest closed the object."""

    def __init__(self, bpf_map, guest_object):
        self._object = guest_object
        self.object_handle: int = guest_object.handle
        self.name: str = bpf_map.name
        self.fd: int = bpf_map.fd
        self.type: int = bpf_map.type
        self.type_name: str = bpf_map.type_name
        self.key_size: int = bpf_map.key_size
        self.value_size: int = bpf_map.value_size
        self.max_entries: int = bpf_map.max_entries

    @property
    def is_buffer(self) -> bool:
        """True for ring and perf buffers: no keys or values to read."""
        return self.type in BUFFER_MAP_TYPES

    def _require_entries(self) -> None:
        if self.is_buffer:
            raise BpfError(f"map {self.name!r} is a {BUFFER_MAP_TYPES[self.type]} ({self.type_name}): it "
                           "streams samples to the guest's callback and has no keys or values to read")

    def __repr__(self) -> str:
        return f"<MapView {self.name!r} {self.type_name} key={self.key_size} value={self.value_size}>"

    def lookup(self, key: bytes) -> Optional[bytes]:
        """The value stored under `key`, or None if there is none."""
        self._require_entries()
        if len(key) != self.key_size:
            raise ValueError(f"map {self.name!r}: key must be {self.key_size} bytes, not {len(key)}")
        k = ctypes.create_string_buffer(bytes(key), self.key_size or 1)
        v = ctypes.create_string_buffer(self.value_size or 1)
        ret = raw.lookup(self.fd, ctypes.addressof(k), ctypes.addressof(v))
        if ret == -2:  # ENOENT
            return None
        if ret < 0:
            raise BpfError(f"look up in map {self.name!r}: {describe_errno(-ret)}", errno=-ret)
        return v.raw[: self.value_size]

    def keys(self) -> Iterator[bytes]:
        self._require_entries()
        prev = None
        cur = ctypes.create_string_buffer(max(self.key_size, 1))
        nxt = ctypes.create_string_buffer(max(self.key_size, 1))
        while True:
            ret = raw.next_key(self.fd, ctypes.addressof(cur) if prev is not None else 0, ctypes.addressof(nxt))
            if ret == -2:  # ENOENT: past the last key
                return
            if ret < 0:
                raise BpfError(f"iterate map {self.name!r}: {describe_errno(-ret)}", errno=-ret)
            prev = nxt.raw[: self.key_size]
            yield prev
            ctypes.memmove(cur, nxt, self.key_size)

    def items(self) -> Iterator[Tuple[bytes, bytes]]:
        """(key, value) pairs as bytes; entries deleted meanwhile are skipped."""
        for key in self.keys():
            value = self.lookup(key)
            if value is not None:
                yield key, value

    def decoded_items(self) -> Iterator[Tuple[Any, Any]]:
        """(key, value) decoded with the types the object's BTF gives this map:
        ints, lists for arrays, dicts for structs, str for char arrays. Raises
        BpfError when the object carries no BTF for it."""
        try:
            types = self._object.map_types
        except Exception as err:  # noqa: BLE001 - any unreadable BTF
            raise BpfError(f"map {self.name!r}: no usable BTF in its object: {err}") from None
        key_type, value_type = types.lookup(self.name)
        if key_type is None and value_type is None:
            raise BpfError(f"map {self.name!r}: its object's BTF does not describe it")
        for key, value in self.items():
            yield types.decode(key_type, key), types.decode(value_type, value)
