"""`wasm-bpf sdk`: where the C SDK headers are and how to compile a guest."""
import os

import click

SDK_INCLUDE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sdk", "include")
GUEST_CFLAGS = ["--target=wasm32-wasi", "--sysroot=/usr", "-O2"]
GUEST_LDFLAGS = ["-Wl,--allow-undefined,--export-table"]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--include", "what", flag_value="include", help="Print the SDK include directory.")
@click.option("--cflags", "what", flag_value="cflags", help="Print clang flags for a C guest.")
def sdk(what):
    """Print what to pass to clang to build a C guest with the SDK header
    wasm_bpf.h, e.g.

    \b
      clang-14 $(wasm-bpf sdk --cflags) -o guest.wasm guest.c
    """
    if what == "include":
        click.echo(SDK_INCLUDE)
    elif what == "cflags":
        click.echo(" ".join(GUEST_CFLAGS + [f"-I{SDK_INCLUDE}"] + GUEST_LDFLAGS))
    else:
        click.echo(f"include: {SDK_INCLUDE}")
        click.echo(f"cflags:  {' '.join(GUEST_CFLAGS + [f'-I{SDK_INCLUDE}'] + GUEST_LDFLAGS)}")
