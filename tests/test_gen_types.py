"""`wasm-bpf gen types`: generated wasm32 definitions compile for wasm32 with
their _Static_asserts, and every asserted size/offset equals what gcc gives
for the same structs on x86-64 (the BPF target's layout for these types)."""
import os
import re
import struct
import subprocess

import pytest

from conftest import cli_runner
from wasm_bpf_cli.cli.gen_cmd import gen
from wasm_bpf_cli.inspect.elf_reader import read_elf

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "gen")
MULTIARCH = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True).stdout.strip()
WASM_CC = ["clang-14", "--target=wasm32-wasi", "--sysroot=/usr", "-Wall", "-Werror"]
ASSERT_RE = re.compile(r"_Static_assert\((?:sizeof\(([\w ]+)\) == (\d+)|"
                       r"offsetof\(([\w ]+), ([\w.]+)\) == (\d+))")


def compile_bpf(src: str, out: str) -> str:
    subprocess.run(["clang-14", "-g", "-O2", "-target", "bpf", f"-I/usr/include/{MULTIARCH}",
                    "-c", src, "-o", out], check=True)
    return out


@pytest.fixture(scope="module")
def layouts_obj(tmp_path_factory):
    return compile_bpf(os.path.join(DATA, "layouts.bpf.c"),
                       str(tmp_path_factory.mktemp("gen") / "layouts.bpf.o"))


@pytest.fixture(scope="module")
def bad_ld_obj(layouts_obj):
    """layouts.bpf.o with BTF's `long double` made 16 bytes (x86-64's size):
    struct has_ld (8 bytes) can then not be laid out."""
    data = open(layouts_obj, "rb").read()
    btf = read_elf(data).section(".BTF").offset
    hdr_len, _to, _tl, str_off = struct.unpack_from("<IIII", data, btf + 4)
    strings = btf + hdr_len + str_off
    name = data.find(b"\0long double\0", strings) + 1 - strings
    old = struct.pack("<III", name, 16 << 24, 8)
    assert data.count(old) == 1
    out = layouts_obj.replace(".bpf.o", "_ld16.bpf.o")
    open(out, "wb").write(data.replace(old, struct.pack("<III", name, 16 << 24, 16)))
    return out


def run_gen(*args):
    result = cli_runner().invoke(gen, list(args), env={"NO_COLOR": "1"})
    return result.exit_code, result.stdout, result.stderr


def x86_layout(checks, tmp_path):
    """The same sizes/offsets, computed by gcc for x86-64 from layouts.h."""
    lines = ['#include <stdio.h>', '#include <stddef.h>', f'#include "{DATA}/layouts.h"',
             "int main(void) {"]
    for ref, member, _ in checks:
        expr = f"sizeof({ref})" if member is None else f"offsetof({ref}, {member})"
        lines.append(f'\tprintf("%zu\\n", (size_t){expr});')
    lines.append("\treturn 0;\n}\n")
    (tmp_path / "ref.c").write_text("\n".join(lines))
    subprocess.run(["gcc", "-o", str(tmp_path / "ref"), str(tmp_path / "ref.c")], check=True)
    out = subprocess.run([str(tmp_path / "ref")], capture_output=True, text=True, check=True)
    return [int(v) for v in out.stdout.split()]


def parse_checks(header: str):
    checks = []
    for m in ASSERT_RE.finditer(header):
        if m.group(1):
            checks.append((m.group(1), None, int(m.group(2))))
        else:
            checks.append((m.group(3), m.group(4), int(m.group(5))))
    return checks


def test_types_match_x86_64_and_compile_for_wasm32(layouts_obj, tmp_path):
    code, out, err = run_gen("types", layouts_obj)
    assert (code, err) == (0, "")
    assert "double x;" in out  # long double is 8 bytes on BPF
    for needed in ("struct tricky {", "struct inner {", "struct packed_s {", "tdef_t;",
                   "struct bits {", "enum color {", "__attribute__((packed))",
                   "uint64_t ptr; /* pointer: void * */", "int64_t l; /* long */"):
        assert needed in out
    header = tmp_path / "layouts_types.h"
    header.write_text(out)
    (tmp_path / "use.c").write_text(f'#include "{header}"\nstruct tricky t;\n')
    subprocess.run(WASM_CC + ["-c", str(tmp_path / "use.c"), "-o", str(tmp_path / "use.o")],
                   check=True)
    checks = parse_checks(out)
    refs = {ref for ref, _m, _v in checks}
    assert {"struct tricky", "struct inner", "struct packed_s", "tdef_t", "struct bits",
            "enum color"} <= refs
    # a check for every member of struct tricky, nested ones included
    tricky = {m for ref, m, _ in checks if ref == "struct tricky"}
    assert {"c", "ptr", "l", "u", "u.i", "named_anon.t", "ul", "lo", "hi", "arr", "color", "sm",
            "name", "in", "ins", "pp", "tail", None} <= tricky
    checks = [c for c in checks if c[0] != "struct has_ld"]  # not in layouts.h
    assert [v for _r, _m, v in checks] == x86_layout(checks, tmp_path)


def test_bitfields_keep_their_bits(layouts_obj):
    code, out, _err = run_gen("types", layouts_obj, "struct tricky", "bits")
    assert code == 0
    assert "uint32_t a : 3; /* bits 192..194 */" in out
    assert "uint64_t big : 40; /* bits 202..241 */" in out
    assert "int64_t f4 : 60;" in out


def test_unreproducible_type_is_reported(bad_ld_obj):
    code, out, err = run_gen("types", bad_ld_obj)
    assert code == 0
    assert err == ("warning: not reproducible: struct has_ld: member x: "
                   "long double: 16-byte float differs on wasm32\n")
    assert "struct has_ld {" not in out and "struct tricky {" in out
    code, out, err = run_gen("types", bad_ld_obj, "has_ld", "tricky")
    assert code == 1
    assert err == ("error: not reproducible: struct has_ld: member x: "
                   "long double: 16-byte float differs on wasm32\n")
    assert "struct has_ld {" not in out and "struct tricky {" in out


def test_unknown_type_and_bad_input(layouts_obj, tmp_path):
    code, out, err = run_gen("types", layouts_obj, "nosuch")
    assert (code, out) == (1, "")
    assert err.startswith("error: no type 'nosuch' in the object's BTF: clang keeps only ")
    bad = tmp_path / "bad.o"
    bad.write_bytes(b"hello world")
    code, out, err = run_gen("types", str(bad))
    assert (code, out) == (1, "")
    assert err == "error: bad.o: not an ELF file (bad magic)\n"


def test_output_file_and_determinism(layouts_obj, tmp_path):
    target = tmp_path / "t.h"
    code, out, _ = run_gen("types", layouts_obj, "-o", str(target))
    assert code == 0 and out == ""
    _code, again, _ = run_gen("types", layouts_obj)
    assert target.read_text() == again


def run_wasi(wasm: str, stdout: str) -> None:
    import wasmtime

    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    cfg = wasmtime.WasiConfig()
    cfg.stdout_file = stdout
    store.set_wasi(cfg)
    instance = linker.instantiate(store, wasmtime.Module.from_file(engine, wasm))
    try:
        instance.exports(store)["_start"](store)
    except wasmtime.ExitTrap as exc:
        assert exc.code == 0


def test_bitfields_have_the_same_bits_on_wasm32(layouts_obj, tmp_path):
    """offsetof() cannot see bitfields: set each to all ones and compare the
    struct's bytes between x86-64 (original) and wasm32 (generated)."""
    code, out, _err = run_gen("types", layouts_obj, "-o", str(tmp_path / "gen.h"))
    assert code == 0
    src = os.path.join(DATA, "bitfields.c")
    subprocess.run(["gcc", "-O2", f'-DHDR="{DATA}/layouts.h"', "-o", str(tmp_path / "x86"), src],
                   check=True)
    x86 = subprocess.run([str(tmp_path / "x86")], capture_output=True, text=True, check=True)
    subprocess.run(["clang-14", "--target=wasm32-wasi", "--sysroot=/usr", "-O2",
                    f'-DHDR="{tmp_path}/gen.h"', "-o", str(tmp_path / "bf.wasm"), src], check=True)
    run_wasi(str(tmp_path / "bf.wasm"), str(tmp_path / "wasm.txt"))
    assert len(x86.stdout.splitlines()) == 11
    assert (tmp_path / "wasm.txt").read_text() == x86.stdout
