"""`wasm-bpf gen types --lang go`: Go definitions of a BPF object's shared
types for GOOS=wasip1 GOARCH=wasm, laid out exactly as on the BPF side.

The types are chosen as for C (`types_header`: the types of globals and of
map keys/values, or the ones named). Go's wasm port aligns every fixed-width
type to its size, as BPF does, so a struct becomes a Go struct of the same
fields with explicit `_ [N]byte` padding wherever BTF has a gap. What Go
cannot express becomes bytes of the same size: a union is `[N]byte`, a run
of bitfields is one `[N]byte` field named after them, and a member whose BPF
offset is not a multiple of its Go alignment (packed structs) is `[N]byte`.
Every size and offset is checked at compile time: `[1]struct{}{}[X]` only
compiles when the constant X is 0, so a wrong layout never builds.
"""
import os
from typing import List, NamedTuple, Optional, Tuple

from wasm_bpf_cli.inspect.btf_reader import (ARRAY, ENUM, ENUM64, FLOAT, FWD, INT, PTR, STRUCT,
                                             UNION, Btf, BtfType)
from wasm_bpf_cli.inspect.errors import InspectError

from .errors import GenError
from .source import BpfSource
from .types_header import TypesResult, _named_underlying, define_selected
from .definitions import Definitions, Unreproducible
from .wasm32_layout import INT_BOOL, INT_SIGNED, MAX_DEPTH, Wasm32Types

GO_KEYWORDS = frozenset("break case chan const continue default defer else fallthrough for func go goto "
                        "if import interface map package range return select struct switch type var".split())


class GoField(NamedTuple):
    spelling: str      # "uint64", "[16]byte", "Event", "struct {...}"
    size: int
    align: int         # Go's alignment on GOARCH=wasm
    note: str = ""     # comment: the C type when the Go one loses it ("pointer: char *", "union u")


def go_name(c_name: str) -> str:
    """An exported Go identifier for a C name: exit_code -> ExitCode."""
    parts = [p for p in c_name.split("_") if p]
    name = "".join(p[:1].upper() + p[1:] for p in parts)
    if not name or not (name[0].isalpha()):
        name = "X" + name
    return name


def _aligned(rows: List[Tuple[str, ...]], tab: str) -> List[str]:
    """Rows of cells (the last may be "") as gofmt lays them out: every cell
    but the last padded to its column's width, one space apart; a trailing
    comment column is aligned only over consecutive rows that have one."""
    lines, i = [], 0
    width0 = max(len(r[0]) for r in rows) if rows else 0
    while i < len(rows):
        j = i
        while j < len(rows) and bool(rows[j][-1]) == bool(rows[i][-1]):
            j += 1
        run = rows[i:j]
        widths = [max(len(r[c]) for r in run) for c in range(len(run[0]) - 1)]
        widths[0] = width0
        for r in run:
            cells = list(r) if r[-1] else list(r[:-1])
            text = " ".join(c.ljust(widths[k]) if k < len(cells) - 1 else c for k, c in enumerate(cells))
            lines.append(tab + text.rstrip())
        i = j
    return lines


def format_fields(rows: List[Tuple[str, str, str]], tab: str) -> str:
    """Struct fields (name, type, note) formatted as gofmt does: a field
    spanning lines (an inline struct) ends an alignment section."""
    out, section = [], []
    for name, spelling, note in rows:
        section.append((name, spelling, f"// {note}" if note else ""))
        if "\n" in spelling:
            out.extend(_aligned(section, tab))
            section = []
    out.extend(_aligned(section, tab))
    return "".join(line + "\n" for line in out)


def _bytes(size: int, note: str) -> GoField:
    return GoField(f"[{size}]byte", size, 1, note)


_INTS = {1: "int8", 2: "int16", 4: "int32", 8: "int64"}


class GoTypes(Definitions):
    """Collects Go definitions of the named types asked for (and of what they
    embed by value), each once, dependencies first."""

    def __init__(self, btf: Btf):
        super().__init__(btf)
        self.members = Wasm32Types(btf).members_of  # BTF member offsets, bitfields decoded
        self.checks: List[Tuple[str, Optional[str], int, str]] = []  # (Go expr, C path, value, C ref)
        self._names: set = set()

    def _unique(self, name: str) -> str:
        base, n = name, 2
        while name in self._names:
            name, n = f"{base}{n}", n + 1
        self._names.add(name)
        return name

    # ------------------------------------------------------ definitions
    def define(self, type_id: int, typedef: Optional[str] = None) -> GoField:
        return super().define(type_id, typedef)

    def _definition(self, t: BtfType, ref: str, typedef: Optional[str]) -> Tuple[GoField, str]:
        name = go_name(t.name or typedef)
        if t.kind in (ENUM, ENUM64):
            field, block = self._enum(t, ref, name)
        elif t.kind == UNION:
            field, block = self._union(t, ref, name)
        else:
            field, block = self._struct(t, ref, name)
        self._names.add(field.spelling)
        return field, block

    def _enum(self, t: BtfType, ref: str, name: str) -> Tuple[GoField, str]:
        size = t.size_or_type
        if size not in _INTS:
            raise Unreproducible(f"no {size}-byte integer")
        signed = t.kind_flag or t.kind == ENUM  # as the C side: 32-bit enums as signed
        base = _INTS[size] if signed else "u" + _INTS[size]
        bits = size * 8
        name = self._unique(name)
        lines = [f"// {name} is {ref} ({size} byte{'s' if size > 1 else ''}).", f"type {name} {base}", ""]
        if t.members:
            rows = []
            for cname, raw in t.members:
                raw &= (1 << bits) - 1
                value = raw - (1 << bits) if signed and raw >> (bits - 1) else raw
                rows.append((self._unique(go_name(cname) if cname in GO_KEYWORDS else cname),
                             name, f"= {value}", ""))
            lines += ["const ("] + _aligned(rows, "\t") + [")"]
        self._check(f"unsafe.Sizeof({name}(0))", None, size, ref)
        return GoField(name, size, size), "\n".join(lines) + "\n"

    def _union(self, t: BtfType, ref: str, name: str) -> Tuple[GoField, str]:
        size = t.size_or_type
        name = self._unique(name)
        members = ", ".join(f"{m.name or '<anonymous>'} ({self.btf.c_name(m.type_id)})"
                            for m in self.members(t))
        text = (f"// {name} is {ref}, {size} bytes (Go has no unions): its members\n"
                f"// {members} overlay these bytes.\ntype {name} [{size}]byte\n")
        self._check(f"unsafe.Sizeof({name}{{}})", None, size, ref)
        return GoField(name, size, 1, ref), text

    def _struct(self, t: BtfType, ref: str, name: str) -> Tuple[GoField, str]:
        name = self._unique(name)
        body, align, offsets = self.layout(t, 1)
        text = f"// {name} is {ref}, {t.size_or_type} bytes as on BPF.\ntype {name} struct {{\n{body}}}\n"
        self._check(f"unsafe.Sizeof({name}{{}})", None, t.size_or_type, ref)
        for field, path, off in offsets:
            self._check(f"unsafe.Offsetof({name}{{}}.{field})", path, off, ref)
        return GoField(name, t.size_or_type, align), text

    def _check(self, expr: str, path: Optional[str], value: int, ref: str) -> None:
        self.checks.append((expr, path, value, ref))

    # ----------------------------------------------------------- layout
    def layout(self, t: BtfType, indent: int) -> Tuple[str, int, List[Tuple[str, str, int]]]:
        """Fields of struct `t` (body text), its Go alignment and the
        (Go field, C member, offset) of every named field."""
        size = t.size_or_type
        items = self._items(t, indent)  # (go name, GoField, offset, c name)
        while True:
            align = max([f.align for _n, f, _o, _c in items] + [1])
            if size % align == 0:
                break
            # Go would pad the struct past its BPF size: the widest fields become bytes
            items = [(n, _bytes(f.size, f.note or f.spelling) if f.align == align else f, o, c)
                     for n, f, o, c in items]
        rows, offsets, cur = [], [], 0
        for gname, field, off, cname in items:
            if off > cur:
                rows.append(("_", f"[{off - cur}]byte", ""))
            rows.append((gname, field.spelling, field.note))
            if cname is not None:
                offsets.append((gname, cname, off))
            cur = off + field.size
        if cur > size:
            raise Unreproducible(f"members need {cur} bytes, BTF says {size}")
        if cur < size:
            rows.append(("_", f"[{size - cur}]byte", "trailing padding"))
        return format_fields(rows, "\t" * indent), align, offsets

    def _items(self, t: BtfType, indent: int):
        items, used, anon, run = [], set(), 0, None  # run: [first bit, end bit, names]

        def field_name(base: str) -> str:
            name, n = base, 2
            while name in used:
                name, n = f"{base}{n}", n + 1
            used.add(name)
            return name

        def flush_run():
            first, end, names = run
            lo, hi = first // 8, (end + 7) // 8
            note = "bitfields " + ", ".join(names)
            items.append((field_name("Bits" + "".join(go_name(n) for n in names if n)[:40]),
                          _bytes(hi - lo, note), lo, None))

        for m in self.members(t):
            label = m.name or "<anonymous member>"
            if m.bit_size:
                if run is not None and m.bit_offset < (run[1] + 7) // 8 * 8:
                    run[1] = max(run[1], m.bit_offset + m.bit_size)
                    run[2].append(m.name)
                else:
                    if run is not None:
                        flush_run()
                    run = [m.bit_offset, m.bit_offset + m.bit_size, [m.name]]
                continue
            if run is not None:
                flush_run()
                run = None
            if m.bit_offset % 8:
                raise Unreproducible(f"member {label}: at bit offset {m.bit_offset}")
            try:
                field = self.map_type(m.type_id, indent)
            except Unreproducible as exc:
                raise Unreproducible(f"member {label}: {exc}") from None
            off = m.bit_offset // 8
            if t.kind == STRUCT and off % field.align:
                field = _bytes(field.size, f"{field.note or field.spelling} (unaligned)")
            if m.name:
                gname = field_name(go_name(m.name))
            else:
                gname = field_name(f"Anon{anon}")
                anon += 1
            items.append((gname, field, off, m.name or None))
        if run is not None:
            flush_run()
        items.sort(key=lambda item: item[2])
        for (_a, prev, poff, _c), (name, _f, off, _c2) in zip(items, items[1:]):
            if off < poff + prev.size:
                raise Unreproducible(f"member {name}: overlaps the previous member")
        return items

    # ---------------------------------------------------- field types
    def map_type(self, type_id: int, indent: int = 1, depth: int = 0) -> GoField:
        if depth > MAX_DEPTH:
            raise Unreproducible("type chain too deep")
        btf = self.btf
        try:
            t = btf.resolve(type_id)  # under typedefs and qualifiers
        except InspectError as exc:
            raise Unreproducible(str(exc)) from None
        if t is None:
            raise Unreproducible("void has no layout")
        typedef = None  # the name of an anonymous struct/union/enum
        if not t.name and t.kind in (STRUCT, UNION, ENUM, ENUM64):
            typedef = (_named_underlying(btf, type_id) or (0, None))[1]
        k, size = t.kind, t.size_or_type
        if k == INT:
            enc = t.extra[0] >> 24
            if t.name == "char" and size == 1:
                return GoField("byte", 1, 1)
            if enc & INT_BOOL and size == 1:
                return GoField("uint8", 1, 1, "bool")
            if size == 16:
                return _bytes(16, t.name)
            if size not in _INTS:
                raise Unreproducible(f"no fixed-width integer type of {size} bytes")
            spelled = _INTS[size] if enc & INT_SIGNED else "u" + _INTS[size]
            note = t.name if t.name.split().count("long") == 1 else ""  # 8 bytes on BPF
            return GoField(spelled, size, size, note)
        if k == PTR:
            return GoField("uint64", 8, 8, f"pointer: {btf.c_name(t.size_or_type)} *")
        if k in (ENUM, ENUM64):
            if t.name or typedef:
                return self.define(t.id, typedef)
            if size not in _INTS:
                raise Unreproducible(f"no {size}-byte integer")
            return GoField(_INTS[size] if t.kind_flag or k == ENUM else "u" + _INTS[size], size, size,
                           "anonymous enum")
        if k == FLOAT:
            if size in (4, 8):
                return GoField(f"float{size * 8}", size, size)
            raise Unreproducible(f"{t.name}: {size}-byte float differs on wasm")
        if k == ARRAY:
            elem_id, _index, n = t.extra
            elem = self.map_type(elem_id, indent, depth + 1)
            return GoField(f"[{n}]{elem.spelling}", elem.size * n, elem.align, elem.note)
        if k == UNION:
            if t.name or typedef:
                return self.define(t.id, typedef)
            members = ", ".join(m.name or "<anonymous>" for m in self.members(t))
            return _bytes(size, f"union {{{members}}}")
        if k == STRUCT:
            if t.name or typedef:
                return self.define(t.id, typedef)
            body, align, _offsets = self.layout(t, indent + 1)
            return GoField("struct {\n" + body + "\t" * indent + "}", size, align)
        if k == FWD:
            raise Unreproducible(f"{'union' if t.kind_flag else 'struct'} {t.name} is only "
                                 f"declared (no definition in BTF)")
        raise Unreproducible(f"{btf.c_name(t.id)} has no field layout")


def generate_go_types(src: BpfSource, names: List[str], command: str,
                      declared: Optional[List[Tuple[str, str]]] = None, package: str = "main") -> TypesResult:
    """Go source of the types (selected as for C: `names`, the types a
    --header `declared`, or the object's defaults) and the types that could
    not be reproduced."""
    if not package.isidentifier() or package in GO_KEYWORDS or not package.isascii():
        raise GenError(f"bad Go package name {package!r}")
    gen = GoTypes(src.btf) if src.btf is not None else None
    problems = define_selected(src, names, declared, lambda t, typedef: gen.define(t, typedef))
    out = [f"// Code generated by `{command}`. DO NOT EDIT.\n\n"
           f"// Types of {os.path.basename(src.path)} for GOOS=wasip1 GOARCH=wasm, laid out\n"
           f"// exactly as on the BPF side (checked below at compile time).\n\n"
           f"package {package}\n"]
    if gen.checks:
        out.append('\nimport "unsafe"\n')
    for block in gen.blocks:
        out.append("\n" + block)
    if gen.checks:
        rows = [("_", f"= [1]struct{{}}{{}}[{expr}-{value}]",
                 f"// sizeof({ref})" if path is None else f"// offsetof({ref}, {path})")
                for expr, path, value, ref in gen.checks]
        out.append("\n// Sizes and offsets as on BPF: an index other than 0 does not compile.\nvar (\n"
                   + "".join(line + "\n" for line in _aligned(rows, "\t")) + ")\n")
    for problem in problems:
        out.append(f"\n// not reproducible: {problem}\n")
    return TypesResult("".join(out), problems)
