"""Decode map keys and values with the types the BPF object's BTF gives them,
and encode Python values the same way.

Used by MapView.decoded_items() and lookup(): a histogram `u64[26]` becomes
a list of ints, a `struct event` a dict, a `char comm[16]` a str; a u32 key
is encoded from an int. The object's ELF
bytes are read with the pure-Python readers of `inspect` (bounded, no
libbpf), once per object.
"""
import struct
from typing import Any, Dict, Optional, Tuple

from wasm_bpf_cli.inspect import btf_reader as B
from wasm_bpf_cli.inspect.elf_reader import read_elf

U32_KEY = -1  # pseudo type id: the u32 key of a global data (array) map
INT_SIGNED = 1
INT_CHAR = 2


class MapTypes:
    """The key and value BTF type ids of every map of one object, by map name."""

    def __init__(self, elf: bytes):
        obj = read_elf(elf)
        sec = obj.section(".BTF")
        if sec is None:
            raise ValueError("the BPF object has no BTF")
        self.btf = B.Btf(obj.section_bytes(sec))
        self.by_name: Dict[str, Tuple[Optional[int], Optional[int]]] = {}
        maps = self.btf.datasec(".maps")
        for type_id, _off, _size in (maps.members if maps else ()):
            var = self.btf.get(type_id)
            st = self.btf.resolve(var.size_or_type) if var and var.kind == B.VAR else None
            if st is None or st.kind != B.STRUCT:
                continue
            ids = {m: self._pointee(t) for m, t, _o in st.members if m in ("key", "value")}
            self.by_name[var.name] = (ids.get("key"), ids.get("value"))
        for sec_type in self.btf.datasecs():  # global data maps: `.rodata`, `.bss`, ...
            if sec_type.name != ".maps":  # one entry, key: the u32 index 0
                self.by_name.setdefault(sec_type.name, (U32_KEY, sec_type.id))

    def _pointee(self, type_id: int) -> Optional[int]:
        ptr = self.btf.get(type_id)
        return ptr.size_or_type if ptr is not None and ptr.kind == B.PTR else None

    def lookup(self, map_name: str) -> Tuple[Optional[int], Optional[int]]:
        """(key type id, value type id); internal maps are named like 'obj.rodata'."""
        if map_name in self.by_name:
            return self.by_name[map_name]
        for name, ids in self.by_name.items():
            if name.startswith(".") and map_name.endswith(name):
                return ids
        return (None, None)

    def encode(self, type_id: Optional[int], value: Any, size: int) -> bytes:
        """`value` as the `size` bytes of type `type_id`; ValueError/TypeError
        saying what does not fit. Without a type, an int is encoded as a
        little-endian integer of `size` bytes."""
        if type_id is None or type_id == U32_KEY or isinstance(value, (bytes, bytearray, memoryview)):
            return encode_untyped(value, size)
        data = _encode(self.btf, type_id, value, 0)
        if len(data) != size:
            raise ValueError(f"{len(data)} bytes, the map's size is {size}")
        return data

    def decode(self, type_id: Optional[int], data: bytes) -> Any:
        if type_id is None:
            return data
        if type_id == U32_KEY:
            return int.from_bytes(data[:4], "little")
        return _decode(self.btf, type_id, data, 0)


def _decode(btf: B.Btf, type_id: int, data: bytes, depth: int) -> Any:
    if depth > B.MAX_DEPTH:
        return data
    t = btf.resolve(type_id)
    if t is None:
        return data
    kind = t.kind
    if kind == B.INT:
        encoding = (t.extra[0] >> 24) & 0xF
        return int.from_bytes(data[:t.size_or_type], "little", signed=bool(encoding & INT_SIGNED))
    if kind in (B.ENUM, B.ENUM64):
        value = int.from_bytes(data[:t.size_or_type], "little", signed=False)
        return next((name for name, v in t.members if v == value), value)
    if kind == B.PTR:
        return int.from_bytes(data[:8], "little")
    if kind == B.FLOAT:
        return struct.unpack({4: "<f", 8: "<d"}[t.size_or_type], data[:t.size_or_type])[0]
    if kind == B.ARRAY:
        elem_id, _index, count = t.extra
        elem = btf.resolve(elem_id)
        size = btf.size(elem_id) or 0
        if (elem is not None and elem.kind == B.INT and size == 1
                and ((elem.extra[0] >> 24) & INT_CHAR or elem.name == "char")):
            return data[:count].split(b"\0", 1)[0].decode("utf-8", "replace")
        return [_decode(btf, elem_id, data[i * size:(i + 1) * size], depth + 1) for i in range(count)]
    if kind in (B.STRUCT, B.UNION):
        out = {}
        for name, member_type, offset in t.members:
            bits = offset >> 24 if t.kind_flag else 0
            bit_off = offset & 0xFFFFFF if t.kind_flag else offset
            if bits:  # a bitfield
                raw = int.from_bytes(data, "little")
                out[name] = (raw >> bit_off) & ((1 << bits) - 1)
                continue
            start = bit_off // 8
            size = btf.size(member_type) or 0
            value = _decode(btf, member_type, data[start:start + size], depth + 1)
            if name:
                out[name] = value
            elif isinstance(value, dict):  # an anonymous struct/union: its members inline
                out.update(value)
        return out
    if kind == B.DATASEC:
        out = {}
        for var_id, offset, size in t.members:
            var = btf.get(var_id)
            if var is not None and var.kind == B.VAR:
                out[var.name] = _decode(btf, var.size_or_type, data[offset:offset + size], depth + 1)
        return out
    return data


def encode_untyped(value: Any, size: int) -> bytes:
    """Bytes as they are, an int as a little-endian integer of `size` bytes."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if len(data) != size:
            raise ValueError(f"{len(data)} bytes, the map's size is {size}")
        return data
    return _encode_int(value, size, signed=isinstance(value, int) and value < 0)


def _encode_int(value: Any, size: int, signed: bool) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an int, not {type(value).__name__}")
    try:
        return value.to_bytes(size, "little", signed=signed)
    except OverflowError:
        raise ValueError(f"{value} does not fit in {size} {'signed ' if signed else ''}bytes") from None


def _encode(btf: B.Btf, type_id: int, value: Any, depth: int) -> bytes:
    """The inverse of _decode; members a dict leaves out are zero."""
    t = btf.resolve(type_id)
    size = btf.size(type_id) or 0
    if isinstance(value, (bytes, bytearray)) and len(value) == size:
        return bytes(value)
    if t is None or depth > B.MAX_DEPTH:
        raise TypeError("its BTF type cannot be encoded: pass bytes")
    kind = t.kind
    if kind == B.INT:
        return _encode_int(value, size, signed=bool((t.extra[0] >> 24) & INT_SIGNED))
    if kind in (B.ENUM, B.ENUM64):
        if isinstance(value, str):
            found = [v for name, v in t.members if name == value]
            if not found:
                raise ValueError(f"{value!r} is not a member of enum {t.name or '(anonymous)'}")
            value = found[0]
        return _encode_int(value, size, signed=isinstance(value, int) and value < 0)
    if kind == B.PTR:
        return _encode_int(value, 8, signed=False)
    if kind == B.FLOAT:
        return struct.pack({4: "<f", 8: "<d"}[size], value)
    if kind == B.ARRAY:
        elem_id, _index, count = t.extra
        elem_size = btf.size(elem_id) or 0
        if isinstance(value, str):  # a char array
            data = value.encode()
            if len(data) > count:
                raise ValueError(f"{value!r} is longer than {count} bytes")
            return data + bytes(count - len(data))
        items = list(value)
        if len(items) > count:
            raise ValueError(f"{len(items)} items, the array holds {count}")
        return b"".join(_encode(btf, elem_id, v, depth + 1) for v in items) + bytes(
            elem_size * (count - len(items)))
    if kind in (B.STRUCT, B.UNION):
        if not isinstance(value, dict):
            raise TypeError(f"expected a dict of members, not {type(value).__name__}")
        out = bytearray(size)
        names = {name for name, _t, _o in t.members}
        unknown = set(value) - names
        if unknown:
            raise ValueError(f"no member {sorted(unknown)[0]!r} in {t.name or 'the struct'}")
        for name, member_type, offset in t.members:
            if name not in value:
                continue
            bits = offset >> 24 if t.kind_flag else 0
            bit_off = offset & 0xFFFFFF if t.kind_flag else offset
            if bits:  # a bitfield
                raw = int.from_bytes(out, "little") & ~(((1 << bits) - 1) << bit_off)
                raw |= (int(value[name]) & ((1 << bits) - 1)) << bit_off
                out[:] = raw.to_bytes(size, "little")
                continue
            data = _encode(btf, member_type, value[name], depth + 1)
            out[bit_off // 8:bit_off // 8 + len(data)] = data
        return bytes(out)
    raise TypeError("its BTF type cannot be encoded: pass bytes")
