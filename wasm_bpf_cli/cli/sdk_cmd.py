"""`wasm-bpf sdk`: where the C SDK headers and the Go SDK module are, and how
to compile a guest."""
import click

from wasm_bpf_cli.sdk import GO_MODULE, SDK_GO, SDK_INCLUDE, guest_cflags


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--include", "what", flag_value="include", help="Print the SDK include directory.")
@click.option("--cflags", "what", flag_value="cflags", help="Print clang flags for a C guest.")
@click.option("--wit", "what", flag_value="wit",
              help="Print the directory of the WIT package wasm-bpf:processor (processor components).")
@click.option("--go", "what", flag_value="go", help="Print the directory of the Go SDK module "
              f"({GO_MODULE}).")
def sdk(what):
    """Print what to pass to clang to build a C guest with the SDK header
    wasm_bpf.h, or where the Go SDK module is, e.g.

    \b
      clang-14 $(wasm-bpf sdk --cflags) -o guest.wasm guest.c
      go mod edit -require=wasm-bpf.dev/wasmbpf@v0.0.0 -replace=wasm-bpf.dev/wasmbpf=$(wasm-bpf sdk --go)
      GOOS=wasip1 GOARCH=wasm go build -o guest.wasm .
    """
    if what == "include":
        click.echo(SDK_INCLUDE)
    elif what == "cflags":
        click.echo(" ".join(guest_cflags()))
    elif what == "wit":
        from wasm_bpf_cli.components import WIT_DIR

        click.echo(WIT_DIR)
    elif what == "go":
        click.echo(SDK_GO)
    else:
        click.echo(f"include: {SDK_INCLUDE}")
        click.echo(f"cflags:  {' '.join(guest_cflags())}")
        click.echo(f"go:      {SDK_GO} (module {GO_MODULE})")
