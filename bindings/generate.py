#!/usr/bin/env python3
"""Generate wasm_bpf_cli/bpf/_libbpf_generated.py: plain ctypes declarations
for the part of libbpf this project uses.

Why a generator: hand-maintained ctypes prototypes drift from the C headers
silently (wrong width, wrong struct layout) and crash at run time. Here the
installed headers are the single source of truth:

    gcc -E (GCC extensions defined away) -> pycparser -> allowlist -> ctypes

Every struct the generator lays out is checked against gcc's own sizeof and
alignof; a struct ctypes cannot reproduce is emitted as an opaque blob of the
right size and alignment instead of a wrong layout.

    python bindings/generate.py          # rewrite the module
    python bindings/generate.py --check  # exit 1 if the committed file is stale
"""
from __future__ import annotations

import argparse
import ctypes
import os
import re
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

from pycparser import c_ast, c_parser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(ROOT, "wasm_bpf_cli", "bpf", "_libbpf_generated.py")
INCLUDE_DIR = "/usr/include/bpf"
HEADERS = ("bpf/libbpf.h", "bpf/bpf.h")
LIBRARY = "libbpf.so.1"

# Functions: a name matches if it starts with one of these prefixes.
FUNCTION_PREFIXES = (
    "bpf_object__", "bpf_program__", "bpf_map__", "bpf_link__",
    "ring_buffer__", "perf_buffer__", "libbpf_", "bpf_tc_", "bpf_xdp_",
)
# Functions: exact names.
FUNCTION_NAMES = (
    "bpf_map_lookup_elem", "bpf_map_update_elem", "bpf_map_delete_elem",
    "bpf_map_get_next_key", "bpf_map_lookup_batch", "bpf_obj_get_info_by_fd",
    "bpf_prog_get_next_id", "bpf_map_get_next_id", "bpf_link_get_next_id",
    "bpf_prog_get_fd_by_id", "bpf_map_get_fd_by_id", "bpf_link_get_fd_by_id",
    "bpf_prog_attach", "bpf_prog_detach2", "bpf_enable_stats",
)
# Types wanted even though no selected prototype names them.
EXTRA_STRUCTS = (
    "bpf_map_info", "bpf_prog_info", "bpf_link_info", "bpf_btf_info",
    "bpf_object_open_opts", "bpf_tc_hook", "bpf_tc_opts",
)
EXTRA_TYPEDEFS = (
    "ring_buffer_sample_fn", "perf_buffer_sample_fn", "perf_buffer_lost_fn",
    "libbpf_print_fn_t",
)
EXTRA_ENUMS = (
    "libbpf_print_level", "bpf_prog_type", "bpf_map_type", "bpf_attach_type",
    "bpf_link_type", "libbpf_strict_mode",
)
# Anonymous uapi enums are kept when they define one of these constants.
EXTRA_ENUM_CONSTANTS = ("BPF_ANY", "BPF_F_NO_PREALLOC")

FAKE_VA_LIST = "__wasm_bpf_fake_va_list"
CPP_DEFINES = (
    "__attribute__(x)=", "__restrict=", "__restrict__=", "__inline=",
    "__inline__=", "__extension__=", "__asm__(x)=", "__asm(x)=",
    "__signed__=signed", "__volatile__=", "_Static_assert(a,b)=",
    f"__builtin_va_list={FAKE_VA_LIST}",
)

BASE_TYPES = {
    "void": "None",
    "_Bool": "ctypes.c_bool",
    "char": "ctypes.c_char",
    "signed char": "ctypes.c_byte",
    "unsigned char": "ctypes.c_ubyte",
    "short": "ctypes.c_short",
    "unsigned short": "ctypes.c_ushort",
    "int": "ctypes.c_int",
    "unsigned int": "ctypes.c_uint",
    "long": "ctypes.c_long",
    "unsigned long": "ctypes.c_ulong",
    "long long": "ctypes.c_longlong",
    "unsigned long long": "ctypes.c_ulonglong",
    "float": "ctypes.c_float",
    "double": "ctypes.c_double",
    "long double": "ctypes.c_longdouble",
}
# Typedefs kept by name because they mean something beyond their width.
NAMED_TYPEDEFS = {"size_t": "ctypes.c_size_t", "ssize_t": "ctypes.c_ssize_t"}


class GeneratorError(Exception):
    pass


def libbpf_version() -> str:
    text = open(os.path.join(INCLUDE_DIR, "libbpf_version.h")).read()
    major = re.search(r"LIBBPF_MAJOR_VERSION\s+(\d+)", text)
    minor = re.search(r"LIBBPF_MINOR_VERSION\s+(\d+)", text)
    if not major or not minor:
        raise GeneratorError("cannot read the version from libbpf_version.h")
    return f"{major.group(1)}.{minor.group(1)}"


def preprocess() -> str:
    src = f"typedef void *{FAKE_VA_LIST};\n" + "".join(f"#include <{h}>\n" for h in HEADERS)
    cmd = ["gcc", "-E", "-std=gnu11", "-x", "c", "-"]
    for d in CPP_DEFINES:
        cmd.append("-D" + d)
    out = subprocess.run(cmd, input=src, capture_output=True, text=True)
    if out.returncode != 0:
        raise GeneratorError("gcc -E failed:\n" + out.stderr)
    return out.stdout


# ----------------------------------------------------------------- constants

def c_int_literal(text: str) -> int:
    t = text.rstrip("uUlL")
    if t.startswith("'"):
        return ord(t[1:-1].encode().decode("unicode_escape"))
    if t.lower().startswith("0x"):
        return int(t, 16)
    if len(t) > 1 and t.startswith("0"):
        return int(t, 8)
    return int(t)


class ConstEval:
    def __init__(self) -> None:
        self.names: Dict[str, int] = {}

    def __call__(self, node) -> int:
        if isinstance(node, c_ast.Constant):
            return c_int_literal(node.value)
        if isinstance(node, c_ast.ID):
            return self.names[node.name]
        if isinstance(node, c_ast.Cast):
            return self(node.expr)
        if isinstance(node, c_ast.UnaryOp):
            v = self(node.expr)
            return {"-": -v, "+": v, "~": ~v, "!": int(not v)}[node.op]
        if isinstance(node, c_ast.TernaryOp):
            return self(node.iftrue) if self(node.cond) else self(node.iffalse)
        if isinstance(node, c_ast.BinaryOp):
            a, b = self(node.left), self(node.right)
            ops = {
                "+": a + b, "-": a - b, "*": a * b, "<<": a << b, ">>": a >> b,
                "|": a | b, "&": a & b, "^": a ^ b,
            }
            if node.op in ops:
                return ops[node.op]
            if node.op in ("/", "%"):
                return int(a / b) if node.op == "/" else a - b * int(a / b)
        raise GeneratorError(f"cannot evaluate constant expression {node!r}")


# ----------------------------------------------------------------- collection

class Headers:
    """Indexes the parsed translation unit by name."""

    def __init__(self, ast: c_ast.FileAST) -> None:
        self.typedefs: Dict[str, c_ast.Typedef] = {}
        self.records: Dict[Tuple[str, str], c_ast.Node] = {}  # (kind, tag) -> Struct/Union with decls
        self.enums: List[c_ast.Enum] = []
        self.functions: Dict[str, c_ast.Decl] = {}
        for ext in ast.ext:
            self._visit_types(ext)
            if isinstance(ext, c_ast.Typedef):
                self.typedefs[ext.name] = ext
            elif isinstance(ext, c_ast.Decl) and isinstance(ext.type, c_ast.FuncDecl):
                self.functions[ext.name] = ext

    def _visit_types(self, node) -> None:
        # Walk every type node to find struct/union/enum definitions (including
        # ones declared inside typedefs and function prototypes).
        for _, child in node.children():
            self._visit_types(child)
        if isinstance(node, (c_ast.Struct, c_ast.Union)) and node.decls is not None and node.name:
            kind = "struct" if isinstance(node, c_ast.Struct) else "union"
            self.records.setdefault((kind, node.name), node)
        elif isinstance(node, c_ast.Enum) and node.values is not None:
            if all(node is not e for e in self.enums):
                self.enums.append(node)


# ----------------------------------------------------------------- emission

class Emitter:
    def __init__(self, headers: Headers) -> None:
        self.h = headers
        self.const = ConstEval()
        self.enum_tags: Dict[str, c_ast.Enum] = {}
        for e in headers.enums:
            # Evaluate every enum in header order: later values may use earlier ones.
            value = -1
            for en in e.values.enumerators:
                value = self.const(en.value) if en.value is not None else value + 1
                self.const.names[en.name] = value
            if e.name:
                self.enum_tags[e.name] = e
        self.records: Dict[str, dict] = {}  # py name -> {kind, c_name, node, fields}
        self.record_order: List[str] = []
        self.opaque: Dict[str, str] = {}  # py name -> kind
        self.callbacks: Dict[str, str] = {}  # typedef name -> CFUNCTYPE expr
        self.blobs: Dict[str, Tuple[int, int]] = {}

    # types -----------------------------------------------------------------
    def record_name(self, kind: str, tag: str) -> str:
        return f"{kind}_{tag}"

    def ensure_record(self, node, hint: str) -> str:
        """Return the ctypes class name for a Struct/Union node, queuing it."""
        kind = "struct" if isinstance(node, c_ast.Struct) else "union"
        if node.name:
            py = self.record_name(kind, node.name)
            if py in self.records or py in self.opaque:
                return py
            full = node if node.decls is not None else self.h.records.get((kind, node.name))
            if full is None:
                self.opaque[py] = kind
                return py
            self.records[py] = {"kind": kind, "c_name": f"{kind} {node.name}", "node": full}
            self.records[py]["fields"] = self.fields(full, py)
            self.record_order.append(py)
            return py
        py = hint
        if py in self.records:
            return py
        self.records[py] = {"kind": kind, "c_name": None, "node": node}
        self.records[py]["fields"] = self.fields(node, py)
        self.record_order.append(py)
        return py

    def fields(self, node, owner: str) -> List[tuple]:
        out = []
        anon = 0
        pad = 0
        for decl in node.decls:
            name = decl.name
            bits = self.const(decl.bitsize) if decl.bitsize is not None else None
            if bits == 0:
                continue  # zero-width bitfield: alignment only; the size check catches a difference
            if name is None and bits is None:
                t = self.ctype(decl.type, f"{owner}__anon{anon}", value=True)
                out.append((f"_anon{anon}", t, None, True))
                anon += 1
                continue
            if name is None:
                name = f"_pad{pad}"
                pad += 1
            t = self.ctype(decl.type, f"{owner}__{name}", value=True)
            out.append((name, t, bits, False))
        return out

    def ctype(self, t, hint: str = "anon", value: bool = False, param: bool = False) -> str:
        if isinstance(t, c_ast.TypeDecl):
            return self.ctype(t.type, hint, value, param)
        if isinstance(t, c_ast.IdentifierType):
            return self.identifier(t.names)
        if isinstance(t, (c_ast.Struct, c_ast.Union)):
            return self.ensure_record(t, hint)
        if isinstance(t, c_ast.Enum):
            return "ctypes.c_int"
        if isinstance(t, c_ast.ArrayDecl):
            inner = self.ctype(t.type, hint, value=True)
            if t.dim is None:
                if param:
                    return f"ctypes.POINTER({inner})"
                return f"({inner} * 0)"
            if param:
                return f"ctypes.POINTER({inner})"
            return f"({inner} * {self.const(t.dim)})"
        if isinstance(t, c_ast.PtrDecl):
            return self.pointer(t.type, hint)
        if isinstance(t, c_ast.FuncDecl):
            return self.functype(t)
        raise GeneratorError(f"unsupported type node {type(t).__name__}")

    def pointer(self, target, hint: str) -> str:
        if isinstance(target, c_ast.FuncDecl):
            return self.functype(target)
        if isinstance(target, c_ast.TypeDecl) and isinstance(target.type, c_ast.IdentifierType):
            names = target.type.names
            resolved = self.resolve_typedef(names)
            if names == ["void"] or resolved == "void":
                return "ctypes.c_void_p"
            if names == ["char"] and "const" in target.quals:
                return "ctypes.c_char_p"
        inner = self.ctype(target, hint, value=True)
        if inner == "None":
            return "ctypes.c_void_p"
        return f"ctypes.POINTER({inner})"

    def resolve_typedef(self, names: List[str]) -> Optional[str]:
        if len(names) == 1 and names[0] in self.h.typedefs:
            td = self.h.typedefs[names[0]].type
            if isinstance(td, c_ast.TypeDecl) and isinstance(td.type, c_ast.IdentifierType):
                return self.resolve_typedef(td.type.names) or " ".join(td.type.names)
        return None

    def identifier(self, names: List[str]) -> str:
        key = " ".join(n for n in names if n != "signed" or names == ["signed", "char"])
        key = key.replace(" int", "").strip() if key not in ("int", "unsigned int") else key
        key = {"unsigned": "unsigned int", "long unsigned": "unsigned long", "": "int"}.get(key, key)
        if key in BASE_TYPES:
            return BASE_TYPES[key]
        if len(names) == 1:
            name = names[0]
            if name == FAKE_VA_LIST:
                return "ctypes.c_void_p"  # va_list is passed as a pointer on x86-64 and arm64
            if name in NAMED_TYPEDEFS:
                return NAMED_TYPEDEFS[name]
            td = self.h.typedefs.get(name)
            if td is None:
                raise GeneratorError(f"unknown type {name}")
            inner = td.type
            if isinstance(inner, c_ast.PtrDecl) and isinstance(inner.type, c_ast.FuncDecl):
                if name not in self.callbacks:
                    self.callbacks[name] = ""  # guard recursion
                    self.callbacks[name] = self.functype(inner.type)
                return name
            return self.ctype(inner, f"typedef_{name}", value=True)
        raise GeneratorError(f"unknown base type {' '.join(names)}")

    def functype(self, f: c_ast.FuncDecl) -> str:
        res, args, _ = self.signature(f)
        return f"ctypes.CFUNCTYPE({', '.join([res] + args)})"

    def signature(self, f: c_ast.FuncDecl) -> Tuple[str, List[str], bool]:
        res = self.ctype(f.type, "ret")
        args: List[str] = []
        variadic = False
        for p in (f.args.params if f.args else []):
            if isinstance(p, c_ast.EllipsisParam):
                variadic = True
                continue
            t = self.ctype(p.type, "arg", param=True)
            if t == "None":
                continue  # (void)
            args.append(t)
        return res, args, variadic


def function_selected(name: str) -> bool:
    return name in FUNCTION_NAMES or name.startswith(FUNCTION_PREFIXES)


def c_prototype(decl: c_ast.Decl) -> str:
    from pycparser import c_generator
    text = c_generator.CGenerator().visit(decl)
    return " ".join(text.split())


def render(em: Emitter, functions: List[c_ast.Decl], enums: List[c_ast.Enum], version: str) -> str:
    L: List[str] = []
    w = L.append
    w(f"# GENERATED by bindings/generate.py from libbpf {version} headers — do not edit; "
      "regenerate with: make bindings")
    w("# (equivalently: python bindings/generate.py). Source headers: "
      + ", ".join(f"<{h}>" for h in HEADERS) + ".")
    w('"""Raw ctypes declarations for libbpf. Use wasm_bpf_cli.bpf, not this module.')
    w("")
    w("Functions missing from the installed libbpf.so.1 are None; LOAD_ERROR holds")
    w('the reason when the library itself could not be loaded (then every function is None)."""')
    w("# flake8: noqa")
    w("import ctypes")
    w("")
    w(f'HEADER_VERSION = "{version}"')
    w("LOAD_ERROR = None")
    w("try:")
    w(f'    _lib = ctypes.CDLL("{LIBRARY}", use_errno=True)')
    w("except OSError as _exc:")
    w("    _lib = None")
    w("    LOAD_ERROR = str(_exc)")
    w("")
    w("")
    w("def _bind(name, restype, argtypes):")
    w('    """Look up one symbol; None when the library or the symbol is absent."""')
    w("    fn = getattr(_lib, name, None) if _lib is not None else None")
    w("    if fn is not None:")
    w("        fn.restype = restype")
    w("        fn.argtypes = argtypes")
    w("    return fn")
    w("")
    w("")
    w("# ---- enum constants")
    seen_const = set()
    for e in enums:
        label = f"enum {e.name}" if e.name else "anonymous enum"
        w(f"# {label}")
        for en in e.values.enumerators:
            if en.name in seen_const:
                continue
            seen_const.add(en.name)
            w(f"{en.name} = {em.const.names[en.name]}")
    w("")
    w("# ---- structs and unions (opaque ones are only used through POINTER)")
    all_records = sorted(set(em.record_order) | set(em.opaque))
    for py in all_records:
        kind = em.records[py]["kind"] if py in em.records else em.opaque[py]
        base = "ctypes.Structure" if kind == "struct" else "ctypes.Union"
        w(f"class {py}({base}):")
        w("    pass")
        w("")
    w("")
    w("# ---- callback types")
    for name in sorted(em.callbacks):
        w(f"{name} = {em.callbacks[name]}")
    w("")
    w("# ---- layouts (checked against gcc's sizeof/alignof at generation time)")
    for py in layout_order(em):
        rec = em.records[py]
        if py in em.blobs:
            size, align = em.blobs[py]
            elem = {1: "ctypes.c_uint8", 2: "ctypes.c_uint16", 4: "ctypes.c_uint32", 8: "ctypes.c_uint64"}[align]
            w(f"# {rec['c_name'] or py}: layout not expressible in ctypes; opaque blob")
            w(f"{py}._fields_ = [('_opaque', {elem} * {size // align})]")
            continue
        anon = [f[0] for f in rec["fields"] if f[3]]
        if anon:
            w(f"{py}._anonymous_ = {tuple(anon)!r}")
        w(f"{py}._fields_ = [")
        for name, t, bits, _ in rec["fields"]:
            if bits is None:
                w(f"    ({name!r}, {t}),")
            else:
                w(f"    ({name!r}, {t}, {bits}),")
        w("]")
    w("")
    w("# C name -> ctypes class for every named struct/union with a layout (tests compare sizes)")
    w("RECORDS = {")
    for py in sorted(em.record_order):
        if em.records[py]["c_name"]:
            w(f"    {em.records[py]['c_name']!r}: {py},")
    w("}")
    w("")
    w("# ---- functions")
    for decl in functions:
        res, args, variadic = em.signature(decl.type)
        w(f"# {c_prototype(decl)}")
        w(f"{decl.name} = _bind({decl.name!r}, {res}, [{', '.join(args)}])")
    w("")
    w("FUNCTIONS = (")
    for decl in functions:
        w(f"    {decl.name!r},")
    w(")")
    return "\n".join(L) + "\n"


def layout_order(em: Emitter) -> List[str]:
    """Records in an order where by-value members are laid out before their owner."""
    deps: Dict[str, List[str]] = {}
    for py in em.records:
        text = " ".join(t for _, t, _, _ in em.records[py]["fields"])
        # strip pointer targets: they may be incomplete
        text = re.sub(r"ctypes\.POINTER\([^()]*\)", "", text)
        deps[py] = sorted(set(re.findall(r"\b((?:struct|union)_\w+)", text)) & set(em.records))
    done: List[str] = []
    state: Dict[str, int] = {}

    def visit(n: str) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            raise GeneratorError(f"recursive by-value layout at {n}")
        state[n] = 1
        for d in deps[n]:
            visit(d)
        state[n] = 2
        done.append(n)

    for py in sorted(em.records):
        visit(py)
    return done


def c_layouts(c_names: List[str]) -> Dict[str, Tuple[int, int]]:
    """sizeof and alignof of each named record, as gcc lays it out."""
    lines = [f"#include <{h}>" for h in HEADERS] + ["#include <stdio.h>", "int main(void) {"]
    for n in c_names:
        lines.append(f'  printf("%s %zu %zu\\n", "{n}", sizeof({n}), _Alignof({n}));')
    lines += ["  return 0;", "}"]
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = os.path.join(tmp, "sizes.c"), os.path.join(tmp, "sizes")
        open(src, "w").write("\n".join(lines) + "\n")
        cc = subprocess.run(["gcc", "-std=gnu11", "-o", exe, src], capture_output=True, text=True)
        if cc.returncode != 0:
            raise GeneratorError("compiling the layout probe failed:\n" + cc.stderr)
        out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
    result = {}
    for line in out.splitlines():
        *name, size, align = line.split()
        result[" ".join(name)] = (int(size), int(align))
    return result


def generate() -> str:
    version = libbpf_version()
    ast = c_parser.CParser().parse(preprocess(), "libbpf.i")
    h = Headers(ast)
    em = Emitter(h)
    functions = [h.functions[n] for n in sorted(h.functions) if function_selected(n)]
    for decl in functions:
        em.signature(decl.type)
    for tag in EXTRA_STRUCTS:
        if ("struct", tag) in h.records:
            em.ensure_record(h.records[("struct", tag)], tag)
    for name in EXTRA_TYPEDEFS:
        em.identifier([name])
    enums = []
    for e in h.enums:
        from_libbpf = e.coord is not None and "/bpf/" in str(e.coord.file) and "linux/" not in str(e.coord.file)
        wanted_consts = any(en.name in EXTRA_ENUM_CONSTANTS for en in e.values.enumerators)
        if from_libbpf or (e.name in EXTRA_ENUMS) or wanted_consts:
            enums.append(e)
    enums.sort(key=lambda e: (e.name or "", e.values.enumerators[0].name))

    # Lay out in ctypes, compare with gcc, and fall back to blobs where they differ.
    named = {em.records[py]["c_name"]: py for py in em.records if em.records[py]["c_name"]}
    truth = c_layouts(sorted(named))
    for _ in range(3):
        text = render(em, functions, enums, version)
        ns: dict = {}
        exec(compile(text, OUTPUT, "exec"), ns)
        wrong = []
        for c_name, py in sorted(named.items()):
            cls = ns[py]
            if (ctypes.sizeof(cls), ctypes.alignment(cls)) != truth[c_name] and py not in em.blobs:
                wrong.append(py)
                em.blobs[py] = truth[c_name]
        if not wrong:
            return text
    raise GeneratorError("layouts did not converge")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    ap.add_argument("--output", default=OUTPUT)
    args = ap.parse_args(argv)
    try:
        text = generate()
    except GeneratorError as exc:
        print(f"generate.py: {exc}", file=sys.stderr)
        return 2
    if args.check:
        try:
            current = open(args.output, encoding="utf-8").read()
        except FileNotFoundError:
            current = ""
        if current != text:
            print(f"{os.path.relpath(args.output, ROOT)} is stale: run python bindings/generate.py",
                  file=sys.stderr)
            return 1
        return 0
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
