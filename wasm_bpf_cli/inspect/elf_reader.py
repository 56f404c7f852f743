"""A bounded reader for ELF64 little-endian objects (what clang emits for
`-target bpf`): header, section headers and names, symbols, the license.

Every count and offset is checked against the object's bytes before use, so
corrupt input raises InspectError naming what is wrong, never anything else.
"""
import struct
from typing import Dict, List, NamedTuple, Optional, Tuple

from ._cursor import c_string
from .errors import InspectError

ELF_MAGIC = b"\x7fELF"
ELFCLASS64 = 2
ELFDATA2LSB = 1
EM_BPF = 247
EHDR_SIZE = 64
SHDR_SIZE = 64
SYM_SIZE = 24
SHN_UNDEF, SHN_LORESERVE, SHN_XINDEX = 0, 0xFF00, 0xFFFF
SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS = 2, 3, 8
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
STT_OBJECT, STT_FUNC, STT_SECTION = 1, 2, 3
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
# Far more than any real object has; stops a hostile count from costing time.
MAX_SECTIONS = 65536
MAX_SYMBOLS = 1 << 20

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")


class Section(NamedTuple):
    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int

    @property
    def has_bytes(self) -> bool:
        return self.type != SHT_NOBITS

    @property
    def executable(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)


class Symbol(NamedTuple):
    name: str
    type: int      # STT_*
    bind: int      # STB_*
    shndx: int
    value: int
    size: int


class ElfHeader(NamedTuple):
    machine: int
    type: int
    shoff: int
    shnum: int
    shstrndx: int
    phoff: int
    phnum: int
    phentsize: int


def _header(data: bytes, base: int, what: str) -> ElfHeader:
    size = len(data) - base
    if size < 4 or data[base:base + 4] != ELF_MAGIC:
        raise InspectError(f"{what}: not an ELF file (bad magic)")
    if size < EHDR_SIZE:
        raise InspectError(f"{what}: truncated ELF header ({size} of {EHDR_SIZE} bytes)")
    (ident, e_type, machine, _ver, _entry, phoff, shoff, _flags, _ehsize,
     phentsize, phnum, shentsize, shnum, shstrndx) = _EHDR.unpack_from(data, base)
    if ident[4] != ELFCLASS64:
        raise InspectError(f"{what}: not a 64-bit ELF object (class {ident[4]})")
    if ident[5] != ELFDATA2LSB:
        raise InspectError(f"{what}: not a little-endian ELF object (data encoding {ident[5]})")
    if shoff and shentsize != SHDR_SIZE:
        raise InspectError(f"{what}: bad section header size {shentsize} (expected {SHDR_SIZE})")
    if shoff and (shnum == 0 or shstrndx == SHN_XINDEX):
        # Extended numbering: the real values live in section header 0.
        if shoff + SHDR_SIZE > size:
            raise InspectError(f"{what}: section header table at offset 0x{shoff:x} "
                               f"is past the end of the object ({size} bytes)")
        sh0 = _SHDR.unpack_from(data, base + shoff)
        if shnum == 0:
            shnum = sh0[5]
        if shstrndx == SHN_XINDEX:
            shstrndx = sh0[6]
    if shnum > MAX_SECTIONS:
        raise InspectError(f"{what}: implausible section count {shnum}")
    if shoff + shnum * SHDR_SIZE > size:
        raise InspectError(f"{what}: section header table (offset 0x{shoff:x}, {shnum} entries) "
                           f"is past the end of the object ({size} bytes)")
    if phnum and phoff + phnum * phentsize > size:
        raise InspectError(f"{what}: program header table (offset 0x{phoff:x}, {phnum} entries) "
                           f"is past the end of the object ({size} bytes)")
    return ElfHeader(machine, e_type, shoff, shnum, shstrndx, phoff, phnum, phentsize)


class ElfObject:
    def __init__(self, data: bytes, what: str = "ELF object", base: int = 0):
        # The object starts at `base` inside `data` (no copy: scanning a large
        # module for embedded objects stays linear). Offsets below are the
        # object's own, relative to `base`.
        self.data = data
        self.base = base
        self.what = what
        self.header = h = _header(data, base, what)
        size = len(data) - base
        self.machine = h.machine
        raw = [_SHDR.unpack_from(data, base + h.shoff + i * SHDR_SIZE) for i in range(h.shnum)]
        for i, sh in enumerate(raw):
            sh_type, offset = sh[1], sh[4]
            if sh_type != SHT_NOBITS and i and offset + sh[5] > size:
                raise InspectError(f"{what}: section {i} (offset 0x{offset:x}, size {size}) "
                                   f"extends past the end of the object ({size} bytes)")
        if h.shnum and not 0 < h.shstrndx < h.shnum:
            raise InspectError(f"{what}: section name table index {h.shstrndx} out of range")
        names: List[str] = []
        if h.shnum:
            strtab = raw[h.shstrndx]
            for i, sh in enumerate(raw):
                names.append(c_string(data, base + strtab[4] + sh[0], base + strtab[4] + strtab[5],
                                      f"{what}: name of section {i}") if i else "")
        self.sections: List[Section] = [
            Section(i, names[i], sh[1], sh[2], sh[4], sh[5], sh[6], sh[7], sh[9])
            for i, sh in enumerate(raw)]
        self._symbols: Optional[List[Symbol]] = None

    @property
    def length(self) -> int:
        """The object's real length: the furthest of its header, its section
        header table, program header table and section contents."""
        h = self.header
        end = max(EHDR_SIZE, h.shoff + h.shnum * SHDR_SIZE)
        if h.phnum:
            end = max(end, h.phoff + h.phnum * h.phentsize)
        for s in self.sections[1:]:
            if s.has_bytes:
                end = max(end, s.offset + s.size)
        return end

    def section(self, name: str) -> Optional[Section]:
        for s in self.sections:
            if s.name == name and s.index:
                return s
        return None

    def section_bytes(self, sec: Section) -> bytes:
        if not sec.has_bytes:
            return b""
        start = self.base + sec.offset
        return self.data[start:start + sec.size]

    def section_name(self, index: int) -> Optional[str]:
        return self.sections[index].name if 0 < index < len(self.sections) else None

    @property
    def symbols(self) -> List[Symbol]:
        if self._symbols is None:
            self._symbols = self._read_symbols()
        return self._symbols

    def _read_symbols(self) -> List[Symbol]:
        symtab = next((s for s in self.sections if s.type == SHT_SYMTAB), None)
        if symtab is None:
            return []
        if not 0 < symtab.link < len(self.sections):
            raise InspectError(f"{self.what}: symbol table links to bad string table {symtab.link}")
        strtab = self.sections[symtab.link]
        if not strtab.has_bytes:
            raise InspectError(f"{self.what}: symbol string table has no contents")
        count = symtab.size // SYM_SIZE
        if count > MAX_SYMBOLS:
            raise InspectError(f"{self.what}: implausible symbol count {count}")
        out = []
        for i in range(count):
            st_name, info, _other, shndx, value, size = _SYM.unpack_from(
                self.data, self.base + symtab.offset + i * SYM_SIZE)
            base = self.base + strtab.offset
            name = c_string(self.data, base + st_name, base + strtab.size,
                            f"{self.what}: name of symbol {i}") if st_name else ""
            out.append(Symbol(name, info & 0xF, info >> 4, shndx, value, size))
        return out

    @property
    def license(self) -> Optional[str]:
        sec = self.section("license")
        if sec is None or not sec.has_bytes or not sec.size:
            return None
        raw = self.section_bytes(sec)
        return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def read_elf(data: bytes, what: str = "ELF object") -> ElfObject:
    return ElfObject(data, what)


def _looks_like_bpf(data: bytes, off: int) -> bool:
    return (data[off + 4:off + 6] == bytes((ELFCLASS64, ELFDATA2LSB))
            and data[off + 18:off + 20] == EM_BPF.to_bytes(2, "little"))


def scan_bpf_objects(data: bytes, origin: int = 0) -> List[Tuple[int, int, Optional[str]]]:
    """Every ELF64 LE header with e_machine EM_BPF in `data`, as
    (offset, length, error). `length` is the object's real length when its
    headers are readable (error None); otherwise what remains of `data` and
    the error message. `origin` is where `data` starts in the file, used
    only to name offsets in messages."""
    out = []
    pos = data.find(ELF_MAGIC)
    while pos >= 0:
        step = 4
        if _looks_like_bpf(data, pos):
            try:
                obj = ElfObject(data, f"BPF object at offset 0x{origin + pos:x}", base=pos)
                out.append((pos, obj.length, None))
                step = max(obj.length, 4)
            except InspectError as exc:
                out.append((pos, len(data) - pos, str(exc)))
        pos = data.find(ELF_MAGIC, pos + step)
    return out


def find_bpf_objects(data: bytes) -> List[Tuple[int, int]]:
    """(offset, length) of each readable BPF ELF object embedded in `data`."""
    return [(off, n) for off, n, err in scan_bpf_objects(data) if err is None]
