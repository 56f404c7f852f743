"""The one place the CLI turns an error into a message and an exit status."""
import sys

import click

from wasm_bpf_cli.errors import WasmBpfError


def fail(err: WasmBpfError) -> "NoReturn":  # noqa: F821
    """Print `error: <one line>` on stderr and exit with the error's status."""
    message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    click.echo(f"error: {message}", err=True)
    sys.exit(err.exit_code)
