"""The BPF objects a wasm module embeds, found in its linear memory as the
module's data segments lay it out.

A C guest's object is one byte array in one data segment. A TinyGo guest's
(and any module run through `wasm-opt --memory-packing`) is not: runs of
zeros are left out and the rest is split into several segments, so no one
segment holds the whole ELF. Active segments at constant addresses are laid
out into an image of the initial linear memory (gaps are zero, as in the
memory itself) and the image is searched; passive segments, and segments
whose address is not a constant, are searched one by one.
"""
from typing import List, NamedTuple, Optional, Tuple

from .elf_reader import scan_bpf_objects
from .wasm_reader import DataSegment, WasmModule

MAX_IMAGE = 256 << 20  # larger spans of initial memory are searched segment by segment


class EmbeddedObject(NamedTuple):
    data: bytes            # the bytes searched (a segment or the memory image)
    start: int             # where the object starts in `data`
    length: int            # its length (what remains of `data` when unreadable)
    error: Optional[str]   # why it cannot be read, or None
    address: Optional[int]  # in linear memory, when known
    segment: int           # index of the segment holding its first byte
    file_offset: int       # of its first byte in the module file

    @property
    def image(self) -> bytes:
        return self.data[self.start:self.start + self.length]


def _laid_out(mod: WasmModule) -> List[DataSegment]:
    return [s for s in mod.data_segments
            if s.mode == "active" and s.offset is not None and not s.memory and s.size]


def memory_image(mod: WasmModule) -> Optional[Tuple[int, bytes, List[DataSegment]]]:
    """(base address, bytes, segments laid out) of the initial linear memory
    from the lowest to the highest byte any active segment writes; None if
    there is none or the span is larger than MAX_IMAGE."""
    segs = _laid_out(mod)
    if not segs:
        return None
    base = min(s.offset for s in segs)
    end = max(s.offset + s.size for s in segs)
    if end - base > MAX_IMAGE:
        return None
    image = bytearray(end - base)
    for s in segs:  # in order: a later segment overwrites an earlier one, as instantiation does
        image[s.offset - base:s.offset - base + s.size] = mod.segment_bytes(s)
    return base, bytes(image), segs


def embedded_objects(mod: WasmModule) -> List[EmbeddedObject]:
    """Every BPF ELF header in the module's data, readable or not, in address
    order for laid-out memory, then the other segments in file order."""
    out: List[EmbeddedObject] = []
    laid = memory_image(mod)
    searched = set()
    if laid is not None:
        base, image, segs = laid
        searched = {s.index for s in segs}
        for off, length, error in scan_bpf_objects(image):
            address = base + off
            seg = next(s for s in reversed(segs) if s.offset <= address < s.offset + s.size)
            file_offset = seg.file_offset + address - seg.offset
            if error is not None:
                error = error.replace(f"offset 0x{off:x}", f"offset 0x{file_offset:x}", 1)
            out.append(EmbeddedObject(image, off, length, error, address, seg.index, file_offset))
    for seg in mod.data_segments:
        if seg.index in searched or not seg.size:
            continue
        chunk = mod.segment_bytes(seg)
        for off, length, error in scan_bpf_objects(chunk, seg.file_offset):
            address = seg.offset + off if seg.offset is not None else None
            out.append(EmbeddedObject(chunk, off, length, error, address, seg.index, seg.file_offset + off))
    return out
