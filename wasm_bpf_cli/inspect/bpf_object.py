"""What libbpf would see in one BPF ELF object, as a JSON-able dict: license,
programs (C function name, section, program and attach type, attach target),
maps (BTF-defined, legacy `maps` section, and the internal maps libbpf makes
for global data), BTF presence, CO-RE relocation count and the global
variables a guest may patch before loading."""
import struct
from typing import Dict, List, Optional

from .btf_reader import Btf, core_relocation_count
from .elf_reader import (EM_BPF, SHN_LORESERVE, SHT_NOBITS, STT_FUNC, STT_OBJECT,
                         ElfObject, Section)
from .errors import InspectError
from .sec_defs import classify_section, map_type_name

BPF_F_RDONLY_PROG = 0x80
BPF_F_MMAPABLE = 0x400
LEGACY_MAP_DEF = struct.Struct("<IIIII")  # type, key_size, value_size, max_entries, map_flags
MAX_INITIAL_BYTES = 64  # initial values shown for globals up to this size


SHT_PROGBITS = 1


def global_data_kind(sec: Section) -> Optional[str]:
    """'rodata' | 'data' | 'bss' for the sections libbpf turns into global-data maps."""
    if sec.type not in (SHT_PROGBITS, SHT_NOBITS):
        return None
    name = sec.name
    for kind in ("rodata", "data", "bss"):
        if name == "." + kind or name.startswith("." + kind + "."):
            return kind
    return None


def describe_object(data: bytes, offset: int = 0, what: Optional[str] = None) -> Dict:
    """Describe the BPF object starting at `offset` in `data`."""
    what = what or f"BPF object at offset 0x{offset:x}"
    elf = ElfObject(data, what, base=offset)
    if elf.machine != EM_BPF:
        raise InspectError(f"{what}: not a BPF object (e_machine {elf.machine}, expected {EM_BPF} EM_BPF)")
    btf = None
    btf_sec = elf.section(".BTF")
    if btf_sec is not None:
        btf = Btf(elf.section_bytes(btf_sec), f"{what}: .BTF")
    ext_sec = elf.section(".BTF.ext")
    core = core_relocation_count(elf.section_bytes(ext_sec), f"{what}: .BTF.ext") if ext_sec else 0
    return {
        "offset": offset,
        "size": elf.length,
        "license": elf.license,
        "programs": _programs(elf),
        "maps": _maps(elf, btf, what),
        "has_btf": btf is not None,
        "has_btf_ext": ext_sec is not None,
        "core_relocations": core,
        "globals": _globals(elf, btf),
    }


def _section_of(elf: ElfObject, shndx: int) -> Optional[Section]:
    if 0 < shndx < min(len(elf.sections), SHN_LORESERVE):
        return elf.sections[shndx]
    return None


def _programs(elf: ElfObject) -> List[Dict]:
    progs = []
    for sym in elf.symbols:
        sec = _section_of(elf, sym.shndx)
        # Functions in .text are subprograms (called, never loaded on their own).
        if sym.type != STT_FUNC or sec is None or not sec.executable or sec.name == ".text":
            continue
        kind = classify_section(sec.name)
        progs.append({
            "name": sym.name,
            "section": sec.name,
            "prog_type": kind.prog_type,
            "expected_attach_type": kind.expected_attach_type,
            "attach_target": kind.attach_target,
            "instructions": sym.size // 8,
            "_order": (sec.index, sym.value),
        })
    progs.sort(key=lambda p: p.pop("_order"))
    return progs


def _map(name, type_value, key_size, value_size, max_entries, flags,
         key_type=None, value_type=None, internal=False) -> Dict:
    return {"name": name, "type": map_type_name(type_value), "key_size": key_size or 0,
            "value_size": value_size or 0, "max_entries": max_entries or 0,
            "flags": flags or 0, "key_type": key_type, "value_type": value_type,
            "internal": internal}


def _maps(elf: ElfObject, btf: Optional[Btf], what: str) -> List[Dict]:
    maps = []
    if btf is not None:
        for m in btf.map_definitions():
            maps.append(_map(m["name"], m["type"], m["key_size"], m["value_size"],
                             m["max_entries"], m["flags"], m["key_type"], m["value_type"]))
    elif elf.section(".maps") is not None:
        raise InspectError(f"{what}: has a .maps section but no .BTF to describe it")
    legacy = elf.section("maps")
    if legacy is not None and legacy.has_bytes:
        raw = elf.section_bytes(legacy)
        for sym in elf.symbols:
            if sym.shndx != legacy.index or sym.type not in (STT_OBJECT, 0) or not sym.name:
                continue
            if sym.value + LEGACY_MAP_DEF.size > len(raw):
                raise InspectError(f"{what}: legacy map {sym.name!r} at 0x{sym.value:x} "
                                   f"runs past its section")
            t, ks, vs, me, fl = LEGACY_MAP_DEF.unpack_from(raw, sym.value)
            maps.append(_map(sym.name, t, ks, vs, me, fl))
    for sec in elf.sections[1:]:
        kind = global_data_kind(sec)
        if kind is None or not sec.size:
            continue
        flags = BPF_F_MMAPABLE | (BPF_F_RDONLY_PROG if kind == "rodata" else 0)
        maps.append(_map(sec.name, 2, 4, sec.size, 1, flags, internal=True))
    return maps


def _globals(elf: ElfObject, btf: Optional[Btf]) -> List[Dict]:
    # Symbol values are the real offsets (clang leaves DATASEC offsets for
    # libbpf to fix up from the symbol table), so prefer them.
    symbols = {}
    by_section: Dict[int, List] = {}
    for sym in elf.symbols:
        if sym.type == STT_OBJECT and _section_of(elf, sym.shndx) is not None:
            symbols[(sym.shndx, sym.name)] = sym
            by_section.setdefault(sym.shndx, []).append(sym)
    out = []
    for sec in elf.sections[1:]:
        if global_data_kind(sec) is None:
            continue
        if btf is not None and btf.datasec(sec.name) is not None:
            entries = btf.variables(btf.datasec(sec.name))
        else:
            entries = [{"name": s.name, "type": None, "offset": s.value, "size": s.size}
                       for s in by_section.get(sec.index, ())]
        for var in entries:
            sym = symbols.get((sec.index, var["name"]))
            if sym is not None:
                var["offset"] = sym.value
                var["size"] = var["size"] or sym.size
            var["section"] = sec.name
            var["read_only"] = global_data_kind(sec) == "rodata"
            inside = sec.has_bytes and var["offset"] + var["size"] <= sec.size
            var["file_offset"] = sec.offset + var["offset"] if inside else None
            var["initial"] = None
            if inside and var["size"] <= MAX_INITIAL_BYTES:
                start = elf.base + sec.offset + var["offset"]
                var["initial"] = elf.data[start:start + var["size"]].hex()
            out.append(var)
    out.sort(key=lambda v: (v["section"], v["offset"], v["name"]))
    return out
