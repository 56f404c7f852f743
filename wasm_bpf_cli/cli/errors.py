"""The one place the CLI turns an error into a message and an exit status
(and writes output files whole, or reports why it could not)."""
import os
import sys

import click

from wasm_bpf_cli.errors import WasmBpfError


def fail(err: WasmBpfError) -> "NoReturn":  # noqa: F821
    """Print `error: <one line>` on stderr and exit with the error's status."""
    message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    click.echo(f"error: {message}", err=True)
    sys.exit(err.exit_code)


def write_whole(path: str, data: bytes) -> None:
    """Write `path` through a temporary file and a rename: a reader never
    sees half of it. WasmBpfError (one line) if it cannot be written."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise WasmBpfError(f"{path}: cannot write: {exc.strerror or exc}") from None
