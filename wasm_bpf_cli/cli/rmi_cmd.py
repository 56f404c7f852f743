"""`wasm-bpf rmi REF`: remove an image from the local store."""
import click

from wasm_bpf_cli.cli.errors import fail
from wasm_bpf_cli.errors import WasmBpfError


@click.command()
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
def rmi(refs):
    """Remove each REF from the local store, and the blobs no remaining
    image needs. Exit status 1 if one was not in the store, 2 if one is not
    a valid reference."""
    from wasm_bpf_cli.oci import Store, parse

    store = Store()
    try:
        names = [str(parse(ref)) for ref in refs]
        with store.locked():
            missing = [name for name in names if not store.remove_ref(name)]
            store.collect()
    except WasmBpfError as err:
        fail(err)
    for name in names:
        if name not in missing:
            click.echo(f"removed {name}")
    if missing:
        fail(WasmBpfError(f"{missing[0]}: not in the local image store"))
