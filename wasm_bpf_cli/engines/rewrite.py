"""A small wasm binary section editor: add exported functions to a module.

Why: wasmer-python cannot hand a table's funcref to the host, so the host
cannot call a guest's sample callback by its table index. Adding an exported
trampoline that does `call_indirect` inside wasm solves that for every guest.

Only the sections that must change are re-encoded (type, function, export,
code); every other section, custom ones included, is copied byte for byte, in
its place. Existing type and function indices never change: types and
defined functions are only appended. Self-contained on purpose (its own
LEB128 and section walking), so it depends on no other reader.
"""
from typing import Callable, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from wasm_bpf_cli.errors import ModuleError

MAGIC = b"\0asm"
VERSION_1 = b"\x01\0\0\0"
TABLE_EXPORT = "__indirect_function_table"

VALTYPES = {"i32": 0x7F, "i64": 0x7E, "f32": 0x7D, "f64": 0x7C, "v128": 0x7B,
            "funcref": 0x70, "externref": 0x6F}

# Section ids.
CUSTOM, TYPE, IMPORT, FUNCTION, TABLE, MEMORY, GLOBAL, EXPORT = 0, 1, 2, 3, 4, 5, 6, 7
START, ELEMENT, CODE, DATA, DATACOUNT, TAG = 8, 9, 10, 11, 12, 13
# The order non-custom sections must appear in (tag sits between memory and global).
_ORDER = [TYPE, IMPORT, FUNCTION, TABLE, MEMORY, TAG, GLOBAL, EXPORT, START, ELEMENT,
          DATACOUNT, CODE, DATA]

# Export / import kinds.
KIND_FUNC, KIND_TABLE, KIND_MEMORY, KIND_GLOBAL, KIND_TAG = 0, 1, 2, 3, 4


class RewriteError(ModuleError):
    """The module cannot be rewritten (not wasm, truncated, lacks what is needed)."""


# ---------------------------------------------------------------- LEB128

def encode_u32(value: int) -> bytes:
    if value < 0 or value > 0xFFFFFFFF:
        raise ValueError(f"u32 out of range: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_name(name: str) -> bytes:
    raw = name.encode("utf-8")
    return encode_u32(len(raw)) + raw


class _Reader:
    """A cursor over bytes; every read past the end is a RewriteError."""

    def __init__(self, data: bytes, pos: int = 0, end: Optional[int] = None, what: str = "module"):
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end
        self.what = what

    def _truncated(self):
        return RewriteError(f"truncated wasm {self.what} at byte {self.pos}")

    def byte(self) -> int:
        if self.pos >= self.end:
            raise self._truncated()
        b = self.data[self.pos]
        self.pos += 1
        return b

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise self._truncated()
        raw = self.data[self.pos:self.pos + n]
        self.pos += n
        return raw

    def leb_u(self, bits: int = 32) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
            if shift >= bits + 7:
                raise RewriteError(f"malformed LEB128 in wasm {self.what} at byte {self.pos}")
        if result >> bits:
            raise RewriteError(f"LEB128 value too large in wasm {self.what} at byte {self.pos}")
        return result

    def name(self) -> str:
        raw = self.take(self.leb_u())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RewriteError(f"invalid UTF-8 name in wasm {self.what}") from None

    def limits(self) -> None:
        flags = self.byte()
        bits = 64 if flags & 0x04 else 32
        self.leb_u(bits)
        if flags & 0x01:
            self.leb_u(bits)

    def at_end(self) -> bool:
        return self.pos >= self.end


# ---------------------------------------------------------------- sections

class Section(NamedTuple):
    id: int
    payload: bytes
    raw: bytes  # id + size + payload exactly as found (copied back unchanged)


def split_sections(wasm: bytes) -> List[Section]:
    """The module's sections in file order; checks the header and every size."""
    wasm = bytes(wasm)
    if len(wasm) < 8 or wasm[:4] != MAGIC:
        raise RewriteError("not a wasm module (no \\0asm header)")
    if wasm[4:8] != VERSION_1:
        raise RewriteError(f"unsupported wasm version {wasm[4:8].hex()} (only 1 is)")
    r = _Reader(wasm, 8)
    sections = []
    seen = []
    while not r.at_end():
        start = r.pos
        sid = r.byte()
        size = r.leb_u()
        payload = r.take(size)
        if sid != CUSTOM:
            if sid not in _ORDER:
                raise RewriteError(f"unknown wasm section id {sid} at byte {start}")
            if sid in seen or (seen and _ORDER.index(sid) < _ORDER.index(seen[-1])):
                raise RewriteError(f"wasm section {sid} out of order or repeated at byte {start}")
            seen.append(sid)
        sections.append(Section(sid, payload, wasm[start:r.pos]))
    return sections


def join_sections(sections: Iterable[Section]) -> bytes:
    return MAGIC + VERSION_1 + b"".join(s.raw for s in sections)


def make_section(sid: int, payload: bytes) -> Section:
    return Section(sid, payload, bytes([sid]) + encode_u32(len(payload)) + payload)


def _find(sections: Sequence[Section], sid: int) -> Optional[int]:
    for i, s in enumerate(sections):
        if s.id == sid:
            return i
    return None


def _put(sections: List[Section], sid: int, payload: bytes) -> None:
    """Replace section `sid`, or insert it where the section order says:
    right after the last non-custom section that must precede it."""
    new = make_section(sid, payload)
    i = _find(sections, sid)
    if i is not None:
        sections[i] = new
        return
    rank = _ORDER.index(sid)
    at = 0
    for j, s in enumerate(sections):
        if s.id != CUSTOM and _ORDER.index(s.id) < rank:
            at = j + 1
    sections.insert(at, new)


def _vec_items(payload: bytes, what: str) -> Tuple[int, _Reader]:
    r = _Reader(payload, what=f"{what} section")
    return r.leb_u(), r


def _append_to_vec(payload: Optional[bytes], item: bytes, what: str) -> bytes:
    """A vector section's payload with one more item: new count, old items as they were."""
    if payload is None:
        return encode_u32(1) + item
    count, r = _vec_items(payload, what)
    return encode_u32(count + 1) + payload[r.pos:] + item


# ---------------------------------------------------------------- reading what we need

FuncType = Tuple[Tuple[int, ...], Tuple[int, ...]]  # valtype bytes


def _types(sections: Sequence[Section]) -> List[Optional[FuncType]]:
    i = _find(sections, TYPE)
    if i is None:
        return []
    count, r = _vec_items(sections[i].payload, "type")
    out: List[Optional[FuncType]] = []
    for _ in range(count):
        form = r.byte()
        if form != 0x60:
            # GC proposal types (rec/sub/struct/array): we never match or renumber them.
            raise RewriteError(f"unsupported type form 0x{form:02x} in type section")
        params = tuple(r.take(r.leb_u()))
        results = tuple(r.take(r.leb_u()))
        out.append((params, results))
    return out


class _Imports(NamedTuple):
    funcs: int
    tables: int


def _imports(sections: Sequence[Section]) -> _Imports:
    entries = list(_import_entries(sections))
    return _Imports(sum(e.kind == KIND_FUNC for e in entries), sum(e.kind == KIND_TABLE for e in entries))


class _ImportEntry(NamedTuple):
    module: str
    name: str
    kind: int
    type_index: Optional[int]  # a function import's type; None for the others
    name_start: int  # the name field's bounds in the import section's payload
    name_end: int
    end: int  # where the entry ends (after a function's type index)


def _import_entries(sections: Sequence[Section]) -> Iterator[_ImportEntry]:
    """Every entry of the import section, in order (none without one)."""
    i = _find(sections, IMPORT)
    if i is None:
        return
    count, r = _vec_items(sections[i].payload, "import")
    for _ in range(count):
        module = r.name()
        start = r.pos
        name = r.name()
        end = r.pos
        kind = r.byte()
        type_index = None
        if kind == KIND_FUNC:
            type_index = r.leb_u()
        elif kind == KIND_TABLE:
            r.byte()
            r.limits()
        elif kind == KIND_MEMORY:
            r.limits()
        elif kind == KIND_GLOBAL:
            r.byte()
            r.byte()
        elif kind == KIND_TAG:
            r.byte()
            r.leb_u()
        else:
            raise RewriteError(f"unknown import kind {kind}")
        yield _ImportEntry(module, name, kind, type_index, start, end, r.pos)


def _count(sections: Sequence[Section], sid: int, what: str) -> int:
    i = _find(sections, sid)
    return 0 if i is None else _vec_items(sections[i].payload, what)[0]


def _exports(sections: Sequence[Section]) -> List[Tuple[str, int, int]]:
    i = _find(sections, EXPORT)
    if i is None:
        return []
    count, r = _vec_items(sections[i].payload, "export")
    out = []
    for _ in range(count):
        name = r.name()
        kind = r.byte()
        out.append((name, kind, r.leb_u()))
    return out


def _valtype_bytes(names: Sequence[str]) -> Tuple[int, ...]:
    try:
        return tuple(VALTYPES[n] for n in names)
    except KeyError as e:
        raise ValueError(f"unknown wasm value type {e.args[0]!r}") from None


# ---------------------------------------------------------------- public API

def ensure_type(wasm: bytes, params: Sequence[str], results: Sequence[str]) -> Tuple[bytes, int]:
    """(module, index of a function type (params) -> (results)): the first
    existing one, or a new one appended to the type section."""
    sections = split_sections(wasm)
    wanted = (_valtype_bytes(params), _valtype_bytes(results))
    types = _types(sections)
    for idx, t in enumerate(types):
        if t == wanted:
            return bytes(wasm), idx
    entry = (b"\x60" + encode_u32(len(wanted[0])) + bytes(wanted[0])
             + encode_u32(len(wanted[1])) + bytes(wanted[1]))
    i = _find(sections, TYPE)
    _put(sections, TYPE, _append_to_vec(None if i is None else sections[i].payload, entry, "type"))
    return join_sections(sections), len(types)


def export_index(wasm: bytes, name: str, kind: int) -> Optional[int]:
    """Index of the export `name` of that kind (KIND_FUNC, KIND_TABLE...), or None."""
    for ename, ekind, idx in _exports(split_sections(wasm)):
        if ename == name and ekind == kind:
            return idx
    return None


def add_function(wasm: bytes, type_index: int, locals: Sequence[str], body: bytes,
                 export_name: str) -> Tuple[bytes, int]:
    """Append a defined function of type `type_index` and export it.

    `locals` are the value types of the extra locals (beyond the params);
    `body` is the instruction bytes *without* the final `end`. Returns
    (module, the new function's index). Imported and defined function
    indices are unchanged; the new one is the last.
    """
    sections = split_sections(wasm)
    ntypes = len(_types(sections))
    if not 0 <= type_index < ntypes:
        raise RewriteError(f"type index {type_index} out of range ({ntypes} types)")
    exports = _exports(sections)
    if any(name == export_name for name, _, _ in exports):
        raise RewriteError(f"module already exports `{export_name}`")
    ndefined = _count(sections, FUNCTION, "function")
    ncode = _count(sections, CODE, "code")
    if ndefined != ncode:
        raise RewriteError(f"function and code sections disagree ({ndefined} vs {ncode} entries)")
    func_index = _imports(sections).funcs + ndefined

    # Locals are run-length encoded: (count, type) groups.
    groups: List[Tuple[int, int]] = []
    for vt in _valtype_bytes(locals):
        if groups and groups[-1][1] == vt:
            groups[-1] = (groups[-1][0] + 1, vt)
        else:
            groups.append((1, vt))
    code = encode_u32(len(groups)) + b"".join(encode_u32(n) + bytes([vt]) for n, vt in groups)
    code += bytes(body) + b"\x0b"
    entry = encode_u32(len(code)) + code

    def payload(sid):
        i = _find(sections, sid)
        return None if i is None else sections[i].payload

    new_func = _append_to_vec(payload(FUNCTION), encode_u32(type_index), "function")
    new_code = _append_to_vec(payload(CODE), entry, "code")
    new_export = _append_to_vec(payload(EXPORT),
                                encode_name(export_name) + bytes([KIND_FUNC]) + encode_u32(func_index),
                                "export")
    _put(sections, FUNCTION, new_func)
    _put(sections, CODE, new_code)
    _put(sections, EXPORT, new_export)
    return join_sections(sections), func_index


def set_memory_max(wasm: bytes, max_bytes: int) -> bytes:
    """Cap the module's own memory 0 at `max_bytes` (rounded down to whole
    64 KiB pages) by lowering the maximum in its memory section, so that
    `memory.grow` past it fails in the guest (-1), as the spec says. A lower
    existing maximum is kept. An imported memory or a module without memory
    is returned unchanged (nothing of its own to cap)."""
    sections = split_sections(wasm)
    i = _find(sections, MEMORY)
    if i is None or _count(sections, MEMORY, "memory") == 0:
        return bytes(wasm)
    pages = max_bytes // 65536
    count, r = _vec_items(sections[i].payload, "memory")
    start = r.pos
    flags = r.byte()
    if flags & 0x04:
        raise RewriteError("cannot cap a 64-bit memory")
    minimum = r.leb_u()
    maximum = r.leb_u() if flags & 0x01 else None
    if minimum > pages:
        raise RewriteError(f"module starts with {minimum} pages of memory, "
                           f"more than the cap of {max_bytes} bytes ({pages} pages)")
    if maximum is not None and maximum <= pages:
        return bytes(wasm)
    limits = bytes([flags | 0x01]) + encode_u32(minimum) + encode_u32(pages)
    payload = sections[i].payload
    _put(sections, MEMORY, payload[:start] + limits + payload[r.pos:])
    return join_sections(sections)


def add_table_trampoline(wasm: bytes, export_name: str = "__wasm_bpf_call_table",
                         params: Sequence[str] = ("i32", "i32", "i32"),
                         results: Sequence[str] = ("i32",),
                         table_export: str = TABLE_EXPORT) -> bytes:
    """Add an exported function `(idx: i32, *params) -> results` that calls
    entry `idx` of the exported function table with `params` (call_indirect:
    traps on a null entry, a bad index, or an entry of another type)."""
    table = export_index(wasm, table_export, KIND_TABLE)
    if table is None:
        raise RewriteError(f"module exports no function table `{table_export}`: "
                           "cannot call sample callbacks by table index")
    if any(name == export_name for name, _, _ in _exports(split_sections(wasm))):
        raise RewriteError(f"module already exports `{export_name}`")
    wasm, callee_type = ensure_type(wasm, params, results)
    wasm, tramp_type = ensure_type(wasm, ("i32",) + tuple(params), results)
    body = bytearray()
    for i in range(1, len(params) + 1):
        body += b"\x20" + encode_u32(i)  # local.get i (the callback's args)
    body += b"\x20\x00"  # local.get 0 (the table index)
    body += b"\x11" + encode_u32(callee_type) + encode_u32(table)  # call_indirect type table
    return add_function(wasm, tramp_type, (), bytes(body), export_name)[0]


# ---------------------------------------------------------------- ring-buffer batch dispatch

REWRITE_VERSION = 9  # bump whenever what compile() adds to a module changes (module cache key)


def poll_in_wasm_enabled() -> bool:
    """serve_poll_in_wasm is applied where it can be (wasmer), unless
    WASM_BPF_POLL_IN_WASM=0 (comparisons) or the C poll helper is off."""
    import os

    return (os.environ.get("WASM_BPF_POLL_IN_WASM", "1") != "0"
            and os.environ.get("WASM_BPF_NATIVE_POLL", "1") != "0")


def fd_write_in_wasm_enabled() -> bool:
    """serve_fd_write_in_wasm is applied where it can be (wasmer), unless
    WASM_BPF_FD_WRITE_IN_WASM=0 (comparisons)."""
    return served_in_wasm_enabled(FD_WRITE)


def served_in_wasm_enabled(served: "ServedImport") -> bool:
    """serve_import_in_wasm(served) is applied where it can be (wasmer),
    unless its switch (WASM_BPF_MAP_OPERATE_IN_WASM...) is 0 (comparisons)."""
    import os

    return os.environ.get(served.switch, "1") != "0"


def cache_version() -> str:
    """The module cache's rewrite version: what compile() adds, as configured."""
    return (f"{REWRITE_VERSION}" + ("" if poll_in_wasm_enabled() else "-nopoll")
            + ("" if fd_write_in_wasm_enabled() else "-nofdwrite")
            + "".join(f"-no{s.name}" for s in HOST_SERVED_IMPORTS if not served_in_wasm_enabled(s)))

# The dispatch loops' type: (cb, ctx, data, max_size, hdrs, payload, len, res) -> i32
RING_DISPATCH_PARAMS = ("i32",) * 8
RING_DISPATCH_TABLE = "__wasm_bpf_ring_dispatch"  # calls table entry `cb`
RING_DISPATCH_EXPORT_PREFIX = "__wasm_bpf_ring_dispatch:"  # + the exported callback's name
PERF_DISPATCH_TABLE = "__wasm_bpf_perf_dispatch"  # the same over perf-buffer records
PERF_DISPATCH_EXPORT_PREFIX = "__wasm_bpf_perf_dispatch:"
PERF_RECORD_LOST, PERF_RECORD_SAMPLE = 2, 9
RINGBUF_BUSY_BIT, RINGBUF_DISCARD_BIT, RINGBUF_HDR_SZ = 1 << 31, 1 << 30, 8


def encode_s32(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _ring_dispatch_body(call: bytes) -> bytes:
    """The loop over a batch of ring-buffer records copied by the host.

    `hdrs` and `payload` are two copies of the same `len` bytes of the ring
    (records: u32 len with BUSY/DISCARD bits, u32 pg_off, data, 8-aligned):
    headers are read from the first copy, payloads from the second, which the
    host made after the first, so a record seen committed in the first copy is
    complete in the second. Per record: stop at BUSY or at a record that does
    not fit in `len`; skip DISCARD; else copy min(size, max_size) bytes to
    `data` and call the callback with (ctx, data, n); a negative return stops
    (that record counts as consumed, as in libbpf). Stores at `res` the bytes
    consumed (u32) and the records delivered (u32); returns the callback's
    negative value, or 0."""
    g = lambda i: b"\x20" + encode_u32(i)  # noqa: E731 local.get
    s = lambda i: b"\x21" + encode_u32(i)  # noqa: E731 local.set
    t = lambda i: b"\x22" + encode_u32(i)  # noqa: E731 local.tee
    c = lambda v: b"\x41" + encode_s32(v)  # noqa: E731 i32.const
    ADD, AND, GT_U, LT_U, LT_S, EQZ = b"\x6a", b"\x71", b"\x4b", b"\x49", b"\x48", b"\x45"
    SELECT, LOAD, STORE0, STORE4 = b"\x1b", b"\x28\x02\x00", b"\x36\x02\x00", b"\x36\x02\x04"
    CB, CTX, DATA, MAX, HDRS, PAYLOAD, LEN, RES = range(8)
    OFF, HDR, RLEN, N, RET, COUNT, TOTAL = range(8, 15)
    b = bytearray()
    b += b"\x02\x40" + b"\x03\x40"  # block $done, loop $next
    b += g(OFF) + c(RINGBUF_HDR_SZ) + ADD + g(LEN) + GT_U + b"\x0d\x01"  # header past the end: done
    b += g(HDRS) + g(OFF) + ADD + LOAD + t(HDR)
    b += c(-(1 << 31)) + AND + b"\x0d\x01"  # BUSY: done
    b += g(HDR) + c(0x3FFFFFFF) + AND + t(RLEN)
    b += c(RINGBUF_HDR_SZ + 7) + ADD + c(-8) + AND + s(TOTAL)
    b += g(OFF) + g(TOTAL) + ADD + g(LEN) + GT_U + b"\x0d\x01"  # not all in the batch: done
    b += g(HDR) + c(RINGBUF_DISCARD_BIT) + AND + EQZ + b"\x04\x40"  # if not discarded
    b += g(RLEN) + g(MAX) + g(RLEN) + g(MAX) + LT_U + SELECT + s(N)
    b += g(DATA) + g(PAYLOAD) + g(OFF) + ADD + c(RINGBUF_HDR_SZ) + ADD + g(N) + b"\xfc\x0a\x00\x00"
    b += g(COUNT) + c(1) + ADD + s(COUNT)
    b += g(OFF) + g(TOTAL) + ADD + s(OFF)
    b += g(CTX) + g(DATA) + g(N) + call + t(RET)
    b += c(0) + LT_S + b"\x0d\x02"  # negative: done (if=0, loop=1, block=2)
    b += b"\x05"  # else: skip the discarded record
    b += g(OFF) + g(TOTAL) + ADD + s(OFF)
    b += b"\x0b" + b"\x0c\x00" + b"\x0b" + b"\x0b"  # end if, br $next, end loop, end block
    b += g(RES) + g(OFF) + STORE0 + g(RES) + g(COUNT) + STORE4
    b += g(RET) + c(0) + g(RET) + c(0) + LT_S + SELECT
    return bytes(b)


def _perf_dispatch_body(call: bytes) -> bytes:
    """The loop over a batch of perf-buffer records of one CPU, copied by the
    host from below the kernel's data_head (all complete): perf_event_header
    {u32 type, u16 misc, u16 size}; PERF_RECORD_SAMPLE: u32 raw size, raw data
    (the size libbpf passes on, padding included); PERF_RECORD_LOST: u64 id,
    u64 lost. Same params and result slot as the ring loop (`payload` is
    unused), plus at res+8 the sum of the lost counts (u32). A record of size
    0 or past `len` stops."""
    g = lambda i: b"\x20" + encode_u32(i)  # noqa: E731
    s_ = lambda i: b"\x21" + encode_u32(i)  # noqa: E731
    t = lambda i: b"\x22" + encode_u32(i)  # noqa: E731
    c = lambda v: b"\x41" + encode_s32(v)  # noqa: E731
    ADD, GT_U, LT_U, LT_S, EQ, EQZ = b"\x6a", b"\x4b", b"\x49", b"\x48", b"\x46", b"\x45"
    SELECT, LOAD = b"\x1b", b"\x28\x02\x00"
    CB, CTX, DATA, MAX, BUF, PAYLOAD, LEN, RES = range(8)
    OFF, TYPE, RLEN, N, RET, COUNT, TOTAL, LOST = range(8, 16)
    b = bytearray()
    b += b"\x02\x40" + b"\x03\x40"  # block $done, loop $next
    b += g(OFF) + c(8) + ADD + g(LEN) + GT_U + b"\x0d\x01"
    b += g(BUF) + g(OFF) + ADD + LOAD + s_(TYPE)
    b += g(BUF) + g(OFF) + ADD + b"\x2f\x01\x06" + t(TOTAL)  # i32.load16_u offset=6: size
    b += EQZ + b"\x0d\x01"  # size 0: corrupt, stop
    b += g(OFF) + g(TOTAL) + ADD + g(LEN) + GT_U + b"\x0d\x01"
    b += g(TYPE) + c(PERF_RECORD_SAMPLE) + EQ + b"\x04\x40"  # if sample
    b += g(BUF) + g(OFF) + ADD + b"\x28\x02\x08" + s_(RLEN)  # raw size
    b += g(RLEN) + g(MAX) + g(RLEN) + g(MAX) + LT_U + SELECT + s_(N)
    b += g(DATA) + g(BUF) + g(OFF) + ADD + c(12) + ADD + g(N) + b"\xfc\x0a\x00\x00"
    b += g(COUNT) + c(1) + ADD + s_(COUNT)
    b += g(OFF) + g(TOTAL) + ADD + s_(OFF)
    b += g(CTX) + g(DATA) + g(N) + call + t(RET)
    b += c(0) + LT_S + b"\x0d\x02"
    b += b"\x05"  # else: LOST adds its count; anything else is skipped
    b += g(TYPE) + c(PERF_RECORD_LOST) + EQ + b"\x04\x40"
    b += g(LOST) + g(BUF) + g(OFF) + ADD + b"\x28\x02\x10" + ADD + s_(LOST)
    b += b"\x0b"
    b += g(OFF) + g(TOTAL) + ADD + s_(OFF)
    b += b"\x0b" + b"\x0c\x00" + b"\x0b" + b"\x0b"
    b += g(RES) + g(OFF) + b"\x36\x02\x00" + g(RES) + g(COUNT) + b"\x36\x02\x04"
    b += g(RES) + g(LOST) + b"\x36\x02\x08"
    b += g(RET) + c(0) + g(RET) + c(0) + LT_S + SELECT
    return bytes(b)


def add_ring_dispatch(wasm: bytes, callback_exports: Sequence[str] = (),
                      table_export: str = TABLE_EXPORT) -> Tuple[bytes, List[str]]:
    """Add the batch dispatch loops that apply: `RING_DISPATCH_TABLE` (calls
    the exported table's entry `cb` with call_indirect) if the module exports
    its function table, and `RING_DISPATCH_EXPORT_PREFIX + name` (calls that
    exported function directly; `cb` is ignored) for each name in
    `callback_exports` the module exports as a (i32, i32, i32) -> i32
    function. Returns (module, names of the added exports)."""
    added: List[str] = []
    original = bytes(wasm)
    wasm, cb_type = ensure_type(wasm, ("i32",) * 3, ("i32",))
    exports = _exports(split_sections(wasm))
    names = {name for name, _, _ in exports}
    targets = []
    table = next((idx for name, kind, idx in exports if name == table_export and kind == KIND_TABLE), None)
    if table is not None and RING_DISPATCH_TABLE not in names and PERF_DISPATCH_TABLE not in names:
        call = b"\x20\x00" + b"\x11" + encode_u32(cb_type) + encode_u32(table)
        targets.append((RING_DISPATCH_TABLE, call))
        targets.append((PERF_DISPATCH_TABLE, call))
    for cb_name in callback_exports:
        func = next((idx for name, kind, idx in exports if name == cb_name and kind == KIND_FUNC), None)
        export = RING_DISPATCH_EXPORT_PREFIX + cb_name
        if (func is None or export in names or PERF_DISPATCH_EXPORT_PREFIX + cb_name in names
                or _func_type(split_sections(wasm), func) != cb_type):
            continue
        targets.append((export, b"\x10" + encode_u32(func)))
        targets.append((PERF_DISPATCH_EXPORT_PREFIX + cb_name, b"\x10" + encode_u32(func)))
    if not targets:
        return original, added
    wasm, dispatch_type = ensure_type(wasm, RING_DISPATCH_PARAMS, ("i32",))
    for export, call in targets:
        perf = export.startswith(PERF_DISPATCH_TABLE)
        body = _perf_dispatch_body(call) if perf else _ring_dispatch_body(call)
        wasm = add_function(wasm, dispatch_type, ("i32",) * (8 if perf else 7), body, export)[0]
        added.append(export)
    return wasm, added


def _func_type(sections: Sequence[Section], func_index: int) -> Optional[int]:
    """The type index of function `func_index` (imported or defined)."""
    imported = [e.type_index for e in _import_entries(sections) if e.kind == KIND_FUNC]
    if func_index < len(imported):
        return imported[func_index]
    i = _find(sections, FUNCTION)
    if i is None:
        return None
    count, r = _vec_items(sections[i].payload, "function")
    for k in range(count):
        ty = r.leb_u()
        if len(imported) + k == func_index:
            return ty
    return None


# ---------------------------------------------------------------- the poll import served in wasm

# The guest's calls of its table-variant poll import go to a function added
# here (POLL_IN_WASM), which writes the poll's arguments into the staging
# result slot and calls the same import under a new name and a new type
# (STAGE_IMPORT, () -> i32: no index moves) and, while the host answers
# STAGED, runs the table dispatch loop over the records the host staged and
# calls the import again to commit them. Why: on an engine whose host calls
# cost far less than its calls into wasm (wasmer-python), a wake-up then
# crosses wasm -> host twice and host -> wasm never. Why no arguments:
# wasmer-python 1.1 keeps each host call's argument objects (~48 B each)
# until the guest's `_start` returns; a call without arguments keeps ~8 B.
STAGE_IMPORT = "wasm_bpf_buffer_poll_stage"
STAGE_SLOT_EXPORT = "__wasm_bpf_stage_slot"  # mutable i32 global: the staging result slot, 0: none
POLL_IN_WASM = "__wasm_bpf_buffer_poll"  # exported for tests and tools
STAGED = -0x7FFFFFA9  # the stage import's "a batch is staged" (with the slot's state word == 1)
# The staging result slot (poller.Staging.res): consumed, delivered, lost (u32 each), then:
SLOT_STATE, SLOT_HDRS, SLOT_PAYLOAD, SLOT_LEN, SLOT_RET = 12, 16, 20, 24, 28
# the poll's arguments, written before each stage call: handle (i64), then
# fd, cb, ctx, data, max_size, timeout_ms (i32 each)
SLOT_ARGS = 32
SLOT_SIZE = 64
STATE_STAGED, STATE_COMMIT = 1, 2
ENOMEM_NEG = -12  # the answer when there is no slot and the memory cannot grow by one for it
WASI_MODULE = "wasi_snapshot_preview1"
FD_WRITE_STAGE_IMPORT = "wasm_bpf_fd_write_stage"  # fd_write's new name, in the same module
FD_WRITE_IN_WASM = "__wasm_bpf_fd_write"  # exported for tests and tools
# fd_write's arguments, left by FD_WRITE_IN_WASM in mutable i32 globals exported as:
FD_WRITE_ARG_EXPORTS = ("__wasm_bpf_fd_write_fd", "__wasm_bpf_fd_write_iovs",
                        "__wasm_bpf_fd_write_iovs_len", "__wasm_bpf_fd_write_nwritten")


class ServedImport(NamedTuple):
    """An import serve_import_in_wasm makes argument-free: module.name of
    type params -> i32 becomes module.stage () -> i32; the guest's calls go
    to the added function `export`, which leaves the arguments in the
    globals exported as `arg_exports` (in param order) first, or, with
    `in_slot`, in the arguments slot in memory while it has one (see
    _args_in_slot_body; the globals then only when the memory cannot grow).
    `switch`: the environment variable that, set to 0, leaves the import as
    it is."""
    module: str
    name: str
    params: Tuple[str, ...]
    stage: str
    export: str
    arg_exports: Tuple[str, ...]
    switch: str
    in_slot: bool = False


def _served(module: str, name: str, params: Sequence[Tuple[str, str]], short: str,
            in_slot: bool = False) -> ServedImport:
    """The usual names: stage `<name>_stage`, `__wasm_bpf_<short>` and
    `__wasm_bpf_<short>_<param>`, switch WASM_BPF_<SHORT>_IN_WASM."""
    return ServedImport(module, name, tuple(t for _, t in params), f"{name}_stage", f"__wasm_bpf_{short}",
                        tuple(f"__wasm_bpf_{short}_{p}" for p, _ in params), f"WASM_BPF_{short.upper()}_IN_WASM",
                        in_slot)


# The arguments slot of the imports served with `in_slot`: a mutable i32
# global exported as ARGS_SLOT_EXPORT holds its address (0: none yet). The
# first call grows the memory by a page of its own for it (as the poll's
# staging slot; wasi-libc's sbrk and Rust's allocator only use what their own
# memory.grow returns) and puts the slot ARGS_SLOT_OFFSET bytes into it (never
# address 0, even in a memory that had no page). The imports share it: the
# host reads the arguments on entry, before anything can call the guest.
ARGS_SLOT_EXPORT = "__wasm_bpf_args_slot"
ARGS_SLOT_OFFSET = 16
_SLOT_CODES = {"i32": ("i", 4), "i64": ("q", 8)}


def slot_layout(params: Sequence[str]) -> Tuple[Tuple[int, ...], str]:
    """(offset of each param in the arguments slot, the slot's `struct`
    format): little endian, each at its natural alignment, i32s signed and
    the i64s whole as the import would have had them."""
    offsets, fmt, at = [], "<", 0
    for t in params:
        code, size = _SLOT_CODES[t]
        pad = -at % size
        if pad:
            fmt += f"{pad}x"
            at += pad
        offsets.append(at)
        fmt += code
        at += size
    return tuple(offsets), fmt


FD_WRITE = ServedImport(WASI_MODULE, "fd_write", ("i32",) * 4, FD_WRITE_STAGE_IMPORT, FD_WRITE_IN_WASM,
                        FD_WRITE_ARG_EXPORTS, "WASM_BPF_FD_WRITE_IN_WASM")
# The wasm_bpf imports a guest may call often (signatures.REFERENCE_FUNCTIONS):
# map_operate is two calls per entry of a map walk; map_fd_by_name comes
# along (the same code, an i64 handle). The engine serves their stage
# imports with the host functions themselves (wasmer_engine.instantiate).
MAP_OPERATE = _served("wasm_bpf", "wasm_bpf_map_operate",
                      [("fd", "i32"), ("cmd", "i32"), ("key", "i32"), ("value", "i32"), ("next_key", "i32"),
                       ("flags", "i64")], "map_operate", in_slot=True)
MAP_FD_BY_NAME = _served("wasm_bpf", "wasm_bpf_map_fd_by_name", [("obj", "i64"), ("name", "i32")],
                         "map_fd_by_name", in_slot=True)
HOST_SERVED_IMPORTS = (MAP_OPERATE, MAP_FD_BY_NAME)


def _skip_blocktype(r: _Reader) -> None:
    b = r.data[r.pos] if r.pos < r.end else None
    if b is None:
        raise r._truncated()
    if b == 0x40 or b in VALTYPES.values():
        r.pos += 1
    else:
        r.leb_u(40)  # s33 type index: read as unsigned bits, only skipped


def _skip_memarg(r: _Reader) -> None:
    align = r.leb_u()
    if align & 0x40:  # multi-memory: a memory index follows
        r.leb_u()
    r.leb_u(64)


_NO_IMM = set(range(0x45, 0xC5)) | {0x00, 0x01, 0x05, 0x0B, 0x0F, 0x19, 0x1A, 0x1B, 0xD1}
_U32_IMM = {0x07, 0x08, 0x09, 0x0C, 0x0D, 0x18, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26}
_FC_IMMS = {8: 2, 9: 1, 10: 2, 11: 1, 12: 2, 13: 1, 14: 2, 15: 1, 16: 1, 17: 1}  # u32 immediates


def _retarget_calls(body: bytes, old: int, new: int) -> Tuple[bytes, int]:
    """A function body (locals and code) with every `call old` and
    `return_call old` made `call new` / `return_call new`; (body, calls
    changed). Every instruction is decoded (MVP, sign extension, saturating
    conversions, bulk memory, reference types, SIMD, threads, tail calls,
    legacy exceptions); anything else, or a `ref.func old`, is a RewriteError."""
    r = _Reader(body, what="code entry")
    for _ in range(r.leb_u()):  # local groups
        r.leb_u()
        r.byte()
    out = bytearray(body[:r.pos])
    changed = 0
    copied = r.pos
    while not r.at_end():
        start = r.pos
        op = r.byte()
        if op in _NO_IMM:
            continue
        if op in (0x10, 0x12):
            if r.leb_u() == old:
                out += body[copied:start] + bytes([op]) + encode_u32(new)
                copied = r.pos
                changed += 1
        elif op in _U32_IMM:
            r.leb_u()
        elif op in (0x02, 0x03, 0x04, 0x06):
            _skip_blocktype(r)
        elif op == 0x0E:
            for _ in range(r.leb_u() + 1):
                r.leb_u()
        elif op in (0x11, 0x13):
            r.leb_u()
            r.leb_u()
        elif op == 0x1C:
            r.take(r.leb_u())
        elif 0x28 <= op <= 0x3E:
            _skip_memarg(r)
        elif op in (0x3F, 0x40):
            r.leb_u()
        elif op == 0x41:
            r.leb_u(40)
        elif op == 0x42:
            r.leb_u(70)
        elif op == 0x43:
            r.take(4)
        elif op == 0x44:
            r.take(8)
        elif op == 0xD0:
            r.byte()
        elif op == 0xD2:
            if r.leb_u() == old:
                raise RewriteError("the import is used as a function reference")
        elif op == 0xFC:
            sub = r.leb_u()
            if sub > 17:
                raise RewriteError(f"unknown instruction 0xfc {sub}")
            for _ in range(_FC_IMMS.get(sub, 0)):
                r.leb_u()
        elif op == 0xFD:
            sub = r.leb_u()
            if sub <= 0x0B or sub in (0x5C, 0x5D):
                _skip_memarg(r)
            elif sub in (0x0C, 0x0D):
                r.take(16)
            elif 0x15 <= sub <= 0x22:
                r.byte()
            elif 0x54 <= sub <= 0x5B:
                _skip_memarg(r)
                r.byte()
            elif sub > 0x113:
                raise RewriteError(f"unknown instruction 0xfd {sub}")
        elif op == 0xFE:
            sub = r.leb_u()
            if sub == 0x03:
                r.byte()
            elif sub > 0x4E:
                raise RewriteError(f"unknown instruction 0xfe {sub}")
            else:
                _skip_memarg(r)
        else:
            raise RewriteError(f"unknown instruction 0x{op:02x} at byte {start} of a function body")
    out += body[copied:]
    return bytes(out), changed


def _references_to(index: int) -> List[bytes]:
    """The byte strings one of which a function body that calls function
    `index` (call, return_call) or takes it as a reference (ref.func) must
    contain: the opcode and the index in each LEB128 form of 1 to 5 bytes
    (linkers leave padded ones), the shortest first."""
    forms = []
    for length in range(1, 6):
        if index >> (7 * length) and length < 5:
            continue
        groups = [(index >> (7 * i)) & 0x7F for i in range(length)]
        forms.append(bytes(g | 0x80 for g in groups[:-1]) + bytes([groups[-1]]))
    return [op + form for form in forms for op in (b"\x10", b"\x12", b"\xd2")]


def _find_import(sections: Sequence[Section], module: str,
                 name: str) -> Optional[Tuple[int, int, int, int, int]]:
    """(function index, type index, start, end of its name field, end of its
    type index in the import section's payload) of the function import
    module.name, or None."""
    funcs = 0
    for e in _import_entries(sections):
        if e.kind != KIND_FUNC:
            continue
        if e.module == module and e.name == name:
            return funcs, e.type_index, e.name_start, e.name_end, e.end
        funcs += 1
    return None


def _poll_in_wasm_body(stage: int, dispatch: int, slot_global: int) -> bytes:
    """(handle i64, fd, cb, ctx, data, max_size, timeout_ms) -> i32; locals
    7 r, 8 slot, 9 ret. Loop: with no slot yet, grow the memory by a page
    for one (ENOMEM_NEG if it cannot); write the arguments into the slot;
    r = stage(); unless r is STAGED and the slot's state word says so,
    return r; else dispatch the staged batch with the guest's callback `cb`,
    leave its return in the slot, mark the slot COMMIT and call stage again
    (it commits, then answers or stages more). The slot is read again after
    each call (the host may move it, and a callback's own poll overwrites
    the arguments: they are written before every call)."""
    g = lambda i: b"\x20" + encode_u32(i)  # noqa: E731
    s = lambda i: b"\x21" + encode_u32(i)  # noqa: E731
    t = lambda i: b"\x22" + encode_u32(i)  # noqa: E731
    c = lambda v: b"\x41" + encode_s32(v)  # noqa: E731
    load = lambda off: b"\x28\x02" + encode_u32(off)  # noqa: E731
    store = lambda off: b"\x36\x02" + encode_u32(off)  # noqa: E731
    store64 = lambda off: b"\x37\x03" + encode_u32(off)  # noqa: E731
    get_slot, set_slot = b"\x23" + encode_u32(slot_global), b"\x24" + encode_u32(slot_global)
    NE, EQ, EQZ, SHL, RETURN, IF, END = b"\x47", b"\x46", b"\x45", b"\x74", b"\x0f", b"\x04\x40", b"\x0b"
    R, SLOT, RET = 7, 8, 9
    b = bytearray(b"\x03\x40")  # loop $again
    b += get_slot + t(SLOT) + EQZ + IF  # no slot yet: a fresh page for one
    b += c(1) + b"\x40\x00" + t(SLOT) + c(-1) + EQ + IF + c(ENOMEM_NEG) + RETURN + END
    b += g(SLOT) + c(16) + SHL + t(SLOT) + set_slot + END
    b += g(SLOT) + g(0) + store64(SLOT_ARGS)
    b += b"".join(g(SLOT) + g(i) + store(SLOT_ARGS + 4 + 4 * i) for i in range(1, 7))
    b += b"\x10" + encode_u32(stage) + t(R)
    b += c(STAGED) + NE + IF + g(R) + RETURN + END
    b += get_slot + t(SLOT) + EQZ + IF + g(R) + RETURN + END
    b += g(SLOT) + load(SLOT_STATE) + c(STATE_STAGED) + NE + IF + g(R) + RETURN + END
    b += g(SLOT) + c(0) + store(SLOT_STATE)
    b += g(2) + g(3) + g(4) + g(5)
    b += g(SLOT) + load(SLOT_HDRS) + g(SLOT) + load(SLOT_PAYLOAD) + g(SLOT) + load(SLOT_LEN) + g(SLOT)
    b += b"\x10" + encode_u32(dispatch) + s(RET)
    b += g(SLOT) + g(RET) + store(SLOT_RET)
    b += g(SLOT) + c(STATE_COMMIT) + store(SLOT_STATE)
    b += b"\x0c\x00" + END  # br $again, end loop
    b += b"\x00"  # unreachable (the loop only leaves by return)
    return bytes(b)


def _args_in_globals_body(nparams: int) -> Callable[[int, int], bytes]:
    """A body(stage, first_global) for _serve_import_in_wasm: the import's
    `nparams` arguments into the globals from `first_global` on (one each,
    of the param's type), then stage(). Globals, not a slot in memory:
    nothing grown (a page the guest sees: memory.size, pointers past its old
    end becoming valid), for fd_write, whose host side reads few arguments
    per byte written; the map imports take a slot (_args_in_slot_body)."""
    def body(stage: int, first_global: int) -> bytes:
        return b"".join(b"\x20" + encode_u32(i) + b"\x24" + encode_u32(first_global + i)
                        for i in range(nparams)) + b"\x10" + encode_u32(stage)
    return body


def _args_in_slot_body(params: Sequence[str], slot_global: int) -> Callable[[int, int], bytes]:
    """A body(stage, first_global) for _serve_import_in_wasm, with one
    extra i32 local (the slot): with no slot yet (the global
    ARGS_SLOT_EXPORT, index `slot_global`, is 0), grow the memory by a page
    and put the slot ARGS_SLOT_OFFSET bytes into it; then store the params
    into the slot (slot_layout) and call stage(). If the memory cannot grow
    (at its maximum), the same as _args_in_globals_body: the params into the
    globals from `first_global` on and stage() with the slot global still 0,
    which tells the host where to read them; the next call tries to grow
    again. Why a slot: the host reads it with one struct unpack, where a
    global is one call into the engine each."""
    offsets, _ = slot_layout(params)
    n = len(params)
    g = lambda i: b"\x20" + encode_u32(i)  # noqa: E731 local.get
    s = lambda i: b"\x21" + encode_u32(i)  # noqa: E731 local.set
    t = lambda i: b"\x22" + encode_u32(i)  # noqa: E731 local.tee
    c = lambda v: b"\x41" + encode_s32(v)  # noqa: E731 i32.const
    get_slot, set_slot = b"\x23" + encode_u32(slot_global), b"\x24" + encode_u32(slot_global)
    EQ, EQZ, SHL, ADD, IF, IF_I32, ELSE, END = b"\x46", b"\x45", b"\x74", b"\x6a", b"\x04\x40", b"\x04\x7f", b"\x05", b"\x0b"
    SLOT = n
    store = {"i32": lambda off: b"\x36\x02" + encode_u32(off),  # i32.store align=4
             "i64": lambda off: b"\x37\x03" + encode_u32(off)}  # i64.store align=8

    def body(stage: int, first_global: int) -> bytes:
        call = b"\x10" + encode_u32(stage)
        b = bytearray()
        b += get_slot + t(SLOT) + EQZ + IF  # no slot yet: a page of its own
        b += c(1) + b"\x40\x00" + t(SLOT) + c(-1) + EQ + IF
        b += c(0) + s(SLOT)  # cannot grow: no slot (the globals below)
        b += ELSE + g(SLOT) + c(16) + SHL + c(ARGS_SLOT_OFFSET) + ADD + t(SLOT) + set_slot + END
        b += END
        b += g(SLOT) + IF_I32
        b += b"".join(g(SLOT) + g(i) + store[ty](off) for i, (ty, off) in enumerate(zip(params, offsets)))
        b += call
        b += ELSE
        b += b"".join(g(i) + b"\x24" + encode_u32(first_global + i) for i in range(n))
        b += call
        b += END
        return bytes(b)
    return body


def serve_poll_in_wasm(wasm: bytes, module: str = "wasm_bpf", poll: str = "wasm_bpf_buffer_poll",
                       dispatch_export: str = RING_DISPATCH_TABLE, stage: str = STAGE_IMPORT) -> bytes:
    """Make the function import module.poll the import `stage` of type
    () -> i32 (same index: it takes its arguments from the slot), add the
    slot global and POLL_IN_WASM (see _poll_in_wasm_body, which calls
    `dispatch_export`, a loop add_ring_dispatch added), and make every call
    of the import in the guest's own code a call of POLL_IN_WASM.
    RewriteError if the module does not import it (with the poll's type),
    has no memory, lacks the loop, uses the import other than by calls
    (export, element segment, ref.func), or has code this decoder does not
    know (the caller keeps the module as it was)."""
    dispatch = export_index(wasm, dispatch_export, KIND_FUNC)

    def body(old: int, slot: int) -> bytes:
        if dispatch is None:
            raise RewriteError(f"module has no dispatch loop `{dispatch_export}`")
        return _poll_in_wasm_body(old, dispatch, slot)

    return _serve_import_in_wasm(wasm, module, poll, ("i64",) + ("i32",) * 6, stage, POLL_IN_WASM, body, 3,
                                 (STAGE_SLOT_EXPORT,))


def serve_fd_write_in_wasm(wasm: bytes, stage: str = FD_WRITE_STAGE_IMPORT) -> bytes:
    """The same for the guest's `wasi_snapshot_preview1.fd_write` (FD_WRITE,
    see serve_import_in_wasm): its calls go to FD_WRITE_IN_WASM, the import
    becomes `stage` () -> i32 in the same module, which reads (fd, iovs,
    iovs_len, nwritten) from the globals FD_WRITE_ARG_EXPORTS. Why: one host
    call per line a line-buffered guest prints, each of whose 4 argument
    objects wasmer-python would keep until the guest exits."""
    return serve_import_in_wasm(wasm, FD_WRITE, stage)


def serve_import_in_wasm(wasm: bytes, served: "ServedImport", stage: Optional[str] = None) -> bytes:
    """Make the function import served.module.name take no arguments: it
    becomes `stage` (served.stage by default) of type () -> i32, every call
    of it in the guest's own code goes to the added function served.export,
    which leaves the arguments in the exported globals served.arg_exports
    (one per param, of its type: an i64 stays whole) and calls the stage
    import, whose answer is the guest's. With served.in_slot, it leaves
    them in the arguments slot in memory instead (ARGS_SLOT_EXPORT, added
    once for all such imports; _args_in_slot_body), the globals only while
    the memory cannot grow for one. Why: wasmer-python keeps each host
    call's argument objects (~48 B each) until the guest's `_start` returns;
    a call without arguments keeps ~8 B. RewriteError as
    serve_poll_in_wasm's (the caller keeps the module as it was; with
    in_slot also for a 64-bit memory)."""
    if not served.in_slot:
        return _serve_import_in_wasm(wasm, served.module, served.name, served.params, stage or served.stage,
                                     served.export, _args_in_globals_body(len(served.params)), 0,
                                     served.arg_exports, served.params)
    sections = split_sections(wasm)
    if _memory_is_64(sections):
        raise RewriteError("module has a 64-bit memory")
    slot = export_index(wasm, ARGS_SLOT_EXPORT, KIND_GLOBAL)  # another import's, shared
    globals_, types = served.arg_exports, served.params
    if slot is None:
        slot = _count_imported_globals(sections) + _count(sections, GLOBAL, "global") + len(globals_)
        globals_, types = globals_ + (ARGS_SLOT_EXPORT,), types + ("i32",)
    return _serve_import_in_wasm(wasm, served.module, served.name, served.params, stage or served.stage,
                                 served.export, _args_in_slot_body(served.params, slot), 1, globals_, types)


def serve_map_operate_in_wasm(wasm: bytes) -> bytes:
    """serve_import_in_wasm for `wasm_bpf.wasm_bpf_map_operate` (MAP_OPERATE):
    a map walk is two calls per entry, each with 6 arguments (~170 B kept
    per call by wasmer-python without this, ~9 B with it)."""
    return serve_import_in_wasm(wasm, MAP_OPERATE)


def _serve_import_in_wasm(wasm: bytes, module: str, name: str, params: Sequence[str], stage: str,
                          export: str, body: Callable[[int, int], bytes], nlocals: int,
                          global_exports: Sequence[str], global_types: Sequence[str] = ()) -> bytes:
    """Rename the function import module.name (of type params -> i32) to
    `stage` of type () -> i32 in place (no index moves), add exported
    mutable globals (= 0) named `global_exports`, of the types
    `global_types` (i32 where none is given), and `export`, a
    function of the import's type whose body is body(import index, index of
    the first added global) with `nlocals` extra i32 locals, and make every
    call of the import in the guest's own code a call of `export`."""
    wasm, stage_type = ensure_type(wasm, (), ("i32",))
    sections = split_sections(wasm)
    found = _find_import(sections, module, name)
    if found is None:
        raise RewriteError(f"module imports no function {module}.{name}")
    old, import_type, name_start, name_end, type_end = found
    types = _types(sections)
    if import_type >= len(types) or types[import_type] != (_valtype_bytes(params), _valtype_bytes(("i32",))):
        raise RewriteError(f"{module}.{name} is not imported as ({', '.join(params)}) -> i32")
    if _count(sections, MEMORY, "memory") == 0 and not _imports_memory(sections):
        raise RewriteError("module has no memory")
    exports = _exports(sections)
    if any(kind == KIND_FUNC and idx == old for _, kind, idx in exports):
        raise RewriteError(f"the {name} import is exported")
    if any(ename in (export, *global_exports) for ename, _, _ in exports):
        raise RewriteError(f"module already exports `{export}`")
    si = _find(sections, START)
    if si is not None and _Reader(sections[si].payload, what="start section").leb_u() == old:
        raise RewriteError(f"the {name} import is the start function")
    if old in _element_functions(sections):
        raise RewriteError(f"the {name} import is in an element segment")
    nimported = _imports(sections).funcs
    ndefined = _count(sections, FUNCTION, "function")
    new = nimported + ndefined  # the function added below
    ci = _find(sections, CODE)
    if ci is None:
        raise RewriteError("module has no code")
    count, r = _vec_items(sections[ci].payload, "code")
    entries = []
    calls = 0
    needles = _references_to(old)
    for _ in range(count):
        size = r.leb_u()
        code = r.take(size)
        # A body without them cannot call the import: copied as it is (decoding
        # every body in Python was most of prepare's time).
        if any(n in code for n in needles):
            code, changed = _retarget_calls(code, old, new)
            calls += changed
        entries.append(encode_u32(len(code)) + code)
    if calls == 0:
        raise RewriteError(f"module never calls {module}.{name}")
    _put(sections, CODE, encode_u32(count) + b"".join(entries))
    ii = _find(sections, IMPORT)
    payload = sections[ii].payload
    type_start = name_end + 1  # after the kind byte
    _put(sections, IMPORT, payload[:name_start] + encode_name(stage) + payload[name_end:type_start]
         + encode_u32(stage_type) + payload[type_end:])
    first_global = _count_imported_globals(sections) + _count(sections, GLOBAL, "global")
    for k, gname in enumerate(global_exports):
        gi = _find(sections, GLOBAL)
        glob = _ZERO_GLOBALS[global_types[k] if k < len(global_types) else "i32"]
        _put(sections, GLOBAL, _append_to_vec(None if gi is None else sections[gi].payload, glob, "global"))
        ei = _find(sections, EXPORT)
        _put(sections, EXPORT, _append_to_vec(None if ei is None else sections[ei].payload,
                                              encode_name(gname) + bytes([KIND_GLOBAL])
                                              + encode_u32(first_global + k), "export"))
    wasm = join_sections(sections)
    wasm, index = add_function(wasm, import_type, ("i32",) * nlocals, body(old, first_global), export)
    assert index == new
    return wasm


_ZERO_GLOBALS = {"i32": b"\x7f\x01" + b"\x41\x00\x0b",  # mut i32 = i32.const 0
                 "i64": b"\x7e\x01" + b"\x42\x00\x0b"}  # mut i64 = i64.const 0


def _imports_memory(sections: Sequence[Section]) -> bool:
    return any(e.kind == KIND_MEMORY for e in _import_entries(sections))


def _memory_is_64(sections: Sequence[Section]) -> bool:
    """Whether memory 0 (imported or the module's own) is a 64-bit one."""
    for e in _import_entries(sections):
        if e.kind == KIND_MEMORY:
            i = _find(sections, IMPORT)
            return bool(sections[i].payload[e.name_end + 1] & 0x04)  # the limits' flags, after the kind
    i = _find(sections, MEMORY)
    if i is None or _count(sections, MEMORY, "memory") == 0:
        return False
    _, r = _vec_items(sections[i].payload, "memory")
    return bool(r.byte() & 0x04)


def _count_imported_globals(sections: Sequence[Section]) -> int:
    return sum(e.kind == KIND_GLOBAL for e in _import_entries(sections))


def _const_expr_functions(r: _Reader, out: set) -> None:
    """Skip a constant expression (to its `end`), adding its ref.func indices to `out`."""
    while True:
        op = r.byte()
        if op == 0x0B:
            return
        if op in (0x41, 0x23):
            r.leb_u(40)
        elif op == 0x42:
            r.leb_u(70)
        elif op == 0xD2:
            out.add(r.leb_u())
        elif op == 0xD0:
            r.byte()
        elif op in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):  # extended constant expressions
            continue
        else:
            raise RewriteError(f"unknown instruction 0x{op:02x} in a constant expression")


def _element_functions(sections: Sequence[Section]) -> set:
    """Every function index the element segments name."""
    out: set = set()
    i = _find(sections, ELEMENT)
    if i is None:
        return out
    count, r = _vec_items(sections[i].payload, "element")
    for _ in range(count):
        flags = r.leb_u()
        if flags > 7:
            raise RewriteError(f"unknown element segment flags {flags}")
        if flags & 2 and not flags & 1:  # explicit table index
            r.leb_u()
        if not flags & 1:  # active: an offset expression
            _const_expr_functions(r, out)
        if flags & 3:  # element kind (flags 1-3) or reference type (5-7)
            r.byte()
        for _ in range(r.leb_u()):
            if flags & 4:
                _const_expr_functions(r, out)
            else:
                out.add(r.leb_u())
    return out
