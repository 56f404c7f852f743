"""`wasm-bpf new NAME`: write a guest that builds with `make` and runs with
`wasm-bpf run NAME.wasm`.

Exit status: 0 written; 1 the directory exists or cannot be written; 2 usage
error (bad name, unknown template).
"""
import os

import click

from wasm_bpf_cli.cli.errors import fail
from wasm_bpf_cli.errors import WasmBpfError
from wasm_bpf_cli.scaffold import DEFAULT_TEMPLATE, DESCRIPTIONS, create, templates

TEMPLATE_HELP = " ".join(f"{name}: {DESCRIPTIONS[name]}." for name in templates())


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("name")
@click.option("-t", "--template", default=DEFAULT_TEMPLATE, show_default=True, metavar="TEMPLATE",
              help=f"What the guest does. {TEMPLATE_HELP}")
@click.option("-d", "--dir", "directory", metavar="DIR",
              help="Write the guest here (must not exist; default: ./NAME).")
def new(name, template, directory):
    """Write a new guest NAME into ./NAME: NAME.bpf.c (kernel half), NAME.c
    (user half), a Makefile (vmlinux.h, clang, `wasm-bpf gen skeleton`,
    `wasm-bpf sdk`) and a README.

    \b
      wasm-bpf new opentrace && cd opentrace && make
      sudo wasm-bpf run opentrace.wasm
    """
    directory = directory or name
    try:
        written = create(template, name, directory)
    except WasmBpfError as err:
        fail(err)
    click.echo(f"created {os.path.join(directory, '')} from the {template} template: {' '.join(written)}")
    click.echo(f"next: cd {directory} && make && sudo wasm-bpf run {name}.wasm")
