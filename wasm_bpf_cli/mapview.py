"""Host-side read access to a running guest's maps (Runner.maps())."""
import ctypes
from typing import Any, Iterator, List, Optional, Tuple, Union

from wasm_bpf_cli.bpf import maps as raw
from wasm_bpf_cli.bpf.errors import BpfError, describe_errno
from wasm_bpf_cli.btf_values import encode_untyped

# Sections whose global variables libbpf turns into a map named "<object><section>".
_DATA_SECTIONS = (".bss", ".data", ".rodata", ".kconfig")


def _source_name(kernel_name: str) -> str:
    """".bss" for "opentrac.bss"; a map declared in .maps keeps its name."""
    cut = max(kernel_name.rfind(sec) for sec in _DATA_SECTIONS)
    return kernel_name[cut:] if cut > 0 else kernel_name


# Map types that stream samples instead of holding keys and values
# (BPF_MAP_TYPE_PERF_EVENT_ARRAY, _RINGBUF, _USER_RINGBUF).
BUFFER_MAP_TYPES = {4: "perf buffer", 27: "ring buffer", 31: "user ring buffer"}


class MapView:
    """One map of a BPF object the guest loaded. Reads go straight to the
    kernel by fd; they fail with BpfError once the guest closed the object."""

    def __init__(self, bpf_map, guest_object):
        self._object = guest_object
        self.object_handle: int = guest_object.handle
        # The kernel's name of a global data map is "<object>.bss"; `name`
        # says ".bss" like `inspect` and the guest's source do.
        self.kernel_name: str = bpf_map.name
        self.name: str = _source_name(bpf_map.name)
        self.fd: int = bpf_map.fd
        self.type: int = bpf_map.type
        self.type_name: str = bpf_map.type_name
        self.key_size: int = bpf_map.key_size
        self.value_size: int = bpf_map.value_size
        self.max_entries: int = bpf_map.max_entries
        # A per-CPU map's value is one value per possible CPU: lookups and
        # items() give a list of them (bytes, or decoded), CPU 0 first.
        self.per_cpu: bool = self.type in raw.PERCPU_MAP_TYPES
        self._cpus = raw.possible_cpus() if self.per_cpu else 1

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

    def lookup(self, key: Any) -> Any:
        """The value stored under `key`, or None if there is none.

        `key` is either the key's bytes (then the value comes back as bytes)
        or a Python value of the map's key type from the object's BTF: an int
        for a `u32 pid` key, a dict for a struct, a str for a char array (then
        the value comes back decoded the same way, see decoded_items())."""
        self._require_entries()
        raw_key = isinstance(key, (bytes, bytearray, memoryview))
        if raw_key and len(key) != self.key_size:
            raise ValueError(f"map {self.name!r}: key must be {self.key_size} bytes, not {len(key)}")
        types = None
        if not raw_key:
            types = self._types(required=not isinstance(key, int))
            key_type = types.lookup(self.name)[0] if types is not None else None
            try:
                key = (types.encode(key_type, key, self.key_size) if types is not None
                       else encode_untyped(key, self.key_size))
            except (TypeError, ValueError) as err:
                raise type(err)(f"map {self.name!r}: key {key!r}: {err}") from None
        value = self._lookup_bytes(bytes(key))
        if value is None or types is None:
            return value
        return self._decoded(types, types.lookup(self.name)[1], value)

    def _decoded(self, types, value_type, value):
        if self.per_cpu:
            return [types.decode(value_type, v) for v in value]
        return types.decode(value_type, value)

    def _types(self, required: bool):
        """The object's MapTypes; None (or BpfError if `required`) without BTF."""
        try:
            return self._object.map_types
        except Exception as err:  # noqa: BLE001 - any unreadable BTF
            if not required:
                return None
            raise BpfError(f"map {self.name!r}: no usable BTF in its object: {err}") from None

    def _lookup_bytes(self, key: bytes) -> Union[None, bytes, List[bytes]]:
        """The value's bytes; for a per-CPU map, a list of them, one per CPU
        (the kernel writes a slot of 8-byte-rounded size for every CPU)."""
        k = ctypes.create_string_buffer(bytes(key), self.key_size or 1)
        slot = raw.per_cpu_slot(self.value_size) if self.per_cpu else self.value_size
        v = ctypes.create_string_buffer(max(slot * self._cpus, 1))
        ret = raw.lookup(self.fd, ctypes.addressof(k), ctypes.addressof(v))
        if ret == -2:  # ENOENT
            return None
        if ret < 0:
            raise BpfError(f"look up in map {self.name!r}: {describe_errno(-ret)}", errno=-ret)
        if self.per_cpu:
            return [v.raw[i * slot:i * slot + self.value_size] for i in range(self._cpus)]
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

    def items(self) -> Iterator[Tuple[bytes, Union[bytes, List[bytes]]]]:
        """(key, value) pairs as bytes (a per-CPU map: a list of one value per
        CPU); entries deleted meanwhile are skipped."""
        for key in self.keys():
            value = self._lookup_bytes(key)
            if value is not None:
                yield key, value

    def decoded_items(self) -> Iterator[Tuple[Any, Any]]:
        """(key, value) decoded with the types the object's BTF gives this map:
        ints, lists for arrays, dicts for structs, str for char arrays. Raises
        BpfError when the object carries no BTF for it."""
        types = self._types(required=True)
        key_type, value_type = types.lookup(self.name)
        if key_type is None and value_type is None:
            raise BpfError(f"map {self.name!r}: its object's BTF does not describe it")
        for key, value in self.items():
            yield types.decode(key_type, key), self._decoded(types, value_type, value)
