"""`wasm-bpf gen skeleton`: a libbpf-bootstrap-style skeleton header for a
wasm32 guest, for either C API of the SDK: wasm_bpf.h (maps as fds,
programs by name) or upstream's libbpf-wasm.h (`struct bpf_map *` maps and
`struct bpf_program *` programs, as bpftool's skeletons have them), chosen
by which header the guest included first.

The header embeds the object's bytes in a writable, 8-aligned static array.
`NAME_bpf__open()` points `skel->rodata` / `skel->data` (and every other
`.rodata.*` / `.data.*` section with variables: `skel->rodata_limits`, ...)
at the section bytes inside that array, so assignments through them patch
the image that `NAME_bpf__load()` hands to the host. `.bss` has no bytes in
the image: `skel->bss` is guest memory, written to the kernel's map at load
when the guest set anything in it. The structs behind those pointers come
from the object's BTF DATASECs, with member offsets equal to the variables'
offsets in the section (see wasm32_layout); static variables are skipped,
as libbpf's own skeleton generator skips them.
"""
import os
from typing import List, NamedTuple, Optional, Tuple

from wasm_bpf_cli.inspect.bpf_object import describe_object
from wasm_bpf_cli.inspect.btf_reader import VAR
from wasm_bpf_cli.inspect.elf_reader import SHT_NOBITS, STB_LOCAL
from wasm_bpf_cli.inspect.errors import InspectError

from .errors import GenError
from .source import BpfSource
from .types_header import header_preamble
from .wasm32_layout import Member, Unreproducible, Wasm32Types, c_identifier

DATA_PREFIXES = (".rodata", ".data", ".bss")
BYTES_PER_LINE = 12
BTF_VAR_STATIC = 0
APIS = ("native", "libbpf")
API_HEADERS = {"native": "wasm_bpf.h", "libbpf": "libbpf-wasm.h"}


class DataSec(NamedTuple):
    """A data section whose variables the skeleton exposes as `skel->ident`."""
    ident: str              # rodata, rodata_limits, data, bss, ...
    section: str            # .rodata, .rodata.limits, ...
    text: str               # definition of struct OBJ__ident
    offset: Optional[int]   # file offset in the ELF image; None for .bss (no file bytes)
    size: int               # section size


def default_name(path: str) -> str:
    base = os.path.basename(path)
    for suffix in (".bpf.o", ".o"):
        if base.endswith(suffix):
            base = base[:-len(suffix)]
            break
    return c_identifier(base)


def is_data_section(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in DATA_PREFIXES)


def section_ident(name: str) -> str:
    """libbpf's skeleton name of an internal map: `.rodata.str1.1` -> rodata_str1_1."""
    return c_identifier(name[1:])


def _global_symbols(src: BpfSource, index: int) -> bool:
    return any(s.shndx == index and s.name and s.bind != STB_LOCAL for s in src.elf.symbols)


def _datasec_struct(src: BpfSource, emitter: Optional[Wasm32Types], sec, tag: str,
                    warnings: List[str]) -> Optional[Tuple[str, int]]:
    """(definition of `struct TAG`, its size) for a data section, or None when
    it has no variable to expose. Static variables (a function's `static`
    locals, bpf_printk's `____fmt` strings) are skipped as libbpf's skeleton
    generator skips them: their BTF names (`func.var`) are not C names and
    they are private to the BPF program."""
    btf = src.btf
    datasec = btf.datasec(sec.name) if btf is not None else None
    if datasec is None:
        if _global_symbols(src, sec.index):
            raise GenError(f"{os.path.basename(src.path)}: has {sec.name} variables but no BTF "
                           f"to describe them (compile the BPF side with clang -g)")
        return None
    symbols = {s.name: s for s in src.elf.symbols if s.shndx == sec.index and s.name}
    members = []
    for type_id, offset, size in datasec.members:
        var = btf.get(type_id)
        if var is None or var.kind != VAR or not var.extra or var.extra[0] == BTF_VAR_STATIC:
            continue
        sym = symbols.get(var.name)
        offset = sym.value if sym is not None else offset
        members.append((offset, c_identifier(var.name), var.size_or_type, size))
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
            warnings.append(f"{sec.name} variable {name}: {exc}; emitted as bytes")
            lay.append(Member(name, -size, offset * 8, 0))
    # The struct ends after the last variable, rounded to its alignment (the
    # section may end unaligned; nothing copies the struct as a whole).
    natural = max(emitter.map_type(m.type_id).align for m in lay)
    end = max(m.bit_offset // 8 + size for (_o, _n, _t, size), m in zip(members, lay))
    size = (end + natural - 1) // natural * natural
    body, attrs, checks, align = _layout_with_bytes(emitter, lay, size)
    file_offset = 0 if sec.type == SHT_NOBITS else sec.offset
    if align > 1 and file_offset % align:
        body, attrs, checks, align = _layout_with_bytes(emitter, lay, end, force_packed=True)
        size = end
    ref = f"struct {tag}"
    text = f"{ref} {{\n{body}}}{attrs};\n"
    for path, off in checks:
        text += f'_Static_assert(offsetof({ref}, {path}) == {off}, "{sec.name}: offset of {path}");\n'
    return text, size


def _data_sections(src: BpfSource, emitter: Optional[Wasm32Types], obj: str,
                   warnings: List[str]) -> List[DataSec]:
    out = []
    for sec in src.elf.sections:
        if not is_data_section(sec.name) or not sec.size:
            continue
        ident = section_ident(sec.name)
        found = _datasec_struct(src, emitter, sec, f"{obj}__{ident}", warnings)
        if found is not None:
            text, size = found
            out.append(DataSec(ident, sec.name, text,
                               None if sec.type == SHT_NOBITS else sec.offset,
                               max(size, sec.size)))
    return out


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


def generate_skeleton(src: BpfSource, name: str, command: str,
                      api: str = "native") -> Tuple[str, List[str]]:
    """The skeleton header text and warnings (one line each). `api` is the
    SDK header it includes when the guest included neither before it."""
    obj = f"{name}_bpf"
    base = os.path.basename(src.path)
    warnings: List[str] = []
    try:
        info = describe_object(src.data, 0, base)
        emitter = Wasm32Types(src.btf) if src.btf is not None else None
        secs = _data_sections(src, emitter, obj, warnings)
    except InspectError as exc:
        raise GenError(str(exc)) from None
    if src.btf is None:
        warnings.append(f"{base} has no BTF: maps defined in SEC(\".maps\") and global "
                        f"variables need it (compile the BPF side with clang -g; "
                        f"llvm-strip -g keeps BTF)")
    progs = [p["name"] for p in info["programs"]]
    maps = [m["name"] for m in info["maps"] if not m["internal"]]
    internal = [m["name"] for m in info["maps"] if m["internal"]]
    guard = f"{obj.upper()}_SKEL_H"
    o = []
    o.append(header_preamble(
        f"Skeleton for {base}: a wasm32 guest's way to open, patch, load and attach it.\n"
        f" * Two APIs: wasm_bpf.h's (maps as fds, programs by name) or upstream's\n"
        f" * libbpf-wasm.h (struct bpf_map / struct bpf_program), whichever the guest\n"
        f" * included first; {API_HEADERS[api]} if neither.", command))
    o.append(f"#ifndef {guard}\n#define {guard}\n\n#include <stddef.h>\n#include <stdint.h>\n"
             f"#include <stdlib.h>\n#include <string.h>\n#ifndef WASM_BPF_H\n"
             f"#include \"{API_HEADERS[api]}\"\n#endif\n")
    if emitter is not None and emitter.blocks:
        o.append("\n/* types of the variables below, laid out as on the BPF side */\n")
        o.extend("\n" + b for b in emitter.blocks)
    for sec in secs:
        when = (f"assign before {obj}__load()" if sec.offset is not None else
                f"guest memory: what is set before {obj}__load() is written to the map at load")
        o.append(f"\n/* {sec.section} as laid out in the object; {when} */\n")
        o.append(sec.text)
    sec_ptrs = "".join(f"\tstruct {obj}__{d.ident} *{d.ident};\n" for d in secs)
    o.append("\n#ifdef WASM_BPF_LIBBPF_API\n")
    o.append(f"struct {obj} {{\n\tstruct bpf_object *obj; /* NULL until {obj}__load() */\n")
    o.append(_members("struct bpf_map *", maps + [section_ident(m) for m in internal], "maps"))
    o.append(_members("struct bpf_program *", progs, "progs"))
    o.append(sec_ptrs + "};\n#else\n")
    o.append(f"struct {obj} {{\n\tstruct bpf_object *obj; /* NULL until {obj}__load() */\n")
    o.append(_members("const char *", progs, "progs", " /* program names */"))
    o.append(_members("int ", maps, "maps", f" /* fds, after {obj}__load() */"))
    o.append(sec_ptrs + "};\n#endif\n")
    o.append(f"\n/* {base}, {len(src.data)} bytes; writable: open() patches it in place */\n"
             f"static unsigned char {obj}__elf[] __attribute__((aligned(8))) = {{\n"
             f"{_hex_lines(src.data)}\n}};\n")
    o.append("\n#ifdef WASM_BPF_LIBBPF_API\n")
    o.append(_libbpf_functions(obj, progs, maps, internal, secs))
    o.append("#else\n")
    o.append(_native_functions(obj, progs, maps, secs))
    o.append("#endif\n")
    o.append(_common_functions(obj))
    o.append(f"\n#endif /* {guard} */\n")
    return "".join(o), warnings


def _members(ctype: str, names: List[str], field: str, comment: str = "") -> str:
    body = "".join(f"\t\t{ctype}{c_identifier(n)};\n" for n in names) or "\t\tint __none;\n"
    return f"\tstruct {{\n{body}\t}} {field};{comment}\n"


def _section_pointers(obj: str, secs: List[DataSec]) -> str:
    """open(): .rodata/.data point into the image; .bss into guest memory."""
    out = ""
    for d in secs:
        if d.offset is not None:
            out += f"\tskel->{d.ident} = (struct {obj}__{d.ident} *)({obj}__elf + {d.offset});\n"
        else:
            out += (f"\tskel->{d.ident} = (struct {obj}__{d.ident} *)calloc(1, {d.size});\n"
                    f"\tif (!skel->{d.ident})\n\t\tgoto fail;\n")
    return out


def _bss_push(obj: str, secs: List[DataSec]) -> str:
    """load(): a .bss the guest wrote to before load goes to the kernel's map."""
    out = ""
    for d in secs:
        if d.offset is None:
            out += (f'\terr = wasm_bpf__push_bss(skel->obj, "{d.section}", skel->{d.ident}, '
                    f"{d.size});\n\tif (err < 0)\n\t\treturn err;\n")
    return out


def _free_sections(secs: List[DataSec]) -> str:
    return "".join(f"\tfree(skel->{d.ident});\n" for d in secs if d.offset is None)


def _native_functions(obj: str, progs: List[str], maps: List[str], secs: List[DataSec]) -> str:
    names = "".join(f'\tskel->progs.{c_identifier(p)} = "{p}";\n' for p in progs)
    fds = "".join(f'\tskel->maps.{c_identifier(m)} = wasm_bpf_map_fd(skel->obj, "{m}");\n'
                  for m in maps)
    attach = "".join(f'\terr = wasm_bpf_attach_program(skel->obj, "{p}", NULL);\n'
                     f"\tif (err < 0)\n\t\treturn err;\n" for p in progs)
    err_decl = "\tint err;\n\n" if any(d.offset is None for d in secs) else ""
    return f"""
/* Close the object (detaching everything) and free the skeleton. */
static inline void {obj}__destroy(struct {obj} *skel)
{{
	if (!skel)
		return;
	wasm_bpf_object_close(skel->obj);
{_free_sections(secs)}	free(skel);
}}

/* Allocate the skeleton; rodata/data point into the embedded image. */
static inline struct {obj} *{obj}__open(void)
{{
	struct {obj} *skel = (struct {obj} *)calloc(1, sizeof(*skel));

	if (!skel)
		return NULL;
{names}{_section_pointers(obj, secs)}	return skel;
{_fail_label(obj, secs)}}}

/* Load the (patched) image; fills skel->maps with the map fds.
 * 0 or a negative errno. */
static inline int {obj}__load(struct {obj} *skel)
{{
{err_decl}	if (!skel || skel->obj)
		return -EINVAL;
	skel->obj = wasm_bpf_object_load({obj}__elf, sizeof({obj}__elf));
	if (!skel->obj)
		return -errno;
{fds}{_bss_push(obj, secs)}	return 0;
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
"""


def _fail_label(obj: str, secs: List[DataSec]) -> str:
    if not any(d.offset is None for d in secs):
        return ""
    return f"fail:\n\t{obj}__destroy(skel);\n\treturn NULL;\n"


def _libbpf_functions(obj: str, progs: List[str], maps: List[str], internal: List[str],
                      secs: List[DataSec]) -> str:
    all_maps = [(c_identifier(m), m) for m in maps] + [(section_ident(m), m) for m in internal]
    make = "".join(f'\tskel->maps.{i} = wasm_bpf__skel_map("{m}");\n\tif (!skel->maps.{i})\n'
                   f"\t\tgoto fail;\n" for i, m in all_maps)
    make += "".join(f'\tskel->progs.{c_identifier(p)} = wasm_bpf__skel_prog("{p}");\n'
                    f"\tif (!skel->progs.{c_identifier(p)})\n\t\tgoto fail;\n" for p in progs)
    frees = "".join(f"\tfree(skel->maps.{i});\n" for i, _m in all_maps)
    frees += "".join(f"\tfree(skel->progs.{c_identifier(p)});\n" for p in progs)
    autoload = "".join(
        f"\terr = wasm_bpf_set_autoload({obj}__elf, sizeof({obj}__elf), \"{p}\",\n"
        f"\t\t\t\t    skel->progs.{c_identifier(p)}->autoload);\n"
        f"\tif (err < 0)\n\t\treturn err;\n" for p in progs)
    handles = "".join(f"\tskel->maps.{i}->obj_ptr = skel->obj->handle;\n" for i, _m in all_maps)
    handles += "".join(f"\tskel->progs.{c_identifier(p)}->obj_ptr = skel->obj->handle;\n"
                       for p in progs)
    attach = "".join(f"\terr = wasm_bpf__skel_attach(skel->obj, skel->progs.{c_identifier(p)});\n"
                     f"\tif (err < 0)\n\t\treturn err;\n" for p in progs)
    return f"""
/* Close the object (detaching everything) and free the skeleton. */
static inline void {obj}__destroy(struct {obj} *skel)
{{
	if (!skel)
		return;
	wasm_bpf_object_close(skel->obj);
{frees}{_free_sections(secs)}	free(skel);
}}

/* Allocate the skeleton, its bpf_map and bpf_program handles; rodata/data
 * point into the embedded image. */
static inline struct {obj} *{obj}__open(void)
{{
	struct {obj} *skel = (struct {obj} *)calloc(1, sizeof(*skel));

	if (!skel)
		return NULL;
{make}{_section_pointers(obj, secs)}	return skel;
fail:
	{obj}__destroy(skel);
	return NULL;
}}

/* Load the (patched) image without the programs whose autoload is off.
 * 0 or a negative errno. */
static inline int {obj}__load(struct {obj} *skel)
{{
	int err = 0;

	if (!skel || skel->obj)
		return -EINVAL;
{autoload}	skel->obj = wasm_bpf_object_load({obj}__elf, sizeof({obj}__elf));
	if (!skel->obj)
		return -errno;
{handles}{_bss_push(obj, secs)}	return err;
}}

/* Attach every loaded program, to the target set with
 * bpf_set_prog_attach_target() or from its section name. */
static inline int {obj}__attach(struct {obj} *skel)
{{
	int err = 0;

	if (!skel || !skel->obj)
		return -EINVAL;
{attach}	return err;
}}
"""


def _common_functions(obj: str) -> str:
    return f"""
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
