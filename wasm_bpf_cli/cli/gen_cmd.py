"""`wasm-bpf gen skeleton|types`: C headers for wasm32 guests from a BPF object."""
import os
import sys

import click

from wasm_bpf_cli.cli.errors import fail
from wasm_bpf_cli.errors import WasmBpfError

CONTEXT = {"help_option_names": ["-h", "--help"]}


def _write(text: str, output: str) -> None:
    if output in (None, "-"):
        click.echo(text, nl=False)
        return
    tmp = output + ".tmp"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, output)
    except OSError as exc:
        raise WasmBpfError(f"{output}: {exc.strerror or exc}") from None


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
def skeleton(obj, output, name):
    """Skeleton header for PROG.bpf.o: NAME_bpf__open/load/attach/destroy,
    skel->progs, skel->maps, and skel->rodata / skel->data that patch the
    embedded object before load. Include after wasm_bpf.h's directory is
    on the include path (`wasm-bpf sdk --cflags`)."""
    from wasm_bpf_cli.gen.skeleton import default_name, generate_skeleton
    from wasm_bpf_cli.gen.source import load_bpf_object
    from wasm_bpf_cli.gen.wasm32_layout import c_identifier

    try:
        name = c_identifier(name) if name else default_name(obj)
        src = load_bpf_object(obj)
        text, warnings = generate_skeleton(
            src, name, _command_line("skeleton", os.path.basename(obj)))
        for w in warnings:
            click.echo(f"warning: {w}", err=True)
        _write(text, output)
    except WasmBpfError as err:
        fail(err)


@gen.command(context_settings=CONTEXT, short_help="wasm32 C types laid out as on the BPF side.")
@click.argument("obj", type=click.Path(dir_okay=False))
@click.argument("types", nargs=-1, metavar="[TYPE]...")
@click.option("-o", "--output", metavar="FILE", help="Write the header here (default: stdout).")
@click.option("--lang", type=click.Choice(["c", "go"]), default="c", show_default=True,
              help="c: a header for wasm32 C guests; go: a Go file for GOOS=wasip1 guests.")
@click.option("--package", "go_package", default="main", show_default=True, metavar="NAME",
              help="Go package of the --lang go output.")
def types(obj, types, output, lang, go_package):
    """C definitions of PROG.bpf.o's types for wasm32, laid out exactly as on
    the BPF side, with _Static_asserts on every size and offset.

    \b
    TYPE: NAME, 'struct NAME', 'union NAME', 'enum NAME' or a typedef name.
    Default: the named structs/unions/enums used as types of global
    variables (.rodata, .data, .bss, ...) or as map keys/values, and what
    they embed by value. A type that cannot be reproduced is reported on
    stderr; naming it explicitly makes that an error (exit 1).

    --lang go writes Go structs instead (GOARCH=wasm), with every size and
    offset checked at compile time; unions, bitfields and unaligned members
    become byte arrays of their size."""
    from wasm_bpf_cli.gen.source import load_bpf_object
    from wasm_bpf_cli.gen.types_header import generate_types

    try:
        src = load_bpf_object(obj)
        names = [repr(t) if " " in t else t for t in types]
        if lang == "go":
            from wasm_bpf_cli.gen.types_go import generate_go_types

            extra = ["--lang", "go"] + (["--package", go_package] if go_package != "main" else [])
            result = generate_go_types(src, list(types), _command_line(
                "types", *extra, os.path.basename(obj), *names), go_package)
        else:
            result = generate_types(src, list(types), _command_line(
                "types", os.path.basename(obj), *names))
        _write(result.text, output)
    except WasmBpfError as err:
        fail(err)
    for problem in result.problems:
        click.echo(f"{'error' if types else 'warning'}: not reproducible: {problem}", err=True)
    if result.problems and types:
        sys.exit(1)
