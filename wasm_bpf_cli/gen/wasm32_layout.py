"""BTF types re-expressed as C for wasm32, with the BPF (64-bit) layout.

Every field gets a fixed-width type of the same size and alignment it has
on the BPF side: integers become `intN_t`/`uintN_t` (`char` stays `char` so
strings stay strings), pointers become `uint64_t`, 4-byte enums keep their
`enum` type. Explicit `uint8_t __padN[K]` members make every offset and the
total size equal to BTF's; a struct whose members cannot sit at their BPF
offsets with natural wasm32 alignment is emitted `packed` (explicit padding
still keeps every offset). Bitfields are reproduced by simulating the
SysV/Itanium placement rule that both clang targets use, with unnamed
bitfields as fillers; anything that does not come out exact is reported via
Unreproducible, never emitted approximately.

Each named type is wrapped in `#ifndef WASM_BPF_TYPE_<tag>_<name>` so that a
`gen types` header and a skeleton header may be included together.
"""
from typing import Dict, List, NamedTuple, Optional, Tuple

from wasm_bpf_cli.inspect.btf_reader import (ARRAY, CONST, ENUM, ENUM64, FLOAT, FWD,
                                             INT, PTR, RESTRICT, STRUCT, TYPE_TAG, TYPEDEF,
                                             UNION, VOLATILE, Btf, BtfType)

from .definitions import Definitions, Unreproducible

_QUALIFIERS = (CONST, VOLATILE, RESTRICT, TYPE_TAG)
INT_SIGNED, INT_CHAR, INT_BOOL = 1, 2, 4
MAX_DEPTH = 32


class Mapped(NamedTuple):
    base: str          # type spelling before the declarator ("uint64_t", "struct x", inline body)
    dims: Tuple        # array dimensions, outermost first
    size: int
    align: int
    note: str = ""     # comment for the reader ("pointer", "long", "enum e (1 byte)")
    checks: Tuple = () # inline anonymous struct/union: (member path, offset) inside it

    def decl(self, name: str) -> str:
        dims = "".join(f"[{d}]" for d in self.dims)
        return f"{self.base} {name}{dims}".rstrip() if name or dims else self.base


class Member(NamedTuple):
    name: str
    type_id: int
    bit_offset: int
    bit_size: int      # 0: not a bitfield


def _int_type(size: int, signed: bool) -> Mapped:
    if size == 16:
        return Mapped("__int128" if signed else "unsigned __int128", (), 16, 16)
    if size not in (1, 2, 4, 8):
        raise Unreproducible(f"no fixed-width integer type of {size} bytes")
    return Mapped(f"{'' if signed else 'u'}int{size * 8}_t", (), size, size)


def _align_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def c_identifier(name: str) -> str:
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return out if out and not out[0].isdigit() else "_" + out


class Wasm32Types(Definitions):
    """Collects the definitions of the named types it is asked for (and of
    every type they embed by value), in dependency order."""

    def __init__(self, btf: Btf):
        super().__init__(btf)
        self._align: Dict[int, int] = {}          # type id -> wasm32 alignment
        self._pad = 0

    # ------------------------------------------------------ definitions
    def define(self, type_id: int, typedef: Optional[str] = None) -> str:
        """Emit the definition of a named struct/union/enum (or an anonymous
        one named by `typedef`) once; returns how C refers to it."""
        return super().define(type_id, typedef)

    def _definition(self, t: BtfType, ref: str, typedef: Optional[str]) -> Tuple[str, str]:
        block = self._enum_block(t, ref) if t.kind in (ENUM, ENUM64) else self._composite_block(t, ref)
        guard = "WASM_BPF_TYPE_" + c_identifier(ref.replace(" ", "_"))
        return ref, f"#ifndef {guard}\n#define {guard}\n{block}#endif /* {guard} */\n"

    def _enum_block(self, t: BtfType, ref: str) -> str:
        # 32-bit values as signed (pre-6.0 BTF, what clang-14 emits, has no
        # signedness flag): the bits are the same and the enum stays 4 bytes.
        signed = t.kind_flag or t.kind == ENUM
        bits = 64 if t.kind == ENUM64 else 32
        lines = []
        for name, raw in t.members:
            value = raw - (1 << bits) if signed and raw >> (bits - 1) else raw
            suffix = "" if -(1 << 31) <= value < (1 << 31) else ("LL" if signed else "ULL")
            suffix = suffix or ("U" if value >= (1 << 31) else "")
            lines.append(f"\t{name} = {value}{suffix},")
        body = "\n".join(lines) if lines else "\t__" + c_identifier(t.name or "anon") + "_empty = 0,"
        head = f"typedef enum {{\n{body}\n}} {ref};\n" if not t.name else f"{ref} {{\n{body}\n}};\n"
        if t.size_or_type == 4:
            head += f'_Static_assert(sizeof({ref}) == 4, "{ref}: 4 bytes as on BPF");\n'
        else:
            head += f"/* {ref}: {t.size_or_type} bytes on BPF; fields use a {t.size_or_type}-byte integer */\n"
        return head

    def _composite_block(self, t: BtfType, ref: str) -> str:
        members = self.members_of(t)
        body, attrs, checks, align = self.layout(members, t.size_or_type, t.kind == UNION, 1)
        self._align[t.id] = align
        kw = "union" if t.kind == UNION else "struct"
        if t.name:
            text = f"{ref} {{\n{body}}}{attrs};\n"
        else:
            text = f"typedef {kw} {{\n{body}}}{attrs} {ref};\n"
        text += f'_Static_assert(sizeof({ref}) == {t.size_or_type}, "sizeof({ref}) as on BPF");\n'
        for path, off in checks:
            text += (f'_Static_assert(offsetof({ref}, {path}) == {off}, '
                     f'"{ref}: offset of {path} as on BPF");\n')
        return text

    # ----------------------------------------------------------- layout
    def members_of(self, t: BtfType) -> List[Member]:
        out = []
        for name, type_id, off in t.members:
            if t.kind_flag:
                bit_size, bit_off = off >> 24, off & 0xFFFFFF
            else:
                bit_size, bit_off = 0, off
                base = self.btf.resolve(type_id)
                if base is not None and base.kind == INT:
                    enc = base.extra[0]
                    bits, int_off = enc & 0xFF, (enc >> 16) & 0xFF
                    if bits != base.size_or_type * 8 or int_off:
                        bit_size, bit_off = bits, off + int_off
            out.append(Member(name, type_id, bit_off, bit_size))
        return out

    def _pad_decl(self, nbytes: int) -> str:
        name = f"__pad{self._pad}"
        self._pad += 1
        return f"uint8_t {name}[{nbytes}];"

    def layout(self, members: List[Member], size: int, is_union: bool,
               indent: int, force_packed: bool = False) -> Tuple[str, str, List[Tuple[str, int]], int]:
        """Body lines, attribute suffix, (member path, byte offset) checks and
        wasm32 alignment of a struct/union of `size` bytes: natural layout if
        it fits, else packed."""
        saved = self._pad
        for packed in ((True,) if force_packed else (False, True)):
            self._pad = saved
            result = self._try_layout(members, size, is_union, indent, packed)
            if result is not None:
                body, checks, align = result
                return body, " __attribute__((packed))" if packed else "", checks, align
        raise Unreproducible("layout cannot be reproduced")  # _try_layout(packed) raises first

    def _try_layout(self, members, size, is_union, indent, packed):
        tab = "\t" * indent
        lines: List[str] = []
        checks: List[Tuple[str, int]] = []
        cur_bits = 0
        align = 1
        biggest = 0
        for m in members:
            label = m.name or "<anonymous member>"
            try:
                mapped = self.map_type(m.type_id, indent)
            except Unreproducible as exc:
                raise Unreproducible(f"member {label}: {exc}") from None
            note = f" /* {mapped.note} */" if mapped.note else ""
            if is_union and m.bit_offset:
                raise Unreproducible(f"member {label}: union member at bit {m.bit_offset}")
            if m.bit_size == 0:
                if m.bit_offset % 8:
                    raise Unreproducible(f"member {label}: at bit offset {m.bit_offset}")
                k = m.bit_offset // 8
                cur = 0 if is_union else (cur_bits + 7) // 8
                if k < cur:
                    raise Unreproducible(f"member {label}: overlaps the previous member")
                if k > cur:
                    lines.append(tab + self._pad_decl(k - cur))
                if not packed and k % mapped.align:
                    return None
                lines.append(f"{tab}{mapped.decl(m.name)};{note}")
                self._add_checks(checks, m, mapped, k)
                end_bits = (k + mapped.size) * 8
                align = max(align, 1 if packed else mapped.align)
            else:
                if mapped.dims or mapped.base.startswith(("struct", "union", "float", "double")):
                    raise Unreproducible(f"member {label}: bitfield of non-integer type")
                unit = mapped.size * 8
                base = mapped.base if mapped.base != "char" else "int8_t"
                if not is_union and cur_bits < m.bit_offset:
                    cur_bits = self._fill_bits(lines, tab, cur_bits, m.bit_offset)
                elif not is_union and cur_bits > m.bit_offset:
                    raise Unreproducible(f"member {label}: overlaps the previous member")
                p = 0 if is_union else cur_bits
                if not packed and p % unit + m.bit_size > unit:
                    p = _align_up(p, unit)
                if p != m.bit_offset:
                    if packed:
                        raise Unreproducible(f"bitfield {label} at bit {m.bit_offset} cannot be placed")
                    return None
                lines.append(f"{tab}{base} {m.name} : {m.bit_size};"
                             f" /* bits {m.bit_offset}..{m.bit_offset + m.bit_size - 1} */")
                end_bits = m.bit_offset + m.bit_size
                if m.name and not packed:
                    align = max(align, mapped.align)
            if is_union:
                biggest = max(biggest, (end_bits + 7) // 8)
            else:
                cur_bits = end_bits
        used = biggest if is_union else (cur_bits + 7) // 8
        if used > size:
            raise Unreproducible(f"members need {used} bytes, BTF says {size}")
        if used < size:
            if is_union:
                if _align_up(used, align) != size:
                    lines.append(tab + self._pad_decl(size))
            else:
                lines.append(tab + self._pad_decl(size - used) + " /* trailing padding */")
        if _align_up(size, align) != size:
            if packed:
                raise Unreproducible("size cannot be reproduced")
            return None
        return "".join(line + "\n" for line in lines), checks, align

    def _fill_bits(self, lines: List[str], tab: str, cur: int, target: int) -> int:
        """Unnamed `uint8_t` bitfields and byte padding from bit `cur` to
        `target`; uint8_t fillers never straddle a byte, so they land exactly."""
        if cur % 8:
            n = min(8 - cur % 8, target - cur)
            lines.append(f"{tab}uint8_t : {n};")
            cur += n
        if target - cur >= 8:
            lines.append(tab + self._pad_decl((target - cur) // 8))
            cur += (target - cur) // 8 * 8
        if target > cur:
            lines.append(f"{tab}uint8_t : {target - cur};")
            cur = target
        return cur

    @staticmethod
    def _add_checks(checks, m: Member, mapped: Mapped, offset: int) -> None:
        if m.name:
            checks.append((m.name, offset))
        for path, off in mapped.checks:
            checks.append((f"{m.name}.{path}" if m.name else path, offset + off))

    # ---------------------------------------------------- field types
    def map_type(self, type_id: int, indent: int = 1, depth: int = 0) -> Mapped:
        """The wasm32 spelling of a field of BTF type `type_id`."""
        if type_id < 0:  # a variable kept as raw bytes (see skeleton)
            return Mapped("uint8_t", (-type_id,), -type_id, 1, "untyped bytes")
        if depth > MAX_DEPTH:
            raise Unreproducible("type chain too deep")
        btf = self.btf
        typedef = None
        t = btf.get(type_id)
        while t is not None and t.kind in _QUALIFIERS + (TYPEDEF,):
            if t.kind == TYPEDEF:
                typedef = typedef or t.name
            t = btf.get(t.size_or_type)
            depth += 1
            if depth > MAX_DEPTH:
                raise Unreproducible("type chain too deep")
        if t is None:
            raise Unreproducible("void has no layout")
        k = t.kind
        if k == INT:
            enc = t.extra[0] >> 24
            if t.name == "char" and t.size_or_type == 1:
                return Mapped("char", (), 1, 1)
            if enc & INT_BOOL:
                return Mapped("uint8_t", (), 1, 1, "bool") if t.size_or_type == 1 else \
                    _int_type(t.size_or_type, False)
            m = _int_type(t.size_or_type, bool(enc & INT_SIGNED))
            note = t.name if t.name.split().count("long") == 1 else ""  # 8 here, 4 on wasm32
            return m._replace(note=note)
        if k == PTR:
            return Mapped("uint64_t", (), 8, 8, f"pointer: {btf.c_name(t.size_or_type)} *")
        if k in (ENUM, ENUM64):
            size = t.size_or_type
            if (t.name or typedef) and size == 4 and k == ENUM:
                ref = self.define(t.id, typedef)
                return Mapped(ref, (), 4, 4)
            m = _int_type(size, t.kind_flag)
            return m._replace(note=f"enum {t.name or typedef or '<anon>'}, {size}-byte")
        if k == FLOAT:
            if t.size_or_type == 4:
                return Mapped("float", (), 4, 4)
            if t.size_or_type == 8:
                return Mapped("double", (), 8, 8)
            raise Unreproducible(f"{t.name}: {t.size_or_type}-byte float differs on wasm32")
        if k == ARRAY:
            elem_id, _index, n = t.extra
            elem = self.map_type(elem_id, indent, depth + 1)
            if elem.checks:  # offsetof() cannot name members of an array element
                elem = elem._replace(checks=())
            return Mapped(elem.base, (n,) + elem.dims, elem.size * n, elem.align, elem.note)
        if k in (STRUCT, UNION):
            if t.name or typedef:
                ref = self.define(t.id, typedef)
                return Mapped(ref, (), t.size_or_type, self._align[t.id])
            return self._inline(t, indent)
        if k == FWD:
            raise Unreproducible(f"{'union' if t.kind_flag else 'struct'} {t.name} is only "
                                 f"declared (no definition in BTF)")
        raise Unreproducible(f"{btf.c_name(t.id)} has no field layout")

    def _inline(self, t: BtfType, indent: int) -> Mapped:
        members = self.members_of(t)
        body, attrs, checks, align = self.layout(members, t.size_or_type, t.kind == UNION,
                                                 indent + 1)
        kw = "union" if t.kind == UNION else "struct"
        return Mapped(f"{kw}{attrs} {{\n{body}{chr(9) * indent}}}", (), t.size_or_type, align,
                      checks=tuple(checks))
