"""`wasm-bpf gen skeleton`: headers compile for wasm32 with -Wall -Werror,
guests build against the SDK, and (kernel) rodata/data knobs set through
skel->rodata / skel->data reach the loaded BPF program."""
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, cli_env, cli_runner, finish_process
from wasm_bpf_cli.cli.gen_cmd import gen

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "gen")
SDK = os.path.join(ROOT, "wasm_bpf_cli", "sdk", "include")
BOOTSTRAP_OBJ = os.path.join(ROOT, "examples", "bootstrap", "bootstrap.bpf.o")
MULTIARCH = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True).stdout.strip()
WASM_CC = ["clang-14", "--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-Wall", "-Werror",
           f"-I{SDK}"]


def run_gen(*args):
    result = cli_runner().invoke(gen, list(args), env={"NO_COLOR": "1"})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    d = tmp_path_factory.mktemp("skel")
    obj = str(d / "skel.bpf.o")
    subprocess.run(["clang-14", "-g", "-O2", "-target", "bpf", f"-I/usr/include/{MULTIARCH}",
                    "-c", os.path.join(DATA, "skel.bpf.c"), "-o", obj], check=True)
    code, _out, err = run_gen("skeleton", obj, "-o", str(d / "skel.skel.h"))
    assert (code, err) == (0, "")
    return d


def test_header_shape(build):
    text = (build / "skel.skel.h").read_text()
    for needed in ("struct skel_bpf {", "\tstruct bpf_object *obj;",
                   "\t\tconst char *handle_getppid;\n\t\tconst char *handle_getpid;\n\t} progs;",
                   "\t\tint out;\n\t\tint seen;\n\t} maps;",
                   "\tstruct skel_bpf__rodata *rodata;", "\tstruct skel_bpf__data *data;",
                   "struct skel_bpf__rodata {\n\tuint8_t flag8;\n\tuint8_t __pad0[1];\n"
                   "\tuint16_t val16;\n\tuint32_t target_tgid;\n\tuint64_t magic;\n"
                   "\tuint32_t weights[3];\n\tchar label[5];\n",
                   "offsetof(struct skel_bpf__rodata, weights) == 16",
                   "static unsigned char skel_bpf__elf[] __attribute__((aligned(8)))",
                   "skel_bpf__open(void)", "skel_bpf__load(struct skel_bpf *skel)",
                   "skel_bpf__attach(struct skel_bpf *skel)", "skel_bpf__destroy(",
                   "skel_bpf__open_and_load(void)"):
        assert needed in text
    assert "bss" not in text


def test_header_and_guest_compile_for_wasm32(build):
    (build / "only.c").write_text('#include "skel.skel.h"\n')
    subprocess.run(WASM_CC + [f"-I{build}", "-c", str(build / "only.c"), "-o",
                              str(build / "only.o")], check=True)
    subprocess.run(WASM_CC + [f"-I{build}", "-Wl,--allow-undefined,--export-table", "-o",
                              str(build / "skel_guest.wasm"), os.path.join(DATA, "skel_guest.c")],
                   check=True)
    assert (build / "skel_guest.wasm").stat().st_size > 0


def test_bootstrap_skeleton_compiles(tmp_path):
    if not os.path.exists(BOOTSTRAP_OBJ):
        subprocess.run(["make", "-C", os.path.join(ROOT, "examples", "bootstrap"),
                        "bootstrap.bpf.o"], check=True, capture_output=True)
    code, out, err = run_gen("skeleton", BOOTSTRAP_OBJ, "--name", "boot")
    assert (code, err) == (0, "")
    (tmp_path / "boot.skel.h").write_text(out)
    (tmp_path / "g.c").write_text(
        '#include "boot.skel.h"\n'
        "int main(void)\n{\n\tstruct boot_bpf *skel = boot_bpf__open();\n\n"
        "\tif (!skel)\n\t\treturn 1;\n\tskel->rodata->min_duration_ns = 1000000ULL;\n"
        "\tif (boot_bpf__load(skel) || boot_bpf__attach(skel))\n\t\treturn 1;\n"
        "\tint bad = skel->maps.rb < 0;\n\n\tboot_bpf__destroy(skel);\n\treturn bad;\n}\n")
    subprocess.run(WASM_CC + [f"-I{tmp_path}", "-Wl,--allow-undefined,--export-table", "-o",
                              str(tmp_path / "g.wasm"), str(tmp_path / "g.c")], check=True)


def test_deterministic_and_stdout(build, tmp_path):
    obj = str(build / "skel.bpf.o")
    code1, out1, _ = run_gen("skeleton", obj)
    code2, out2, _ = run_gen("skeleton", obj)
    assert code1 == code2 == 0 and out1 == out2
    assert out1 == (build / "skel.skel.h").read_text()


def test_errors_are_one_line(tmp_path, build):
    cases = []
    (tmp_path / "text.o").write_text("not an object")
    cases.append((str(tmp_path / "text.o"), "error: text.o: not an ELF file (bad magic)\n"))
    subprocess.run(["gcc", "-c", "-x", "c", "-", "-o", str(tmp_path / "x86.o")],
                   input="int x = 1;\n", text=True, check=True)
    cases.append((str(tmp_path / "x86.o"),
                  "error: x86.o: not a BPF object (e_machine 62, expected 247)\n"))
    # rodata without BTF
    src = "const volatile int knob = 1;\nint f(void) { return knob; }\n"
    subprocess.run(["clang-14", "-O2", "-target", "bpf", "-c", "-x", "c", "-", "-o",
                    str(tmp_path / "nobtf.bpf.o")], input=src, text=True, check=True)
    cases.append((str(tmp_path / "nobtf.bpf.o"), "error: nobtf.bpf.o: has .rodata variables but "
                  "no BTF to describe them (compile the BPF side with clang -g)\n"))
    cases.append((str(tmp_path / "missing.o"), "error: " + str(tmp_path / "missing.o")
                  + ": No such file or directory\n"))
    for path, message in cases:
        code, out, err = run_gen("skeleton", path)
        assert (code, out, err) == (1, "", message)


@pytest.mark.kernel
@pytest.mark.engine
def test_rodata_and_data_knobs_reach_the_kernel(build, no_bpf_leaks):
    """The guest sets target_tgid (this process), magic and other knobs via
    skel->rodata, hits via skel->data; getppid() here fires the program,
    which copies them into a map the guest reads back."""
    wasm = build / "skel_guest.wasm"
    if not wasm.exists():
        test_header_and_guest_compile_for_wasm32(build)
    proc = subprocess.Popen([sys.executable, "-m", "wasm_bpf_cli", "run", str(wasm),
                             str(os.getpid()), "123456789012"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env(), cwd=ROOT)
    try:
        assert proc.stdout.readline() == "ready maps=1,1\n"
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            os.getppid()
            time.sleep(0.02)
        out, err = finish_process(proc, 20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    # weights: 100 + 6 + 1000; small: flag8 3 << 16 | val16 500; hits: 41 + 1
    assert out == "magic=123456789012 weights=1106 small=197108 hits=42\n"
