"""`wasm-bpf sdk`: where the C SDK headers and the Go SDK module are, and how
to compile a guest."""
import os

import click

SDK_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sdk")
SDK_INCLUDE = os.path.join(SDK_DIR, "include")
# the Go module wasm-bpf.dev/wasmbpf (standard library only)
SDK_GO = os.path.join(SDK_DIR, "go", "wasmbpf")
GO_MODULE = "wasm-bpf.dev/wasmbpf"
GUEST_CFLAGS = ["--target=wasm32-wasi", "--sysroot=/usr", "-O2"]
GUEST_LDFLAGS = ["-Wl,--allow-undefined,--export-table"]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--include", "what", flag_value="include", help="Print the SDK include directory.")
@click.option("--cflags", "what", flag_value="cflags", help="Print clang flags for a C guest.")
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
        click.echo(" ".join(GUEST_CFLAGS + [f"-I{SDK_INCLUDE}"] + GUEST_LDFLAGS))
    elif what == "go":
        click.echo(SDK_GO)
    else:
        click.echo(f"include: {SDK_INCLUDE}")
        click.echo(f"cflags:  {' '.join(GUEST_CFLAGS + [f'-I{SDK_INCLUDE}'] + GUEST_LDFLAGS)}")
        click.echo(f"go:      {SDK_GO} (module {GO_MODULE})")
