"""`wasm-bpf sdk`: where the C SDK headers are and how to compile a guest."""
import click

from wasm_bpf_cli.sdk import SDK_INCLUDE, guest_cflags


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
        click.echo(" ".join(guest_cflags()))
    else:
        click.echo(f"include: {SDK_INCLUDE}")
        click.echo(f"cflags:  {' '.join(guest_cflags())}")
