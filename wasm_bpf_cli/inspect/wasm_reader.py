"""A bounded reader for core WebAssembly binaries (version 1).

Reads what `inspect` needs: the section layout, types, imports, functions,
tables, memories, exports, data segments and custom section names. Sections it
does not need (code, globals, elements, ...) are skipped by their size, so
their contents never matter. Every length is checked against what remains, so
a stranger's file can only make this raise InspectError, never loop or crash.

`WasmModule.sections` keeps each section's raw boundaries `(id, start, end)`
(start = offset of the id byte, end = end of its payload) so a binary rewriter
can reuse this reader.
"""
from typing import Dict, List, NamedTuple, Optional, Tuple

from ._cursor import Cursor
from .errors import InspectError

MAGIC = b"\0asm"
VERSION = b"\x01\0\0\0"

SECTION_NAMES = {
    0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory",
    6: "global", 7: "export", 8: "start", 9: "element", 10: "code", 11: "data",
    12: "data count", 13: "tag",
}
VALTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128",
            0x70: "funcref", 0x6F: "externref"}
KINDS = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}
PAGE_SIZE = 65536


class FuncType(NamedTuple):
    params: Tuple[str, ...]
    results: Tuple[str, ...]


class Limits(NamedTuple):
    min: int
    max: Optional[int]
    shared: bool = False
    memory64: bool = False


class Import(NamedTuple):
    module: str
    name: str
    kind: str               # func | table | memory | global | tag
    type: Optional[FuncType]  # for functions
    limits: Optional[Limits]  # for tables and memories


class Export(NamedTuple):
    name: str
    kind: str
    index: int


class DataSegment(NamedTuple):
    index: int
    mode: str                # "active" | "passive"
    memory: Optional[int]
    offset: Optional[int]    # address in linear memory, when a constant i32/i64
    file_offset: int         # where the segment's bytes start in the file
    size: int


class WasmModule:
    def __init__(self, data: bytes):
        self.data = data
        self.sections: List[Tuple[int, int, int]] = []
        self.types: List[FuncType] = []
        self.imports: List[Import] = []
        self.functions: List[int] = []   # type index of each defined function
        self.tables: List[Limits] = []
        self.memories: List[Limits] = []
        self.exports: List[Export] = []
        self.data_segments: List[DataSegment] = []
        self.custom_sections: List[str] = []
        self.data_count: Optional[int] = None
        self._imported_funcs = None

    @property
    def imported_functions(self) -> List[Import]:
        return [i for i in self.imports if i.kind == "func"]

    def func_type(self, index: int) -> Optional[FuncType]:
        """The type of function `index` in the function index space."""
        if self._imported_funcs is None or len(self._imported_funcs[0]) != len(self.imports):
            self._imported_funcs = (list(self.imports), self.imported_functions)
        imported = self._imported_funcs[1]
        if index < len(imported):
            return imported[index].type
        index -= len(imported)
        if 0 <= index < len(self.functions):
            return self._type(self.functions[index])
        return None

    def memory(self, index: int = 0) -> Optional[Tuple[Limits, bool]]:
        """(limits, imported) of memory `index`."""
        imported = [i.limits for i in self.imports if i.kind == "memory"]
        allm = [(m, True) for m in imported] + [(m, False) for m in self.memories]
        return allm[index] if 0 <= index < len(allm) else None

    def export(self, name: str) -> Optional[Export]:
        for e in self.exports:
            if e.name == name:
                return e
        return None

    def segment_bytes(self, seg: DataSegment) -> bytes:
        return self.data[seg.file_offset:seg.file_offset + seg.size]

    def _type(self, index: int) -> Optional[FuncType]:
        return self.types[index] if 0 <= index < len(self.types) else None


def is_wasm(data: bytes) -> bool:
    return data[:4] == MAGIC


def read_wasm(data: bytes) -> WasmModule:
    if len(data) < 8 or data[:4] != MAGIC:
        raise InspectError("not a wasm module (bad magic)")
    if data[4:8] != VERSION:
        version = int.from_bytes(data[4:8], "little")
        raise InspectError(f"unsupported wasm binary version 0x{version:x} (only core modules, version 1)")
    mod = WasmModule(data)
    top = Cursor(data, 8, len(data), "module")
    seen = set()
    while top.remaining:
        start = top.pos
        sid = top.u8()
        what = SECTION_NAMES.get(sid, f"section {sid}")
        size_at = top.pos
        size = top.uleb()
        if size > top.remaining:
            raise InspectError(f"{what} section at offset 0x{start:x} has size {size}, "
                               f"past the end of the file ({top.remaining} bytes left at 0x{size_at:x})")
        payload = top.pos
        end = payload + size
        mod.sections.append((sid, start, end))
        if sid not in SECTION_NAMES:
            raise InspectError(f"unknown section id {sid} at offset 0x{start:x}")
        if sid != 0:
            if sid in seen:
                raise InspectError(f"duplicate {what} section at offset 0x{start:x}")
            seen.add(sid)
        cur = Cursor(data, payload, end, f"{what} section")
        _READERS.get(sid, _skip)(mod, cur)
        if sid != 0 and cur.pos != end:
            raise InspectError(f"{what} section at offset 0x{start:x} has {end - cur.pos} "
                               f"unread bytes at offset 0x{cur.pos:x}")
        top.pos = end
    return mod


def _skip(mod: WasmModule, cur: Cursor) -> None:
    cur.pos = cur.end


def _custom(mod: WasmModule, cur: Cursor) -> None:
    mod.custom_sections.append(cur.name())
    cur.pos = cur.end


def _valtype(cur: Cursor) -> str:
    at = cur.pos
    b = cur.u8()
    if b not in VALTYPES:
        cur.fail(f"unsupported value type 0x{b:02x}", at)
    return VALTYPES[b]


def _types(mod: WasmModule, cur: Cursor) -> None:
    for _ in range(cur.count()):
        at = cur.pos
        form = cur.u8()
        if form != 0x60:
            cur.fail(f"unsupported type form 0x{form:02x}", at)
        params = tuple(_valtype(cur) for _ in range(cur.count()))
        results = tuple(_valtype(cur) for _ in range(cur.count()))
        mod.types.append(FuncType(params, results))


def _limits(cur: Cursor) -> Limits:
    at = cur.pos
    flags = cur.u8()
    if flags > 7:
        cur.fail(f"bad limits flags 0x{flags:02x}", at)
    bits = 64 if flags & 4 else 32
    lo = cur.uleb(bits)
    hi = cur.uleb(bits) if flags & 1 else None
    return Limits(lo, hi, bool(flags & 2), bool(flags & 4))


def _table_type(cur: Cursor) -> Limits:
    at = cur.pos
    ref = cur.u8()
    if ref not in (0x70, 0x6F):
        cur.fail(f"unsupported table element type 0x{ref:02x}", at)
    return _limits(cur)


def _imports(mod: WasmModule, cur: Cursor) -> None:
    for _ in range(cur.count(3)):
        module = cur.name()
        name = cur.name()
        at = cur.pos
        kind = cur.u8()
        ftype = limits = None
        if kind == 0:
            tidx_at = cur.pos
            tidx = cur.uleb()
            ftype = mod._type(tidx)
            if ftype is None:
                cur.fail(f"import {module}.{name} uses undefined type {tidx}", tidx_at)
        elif kind == 1:
            limits = _table_type(cur)
        elif kind == 2:
            limits = _limits(cur)
        elif kind == 3:
            _valtype(cur)
            cur.u8()  # mutability
        elif kind == 4:
            cur.u8()  # tag attribute
            cur.uleb()
        else:
            cur.fail(f"import {module}.{name} has unknown kind {kind}", at)
        mod.imports.append(Import(module, name, KINDS[kind], ftype, limits))


def _functions(mod: WasmModule, cur: Cursor) -> None:
    for _ in range(cur.count()):
        at = cur.pos
        tidx = cur.uleb()
        if mod._type(tidx) is None:
            cur.fail(f"function uses undefined type {tidx}", at)
        mod.functions.append(tidx)


def _tables(mod: WasmModule, cur: Cursor) -> None:
    for _ in range(cur.count(2)):
        mod.tables.append(_table_type(cur))


def _memories(mod: WasmModule, cur: Cursor) -> None:
    for _ in range(cur.count(2)):
        mod.memories.append(_limits(cur))


def _exports(mod: WasmModule, cur: Cursor) -> None:
    for _ in range(cur.count(3)):
        name = cur.name()
        at = cur.pos
        kind = cur.u8()
        if kind not in KINDS:
            cur.fail(f"export {name!r} has unknown kind {kind}", at)
        mod.exports.append(Export(name, KINDS[kind], cur.uleb()))


def _data_count(mod: WasmModule, cur: Cursor) -> None:
    mod.data_count = cur.uleb()


# Constant-expression opcodes and how many immediates they carry.
_END = 0x0B


def _const_expr(cur: Cursor) -> Optional[int]:
    """Skip a constant expression; return its value when it is a lone
    i32.const / i64.const (the only form a data segment offset takes in
    practice), else None."""
    ops = []
    while True:
        at = cur.pos
        op = cur.u8()
        if op == _END:
            break
        if op == 0x41:
            ops.append(cur.sleb(32) & 0xFFFFFFFF)
        elif op == 0x42:
            ops.append(cur.sleb(64) & 0xFFFFFFFFFFFFFFFF)
        elif op == 0x23 or op == 0xD2:      # global.get, ref.func
            cur.uleb()
            ops.append(None)
        elif op == 0xD0:                    # ref.null t
            cur.u8()
            ops.append(None)
        elif op == 0x43:
            cur.skip(4)
            ops.append(None)
        elif op == 0x44:
            cur.skip(8)
            ops.append(None)
        elif op in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):  # extended-const arithmetic
            ops.append(None)
        else:
            cur.fail(f"unsupported opcode 0x{op:02x} in constant expression", at)
    return ops[0] if len(ops) == 1 else None


def _short_leb(data: bytes, q: int, end: int) -> Optional[Tuple[int, int, int]]:
    """(unsigned value, next position, bits read) of a LEB128 of at most 4
    bytes at `q`, or None."""
    value = shift = 0
    while q < end and shift <= 21:
        b = data[q]
        q += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, q, shift
    return None


def _short_active_segment(data: bytes, p: int, end: int) -> Optional[Tuple[int, int, int]]:
    """(offset, payload position, size) of an active segment of memory 0 at
    `p` whose offset is `i32.const` and whose LEB128s are at most 4 bytes
    (what every toolchain writes), or None for anything else. Go's linker
    writes tens of thousands of segments (it splits data at runs of zeros):
    decoding them with the Cursor's checked reads took 0.35 s of every start."""
    if p + 4 > end or data[p] != 0 or data[p + 1] != 0x41:
        return None
    offset = _short_leb(data, p + 2, end)
    if offset is None:
        return None
    value, q, bits = offset
    if value >> (bits - 1):  # sign bit: i32.const is signed
        value -= 1 << bits
    if q >= end or data[q] != _END:
        return None
    size = _short_leb(data, q + 1, end)
    if size is None or size[0] > end - size[1]:
        return None
    return value & 0xFFFFFFFF, size[1], size[0]


def _data(mod: WasmModule, cur: Cursor) -> None:
    data, end, append = cur.data, cur.end, mod.data_segments.append
    for index in range(cur.count()):
        at = cur.pos
        short = _short_active_segment(data, at, end)
        if short is not None:
            offset, pos, size = short
            append(DataSegment(index, "active", 0, offset, pos, size))
            cur.pos = pos + size
            continue
        flags = cur.uleb()
        memory = offset = None
        if flags == 0:
            memory, offset = 0, _const_expr(cur)
        elif flags == 1:
            pass
        elif flags == 2:
            memory = cur.uleb()
            offset = _const_expr(cur)
        else:
            cur.fail(f"data segment {index} has bad flags {flags}", at)
        size = cur.count()
        mod.data_segments.append(DataSegment(index, "passive" if flags == 1 else "active",
                                             memory, offset, cur.pos, size))
        cur.skip(size)


_READERS = {0: _custom, 1: _types, 2: _imports, 3: _functions, 4: _tables,
            5: _memories, 7: _exports, 11: _data, 12: _data_count}
