"""`wasm-bpf gen skeleton`: a libbpf-bootstrap-style skeleton header for a
wasm32 guest, built on the SDK header wasm_bpf.h.

The header embeds the object's bytes in a writable, 8-aligned static array.
`NAME_bpf__open()` points `skel->rodata` / `skel->data` at the `.rodata` /
`.data` section bytes inside that array, so assignments through them patch
the image that `NAME_bpf__load()` hands to the host. The structs behind those
pointers come from the object's BTF DATASECs, with member offsets equal to
the variables' offsets in the section (see wasm32_layout).
"""
import os
from typing import Dict, List, Optional, Tuple

from wasm_bpf_cli.inspect.bpf_object import describe_object
from wasm_bpf_cli.inspect.btf_reader import VAR
from wasm_bpf_cli.inspect.elf_reader import SHT_NOBITS
from wasm_bpf_cli.inspect.errors import InspectError

from .errors import GenError
from .source import BpfSource
from .types_header import header_preamble
from .wasm32_layout import Member, Unreproducible, Wasm32Types, c_identifier

DATA_SECTIONS = (".rodata", ".data")
BYTES_PER_LINE = 12


def default_name(path: str) -> str:
    base = os.path.basename(path)
    for suffix in (".bpf.o", ".o"):
        if base.endswith(suffix):
            base = base[:-len(suffix)]
            break
    return c_identifier(base)


def _datasec_struct(src: BpfSource, emitter: Wasm32Types, sec_name: str, tag: str,
                    warnings: List[str]) -> Optional[Tuple[str, int]]:
    """(definition, section file offset) of `struct TAG` for a data section, or None."""
    elf, btf = src.elf, src.btf
    sec = elf.section(sec_name)
    if sec is None or sec.type == SHT_NOBITS or not sec.size:
        return None
    symbols = {s.name: s for s in elf.symbols if s.shndx == sec.index and s.name}
    if btf is None or btf.datasec(sec_name) is None:
        if symbols:
            raise GenError(f"{os.path.basename(src.path)}: has {sec_name} variables but no BTF "
                           f"to describe them (compile with clang -g)")
        return None
    members = []
    for type_id, offset, size in btf.datasec(sec_name).members:
        var = btf.get(type_id)
        if var is None or var.kind != VAR:
            continue
        sym = symbols.get(var.name)
        offset = sym.value if sym is not None else offset
        members.append((offset, var.name, var.size_or_type, size))
    if not members:
        return None
    members.sort()
    lay = []
    for offset, name, type_id, size in members:
        try:
            emitter.map_type(type_id)
            lay.append(Member(name, type_id, offset * 8, 0))
        except Unreproducible as exc:
            # Still patchable as raw bytes; say why it is not typed.
            warnings.append(f"{sec_name} variable {name}: {exc}; emitted as bytes")
            lay.append(Member(name, -size, offset * 8, 0))
    # The struct ends after the last variable, rounded to its alignment (the
    # section may end unaligned; nothing copies the struct as a whole).
    natural = max(emitter.map_type(m.type_id).align for m in lay)
    end = max(m.bit_offset // 8 + size for (_o, _n, _t, size), m in zip(members, lay))
    size = (end + natural - 1) // natural * natural
    body, attrs, checks, align = _layout_with_bytes(emitter, lay, size)
    if align > 1 and sec.offset % align:
        body, attrs, checks, align = _layout_with_bytes(emitter, lay, end, force_packed=True)
    ref = f"struct {tag}"
    text = f"{ref} {{\n{body}}}{attrs};\n"
    for path, off in checks:
        text += f'_Static_assert(offsetof({ref}, {path}) == {off}, "{sec_name}: offset of {path}");\n'
    return text, sec.offset


def _layout_with_bytes(emitter: Wasm32Types, members: List[Member], size: int,
                       force_packed: bool = False):
    try:
        return emitter.layout(members, size, False, 1, force_packed)
    except Unreproducible as exc:
        raise GenError(f"cannot lay out the data section: {exc}") from None


def _hex_lines(data: bytes) -> str:
    lines = []
    for i in range(0, len(data), BYTES_PER_LINE):
        lines.append("\t" + " ".join(f"0x{b:02x}," for b in data[i:i + BYTES_PER_LINE]))
    return "\n".join(lines)


def generate_skeleton(src: BpfSource, name: str, command: str) -> Tuple[str, List[str]]:
    """The skeleton header text and warnings (one line each)."""
    obj = f"{name}_bpf"
    base = os.path.basename(src.path)
    try:
        info = describe_object(src.data, 0, base)
        emitter = Wasm32Types(src.btf) if src.btf is not None else None
        warnings: List[str] = []
        sections: Dict[str, Tuple[str, int]] = {}
        for sec_name in DATA_SECTIONS:
            kind = sec_name.lstrip(".")
            if emitter is None:
                sec = src.elf.section(sec_name)
                if sec is not None and sec.size and any(
                        s.shndx == sec.index and s.name for s in src.elf.symbols):
                    raise GenError(f"{base}: has {sec_name} variables but no BTF to describe "
                                   f"them (compile with clang -g)")
                continue
            found = _datasec_struct(src, emitter, sec_name, f"{obj}__{kind}", warnings)
            if found is not None:
                sections[kind] = found
    except InspectError as exc:
        raise GenError(str(exc)) from None
    progs = [p["name"] for p in info["programs"]]
    maps = [m["name"] for m in info["maps"] if not m["internal"]]
    guard = f"{obj.upper()}_SKEL_H"
    o = []
    o.append(header_preamble(f"Skeleton for {base}: a wasm32 guest's way to open, patch, load "
                             f"and attach it.", command))
    o.append(f"#ifndef {guard}\n#define {guard}\n\n#include <stddef.h>\n#include <stdint.h>\n"
             f"#include <stdlib.h>\n#include \"wasm_bpf.h\"\n")
    if emitter is not None and emitter.blocks:
        o.append("\n/* types of the variables below, laid out as on the BPF side */\n")
        o.extend("\n" + b for b in emitter.blocks)
    for kind in ("rodata", "data"):
        if kind in sections:
            o.append(f"\n/* .{kind} as laid out in the object; assign before {obj}__load() */\n")
            o.append(sections[kind][0])
    o.append(f"\nstruct {obj} {{\n\tstruct bpf_object *obj; /* NULL until {obj}__load() */\n")
    o.append("\tstruct {\n" + "".join(f"\t\tconst char *{c_identifier(p)};\n" for p in progs)
             + ("" if progs else "\t\tint __none;\n") + "\t} progs; /* program names */\n")
    o.append("\tstruct {\n" + "".join(f"\t\tint {c_identifier(m)};\n" for m in maps)
             + ("" if maps else "\t\tint __none;\n") + f"\t}} maps; /* fds, after {obj}__load() */\n")
    for kind in ("rodata", "data"):
        if kind in sections:
            o.append(f"\tstruct {obj}__{kind} *{kind};\n")
    o.append("};\n")
    o.append(f"\n/* {base}, {len(src.data)} bytes; writable: open() patches it in place */\n"
             f"static unsigned char {obj}__elf[] __attribute__((aligned(8))) = {{\n"
             f"{_hex_lines(src.data)}\n}};\n")
    o.append(_functions(obj, progs, maps, sections))
    o.append(f"\n#endif /* {guard} */\n")
    return "".join(o), warnings


def _functions(obj: str, progs: List[str], maps: List[str],
               sections: Dict[str, Tuple[str, int]]) -> str:
    names = "".join(f'\tskel->progs.{c_identifier(p)} = "{p}";\n' for p in progs)
    ptrs = "".join(f"\tskel->{k} = (struct {obj}__{k} *)({obj}__elf + {off});\n"
                   for k, (_t, off) in sections.items())
    fds = "".join(f'\tskel->maps.{c_identifier(m)} = wasm_bpf_map_fd(skel->obj, "{m}");\n'
                  for m in maps)
    attach = "".join(f'\terr = wasm_bpf_attach_program(skel->obj, "{p}", NULL);\n'
                     f"\tif (err < 0)\n\t\treturn err;\n" for p in progs)
    return f"""
/* Allocate the skeleton; rodata/data point into the embedded image. */
static inline struct {obj} *{obj}__open(void)
{{
	struct {obj} *skel = (struct {obj} *)calloc(1, sizeof(*skel));

	if (!skel)
		return NULL;
{names}{ptrs}	return skel;
}}

/* Load the (patched) image; fills skel->maps with the map fds.
 * 0 or a negative errno. */
static inline int {obj}__load(struct {obj} *skel)
{{
	if (!skel || skel->obj)
		return -EINVAL;
	skel->obj = wasm_bpf_object_load({obj}__elf, sizeof({obj}__elf));
	if (!skel->obj)
		return -errno;
{fds}	return 0;
}}

/* Attach every program from its section name (auto-attach, no target);
 * attach xdp/cgroup programs yourself with wasm_bpf_attach_program(). */
static inline int {obj}__attach(struct {obj} *skel)
{{
	int err = 0;

	if (!skel || !skel->obj)
		return -EINVAL;
{attach}	return err;
}}

/* Close the object (detaching everything) and free the skeleton. */
static inline void {obj}__destroy(struct {obj} *skel)
{{
	if (!skel)
		return;
	wasm_bpf_object_close(skel->obj);
	free(skel);
}}

static inline struct {obj} *{obj}__open_and_load(void)
{{
	struct {obj} *skel = {obj}__open();

	if (!skel)
		return NULL;
	if ({obj}__load(skel) < 0) {{
		{obj}__destroy(skel);
		return NULL;
	}}
	return skel;
}}
"""
