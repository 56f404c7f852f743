"""A bounded reader for the `.BTF` and `.BTF.ext` sections of a BPF object.

Enough of BTF to name types as C would (`const volatile u64`, `struct event`,
`char[16]`), to decode BTF-defined maps in the `.maps` DATASEC (libbpf's
`__uint(name, N)` is a member `int (*name)[N]`; `__type(name, T)` is `T *name`)
and to list the variables of the `.rodata`/`.data`/`.bss` DATASECs. Type
chains are followed at most MAX_DEPTH deep, so cycles in hostile input end.
"""
import struct
from typing import Dict, List, NamedTuple, Optional, Tuple

from ._cursor import MAX_NAME
from .errors import InspectError

BTF_MAGIC = 0xEB9F
MAX_DEPTH = 32

(INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT,
 FUNC, FUNC_PROTO, VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64) = range(1, 20)
KIND_NAMES = {INT: "int", PTR: "ptr", ARRAY: "array", STRUCT: "struct", UNION: "union",
              ENUM: "enum", FWD: "fwd", TYPEDEF: "typedef", VOLATILE: "volatile",
              CONST: "const", RESTRICT: "restrict", FUNC: "func", FUNC_PROTO: "func_proto",
              VAR: "var", DATASEC: "datasec", FLOAT: "float", DECL_TAG: "decl_tag",
              TYPE_TAG: "type_tag", ENUM64: "enum64"}
# Bytes that follow the 12-byte common header: (fixed, per vlen item).
_EXTRA = {INT: (4, 0), PTR: (0, 0), ARRAY: (12, 0), STRUCT: (0, 12), UNION: (0, 12),
          ENUM: (0, 8), FWD: (0, 0), TYPEDEF: (0, 0), VOLATILE: (0, 0), CONST: (0, 0),
          RESTRICT: (0, 0), FUNC: (0, 0), FUNC_PROTO: (0, 8), VAR: (4, 0), DATASEC: (0, 12),
          FLOAT: (0, 0), DECL_TAG: (4, 0), TYPE_TAG: (0, 0), ENUM64: (0, 12)}
_MODIFIERS = (TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG)


class BtfType(NamedTuple):
    id: int
    kind: int
    name: str
    vlen: int
    kind_flag: bool
    size_or_type: int
    extra: Tuple          # ARRAY: (type, index_type, nelems); VAR: (linkage,)
    members: Tuple        # STRUCT/UNION: (name, type, offset); DATASEC: (type, offset, size);
                          # ENUM/ENUM64: (name, unsigned raw value)


class Btf:
    def __init__(self, data: bytes, what: str = ".BTF"):
        self.what = what
        if len(data) < 24:
            raise InspectError(f"{what}: truncated header ({len(data)} bytes)")
        magic, version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
        if magic != BTF_MAGIC:
            raise InspectError(f"{what}: bad magic 0x{magic:04x}")
        if version != 1:
            raise InspectError(f"{what}: unsupported version {version}")
        if hdr_len < 24 or hdr_len > len(data):
            raise InspectError(f"{what}: bad header length {hdr_len}")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", data, 8)
        body = len(data) - hdr_len
        for label, off, ln in (("type", type_off, type_len), ("string", str_off, str_len)):
            if off + ln > body:
                raise InspectError(f"{what}: {label} section (offset 0x{off:x}, length {ln}) "
                                   f"is past the end of the data ({body} bytes)")
        self.strings = data[hdr_len + str_off:hdr_len + str_off + str_len]
        self.types: List[Optional[BtfType]] = [None]  # id 0 is void
        self._parse_types(data, hdr_len + type_off, hdr_len + type_off + type_len)
        self._datasecs: Dict[str, BtfType] = {}
        for t in self.types[1:]:
            if t.kind == DATASEC:
                self._datasecs.setdefault(t.name, t)

    def string(self, off: int) -> str:
        if off == 0:
            return ""
        if off >= len(self.strings):
            raise InspectError(f"{self.what}: string offset 0x{off:x} out of range")
        stop = self.strings.find(b"\0", off, off + MAX_NAME)
        if stop < 0:
            raise InspectError(f"{self.what}: unterminated or overlong string at 0x{off:x}")
        return self.strings[off:stop].decode("utf-8", errors="replace")

    def _parse_types(self, data: bytes, pos: int, end: int) -> None:
        while pos < end:
            if pos + 12 > end:
                raise InspectError(f"{self.what}: truncated type {len(self.types)} at offset 0x{pos:x}")
            name_off, info, size_or_type = struct.unpack_from("<III", data, pos)
            kind = (info >> 24) & 0x1F
            vlen = info & 0xFFFF
            if kind not in _EXTRA:
                raise InspectError(f"{self.what}: type {len(self.types)} has unknown kind {kind} "
                                   f"at offset 0x{pos:x}")
            fixed, per = _EXTRA[kind]
            tail = pos + 12
            nxt = tail + fixed + per * vlen
            if nxt > end:
                raise InspectError(f"{self.what}: truncated {KIND_NAMES[kind]} type "
                                   f"{len(self.types)} at offset 0x{pos:x}")
            extra: Tuple = ()
            members: Tuple = ()
            if kind == ARRAY:
                extra = struct.unpack_from("<III", data, tail)
            elif kind in (VAR, DECL_TAG, INT):
                extra = struct.unpack_from("<I", data, tail)
            elif kind in (STRUCT, UNION):
                members = tuple((self.string(n), t, o) for n, t, o in
                                struct.iter_unpack("<III", data[tail:nxt]))
            elif kind == DATASEC:
                members = tuple(struct.iter_unpack("<III", data[tail:nxt]))
            elif kind == ENUM:
                members = tuple((self.string(n), v) for n, v in
                                struct.iter_unpack("<II", data[tail:nxt]))
            elif kind == ENUM64:
                members = tuple((self.string(n), lo | hi << 32) for n, lo, hi in
                                struct.iter_unpack("<III", data[tail:nxt]))
            elif kind == FUNC_PROTO:
                members = tuple((self.string(n), t) for n, t in struct.iter_unpack("<II", data[tail:nxt]))
            self.types.append(BtfType(len(self.types), kind, self.string(name_off), vlen,
                                      bool(info >> 31), size_or_type, extra, members))
            pos = nxt

    def get(self, type_id: int) -> Optional[BtfType]:
        if not 0 < type_id < len(self.types):
            return None
        return self.types[type_id]

    def _need(self, type_id: int) -> BtfType:
        t = self.get(type_id)
        if t is None:
            raise InspectError(f"{self.what}: reference to undefined type {type_id}")
        return t

    def resolve(self, type_id: int) -> Optional[BtfType]:
        """Follow typedefs and qualifiers to the underlying type (None: void)."""
        for _ in range(MAX_DEPTH):
            if type_id == 0:
                return None
            t = self._need(type_id)
            if t.kind not in _MODIFIERS:
                return t
            type_id = t.size_or_type
        raise InspectError(f"{self.what}: type chain deeper than {MAX_DEPTH} at type {type_id}")

    def size(self, type_id: int, depth: int = 0) -> Optional[int]:
        if depth > MAX_DEPTH:
            raise InspectError(f"{self.what}: type chain deeper than {MAX_DEPTH} at type {type_id}")
        t = self.resolve(type_id)
        if t is None:
            return None
        if t.kind in (INT, STRUCT, UNION, ENUM, ENUM64, FLOAT, DATASEC):
            return t.size_or_type
        if t.kind == PTR:
            return 8
        if t.kind == ARRAY:
            elem = self.size(t.extra[0], depth + 1)
            return None if elem is None else elem * t.extra[2]
        if t.kind == VAR:
            return self.size(t.size_or_type, depth + 1)
        return None

    def c_name(self, type_id: int, depth: int = 0) -> str:
        """A C spelling of the type: `const volatile u64`, `struct event *`, `char[16]`."""
        if depth > MAX_DEPTH:
            raise InspectError(f"{self.what}: type chain deeper than {MAX_DEPTH} at type {type_id}")
        if type_id == 0:
            return "void"
        t = self._need(type_id)
        k = t.kind
        if k in (INT, FLOAT, TYPEDEF):
            return t.name or "<anon>"
        if k in (STRUCT, UNION, ENUM, ENUM64):
            tag = {STRUCT: "struct", UNION: "union"}.get(k, "enum")
            return f"{tag} {t.name}" if t.name else f"{tag} <anon>"
        if k == FWD:
            return f"{'union' if t.kind_flag else 'struct'} {t.name}"
        if k in (VOLATILE, CONST, RESTRICT):
            return f"{KIND_NAMES[k]} {self.c_name(t.size_or_type, depth + 1)}"
        if k == TYPE_TAG:
            return self.c_name(t.size_or_type, depth + 1)
        if k == PTR:
            return f"{self.c_name(t.size_or_type, depth + 1)} *"
        if k == ARRAY:
            return f"{self.c_name(t.extra[0], depth + 1)}[{t.extra[2]}]"
        if k == FUNC_PROTO:
            return "func"
        if k == VAR:
            return self.c_name(t.size_or_type, depth + 1)
        return t.name or KIND_NAMES[k]

    def datasec(self, name: str) -> Optional[BtfType]:
        return self._datasecs.get(name)

    def datasecs(self) -> List[BtfType]:
        return list(self._datasecs.values())

    def variables(self, sec: BtfType) -> List[Dict]:
        """The VARs of a DATASEC: name, C type, offset and size within the section."""
        out = []
        for type_id, offset, size in sec.members:
            var = self._need(type_id)
            if var.kind != VAR:
                continue  # e.g. a FUNC in a `.ksyms` datasec
            out.append({"name": var.name, "type": self.c_name(var.size_or_type),
                        "offset": offset, "size": size})
        return out

    def map_definitions(self) -> List[Dict]:
        """BTF-defined maps of the `.maps` DATASEC, decoded as libbpf does."""
        sec = self.datasec(".maps")
        if sec is None:
            return []
        maps = []
        for type_id, _offset, _size in sec.members:
            var = self._need(type_id)
            if var.kind != VAR:
                continue
            st = self.resolve(var.size_or_type)
            if st is None or st.kind != STRUCT:
                raise InspectError(f"{self.what}: map {var.name!r} is not a struct")
            maps.append(self._map_def(var.name, st))
        return maps

    def _map_def(self, name: str, st: BtfType) -> Dict:
        out: Dict = {"name": name, "type": None, "key_size": None, "value_size": None,
                     "max_entries": None, "flags": 0, "key_type": None, "value_type": None}
        for mname, mtype, _off in st.members:
            if mname in ("type", "max_entries", "map_flags", "key_size", "value_size",
                         "numa_node", "pinning", "map_extra"):
                out[{"map_flags": "flags"}.get(mname, mname)] = self._uint_member(name, mname, mtype)
            elif mname in ("key", "value"):
                ptr = self._need(mtype)
                if ptr.kind != PTR:
                    raise InspectError(f"{self.what}: map {name!r} member {mname!r} is not a pointer")
                out[f"{mname}_type"] = self.c_name(ptr.size_or_type)
                size = self.size(ptr.size_or_type)
                if out[f"{mname}_size"] is None:
                    out[f"{mname}_size"] = size
        return out

    def _uint_member(self, map_name: str, member: str, type_id: int) -> int:
        ptr = self._need(type_id)
        arr = self.get(ptr.size_or_type) if ptr.kind == PTR else None
        if arr is None or arr.kind != ARRAY:
            raise InspectError(f"{self.what}: map {map_name!r} member {member!r} "
                               f"is not an __uint() (pointer to array)")
        return arr.extra[2]


def core_relocation_count(data: bytes, what: str = ".BTF.ext") -> int:
    """Number of CO-RE relocation records in a `.BTF.ext` section (0 when the
    header predates core_relo)."""
    if len(data) < 8:
        raise InspectError(f"{what}: truncated header ({len(data)} bytes)")
    magic, version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
    if magic != BTF_MAGIC:
        raise InspectError(f"{what}: bad magic 0x{magic:04x}")
    if hdr_len > len(data) or hdr_len < 24:
        raise InspectError(f"{what}: bad header length {hdr_len}")
    if hdr_len < 32:
        return 0
    off, length = struct.unpack_from("<II", data, 24)
    start = hdr_len + off
    end = start + length
    if end > len(data):
        raise InspectError(f"{what}: core_relo section (offset 0x{off:x}, length {length}) "
                           f"is past the end of the data ({len(data)} bytes)")
    if length == 0:
        return 0
    if length < 4:
        raise InspectError(f"{what}: truncated core_relo section")
    (rec_size,) = struct.unpack_from("<I", data, start)
    if rec_size < 16 or rec_size % 4:
        raise InspectError(f"{what}: bad core_relo record size {rec_size}")
    pos, total = start + 4, 0
    while pos < end:
        if pos + 8 > end:
            raise InspectError(f"{what}: truncated core_relo section header at offset 0x{pos:x}")
        _sec_name, num = struct.unpack_from("<II", data, pos)
        pos += 8
        if num * rec_size > end - pos:
            raise InspectError(f"{what}: core_relo section at offset 0x{pos - 8:x} claims "
                               f"{num} records, past its end")
        total += num
        pos += num * rec_size
    return total
