"""`wasm-bpf gen skeleton|types`: C headers for wasm32 guests from a BPF object."""
import os
import sys

import click

from wasm_bpf_cli.cli.errors import fail, write_whole
from wasm_bpf_cli.errors import WasmBpfError

CONTEXT = {"help_option_names": ["-h", "--help"]}


def _write(text: str, output: str) -> None:
    if output in (None, "-"):
        click.echo(text, nl=False)
        return
    write_whole(output, text.encode())


def _command_line(*parts: str) -> str:
    return " ".join(["wasm-bpf", "gen"] + [p for p in parts if p])


@click.group(context_settings=CONTEXT)
def gen():
    """Generate C headers for wasm32 guests from a BPF object."""


@gen.command(context_settings=CONTEXT, short_help="Skeleton header (open/load/attach, rodata knobs).")
@click.argument("obj", type=click.Path(dir_okay=False))
@click.option("-o", "--output", metavar="FILE", help="Write the header here (default: stdout).")
@click.option("--name", metavar="NAME", help="Skeleton name: struct NAME_bpf, NAME_bpf__open(), ... "
              "(default: the file name without .bpf.o).")
@click.option("--api", type=click.Choice(["native", "libbpf"]), default="native", show_default=True,
              help="SDK header the skeleton includes when the guest included none before it: "
                   "wasm_bpf.h (native) or upstream's libbpf-wasm.h (libbpf).")
def skeleton(obj, output, name, api):
    """Skeleton header for PROG.bpf.o: NAME_bpf__open/load/attach/destroy,
    skel->progs, skel->maps, and skel->rodata / skel->data / skel->bss (and
    any .rodata.* / .data.* section) that patch the embedded object before
    load. With wasm_bpf.h, maps are fds and programs names; with upstream's
    libbpf-wasm.h (included first, or --api libbpf), they are struct bpf_map
    and struct bpf_program, as upstream's sources use them. Include with the
    SDK's directory on the include path (`wasm-bpf sdk --cflags`)."""
    from wasm_bpf_cli.gen.skeleton import default_name, generate_skeleton
    from wasm_bpf_cli.gen.source import load_bpf_object
    from wasm_bpf_cli.gen.wasm32_layout import c_identifier

    try:
        name = c_identifier(name) if name else default_name(obj)
        src = load_bpf_object(obj)
        text, warnings = generate_skeleton(
            src, name, _command_line("skeleton", os.path.basename(obj),
                                     "--api libbpf" if api == "libbpf" else ""), api)
        for w in warnings:
            click.echo(f"warning: {w}", err=True)
        _write(text, output)
    except WasmBpfError as err:
        fail(err)


@gen.command(context_settings=CONTEXT, short_help="wasm32 C types laid out as on the BPF side.")
@click.argument("args", nargs=-1, metavar="OBJ [TYPE]...")
@click.option("-o", "--output", metavar="FILE", help="Write the header here (default: stdout).")
@click.option("--header", metavar="FILE", type=click.Path(dir_okay=False),
              help="Read the types from this C header (compiled for the BPF target with -g) "
                   "instead of an object; then every argument is a TYPE.")
@click.option("--lang", type=click.Choice(["c", "go"]), default="c", show_default=True,
              help="c: a header for wasm32 C guests; go: a Go file for GOOS=wasip1 guests.")
@click.option("--package", "go_package", default="main", show_default=True, metavar="NAME",
              help="Go package of the --lang go output.")
def types(args, output, header, lang, go_package):
    """C definitions of PROG.bpf.o's types for wasm32, laid out exactly as on
    the BPF side, with _Static_asserts on every size and offset.

    \b
    TYPE: NAME, 'struct NAME', 'union NAME', 'enum NAME' or a typedef name.
    Default: the named structs/unions/enums used as types of global
    variables (.rodata, .data, .bss, ...) or as map keys/values, and what
    they embed by value. A type that cannot be reproduced is reported on
    stderr; naming it explicitly makes that an error (exit 1).

    \b
    --header FILE: the types FILE defines (a header shared by both sides,
    e.g. bootstrap.h), compiled after the vmlinux.h beside it if there is
    one, else after <linux/types.h> and <stdbool.h>.

    --lang go writes Go structs instead (GOARCH=wasm), with every size and
    offset checked at compile time; unions, bitfields and unaligned members
    become byte arrays of their size."""
    from wasm_bpf_cli.gen.source import load_bpf_object
    from wasm_bpf_cli.gen.types_header import generate_types

    if not header and not args:
        raise click.UsageError("missing OBJ (or --header FILE)")
    obj, types = (header, args) if header else (args[0], args[1:])
    try:
        declared = None
        if header:
            from wasm_bpf_cli.gen.header_btf import compile_header
            src, declared = compile_header(header)
        else:
            src = load_bpf_object(obj)
        names = [repr(t) if " " in t else t for t in types]
        source = f"--header {os.path.basename(obj)}" if header else os.path.basename(obj)
        if lang == "go":
            from wasm_bpf_cli.gen.types_go import generate_go_types

            lang_args = "--lang go" + (f" --package {go_package}" if go_package != "main" else "")
            result = generate_go_types(src, list(types), _command_line(
                "types", lang_args, source, *names), declared, go_package)
        else:
            result = generate_types(src, list(types), _command_line("types", source, *names), declared)
        _write(result.text, output)
    except WasmBpfError as err:
        fail(err)
    for problem in result.problems:
        click.echo(f"{'error' if types else 'warning'}: not reproducible: {problem}", err=True)
    if result.problems and types:
        sys.exit(1)
