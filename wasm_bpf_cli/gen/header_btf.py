"""`wasm-bpf gen types --header FILE`: the BTF of the types a C header
declares, for a header shared by the BPF and wasm sides (upstream keeps
its ring buffer event struct in such a header, e.g. bootstrap.h).

clang emits BTF only for types that globals, maps and functions use, so the
header is compiled for the BPF target with -g together with one global per
type it defines (a pointer to it: the full definition reaches BTF). Which
types it defines comes from clang's AST dump (top-level declarations whose
location is in the header itself)."""
import os
import re
import subprocess
import tempfile
from typing import List, Tuple

from .errors import GenError
from .source import BpfSource, load_bpf_object

CLANG = "clang-14"
# what a BPF-side header expects to find already included: the vmlinux.h
# beside it when there is one (the BPF side includes it first: pid_t, u32,
# bool, kernel structs), else __u32 and friends and bool
PRELUDE = "#include <linux/types.h>\n#include <stdbool.h>\n"
VMLINUX_PRELUDE = '#include "vmlinux.h"\n'
# a top-level declaration: its kind, where it is (`FILE:L:C, ...` when the
# file changes, `line:...`/`col:...` within the same file) and the rest
_TOP = re.compile(r"^[|`]-(\w+) 0x[0-9a-f]+ (?:\w+ 0x[0-9a-f]+ )*<([^>]*)>(.*)$")
_NAME = re.compile(r"(?:(struct|union|enum) )?(\w+)(?: definition|\s'|$)")


def _multiarch_include() -> List[str]:
    try:
        arch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        arch = ""
    return [f"-I/usr/include/{arch}"] if arch else []


def _clang(args: List[str], what: str) -> str:
    try:
        out = subprocess.run([CLANG] + args, capture_output=True, text=True, timeout=120)
    except OSError as exc:
        raise GenError(f"cannot run {CLANG} to {what}: {exc.strerror or exc}") from None
    if out.returncode != 0:
        first = next((line for line in out.stderr.splitlines() if "error" in line), "")
        raise GenError(f"{CLANG} could not {what}: {first.strip() or 'failed'}")
    return out.stdout


def declared_types(main_c: str, header: str, flags: List[str]) -> List[Tuple[str, str]]:
    """(kind, name) of the named structs, unions, enums (kind struct/union/
    enum) and typedefs (kind typedef) defined at top level in `header`."""
    dump = _clang(["-target", "bpf", "-fsyntax-only", "-fno-color-diagnostics",
                   "-Xclang", "-ast-dump"] + flags + [main_c], f"parse {os.path.basename(header)}")
    found, current = [], None
    real = os.path.realpath(header)
    for line in dump.splitlines():
        m = _TOP.match(line)
        if not m:
            continue
        node, where, rest = m.groups()
        first = where.split(",")[0]
        if not first.startswith(("line:", "col:", "<invalid", "scratch space")):
            current = os.path.realpath(first.rsplit(":", 2)[0])
        if current != real or node not in ("RecordDecl", "EnumDecl", "TypedefDecl"):
            continue
        named = _NAME.search(rest)
        if named is None:
            continue
        tag, name = named.groups()
        if node == "TypedefDecl":
            found.append(("typedef", name))
        elif node == "EnumDecl":  # printed as `col:6 NAME`, without `enum`
            found.append(("enum", name))
        elif tag and rest.endswith(" definition"):
            found.append((tag, name))
    return found


def compile_header(header: str) -> Tuple[BpfSource, List[Tuple[str, str]]]:
    """A BPF object holding the BTF of every type `header` defines, and
    those types as (kind, name)."""
    if not os.path.isfile(header):
        raise GenError(f"{header}: No such file")
    flags = ["-I", os.path.dirname(os.path.abspath(header))] + _multiarch_include()
    with tempfile.TemporaryDirectory(prefix="wasm-bpf-gen-") as tmp:
        main_c = os.path.join(tmp, "types.c")
        beside = os.path.exists(os.path.join(os.path.dirname(os.path.abspath(header)), "vmlinux.h"))
        with open(main_c, "w") as f:
            f.write((VMLINUX_PRELUDE if beside else PRELUDE)
                    + f'#include "{os.path.abspath(header)}"\n')
        types = declared_types(main_c, header, flags)
        with open(main_c, "a") as f:
            for i, (kind, name) in enumerate(types):
                ref = name if kind == "typedef" else f"{kind} {name}"
                f.write(f"{ref} *__wasm_bpf_gen_types_{i};\n")
            f.write("int __wasm_bpf_gen_types_anchor;\n")
        obj = os.path.join(tmp, os.path.basename(header) + ".bpf.o")
        _clang(["-g", "-O2", "-target", "bpf", "-c"] + flags + [main_c, "-o", obj],
               f"compile {os.path.basename(header)} for the BPF target")
        src = load_bpf_object(obj)
    return src._replace(path=header), types
