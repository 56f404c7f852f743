"""`wasm-bpf sign --key KEY REF`: a cosign-format signature in the registry."""
import click

from wasm_bpf_cli.cli.errors import fail
from wasm_bpf_cli.cli.oci_options import EXIT_STATUS
from wasm_bpf_cli.errors import WasmBpfError


@click.command(epilog=EXIT_STATUS)
@click.option("--key", "key", required=True, type=click.Path(dir_okay=False), metavar="KEY",
              help="PEM ECDSA P-256 private key (PKCS#8 or SEC1; if encrypted, the password "
                   "comes from COSIGN_PASSWORD).")
@click.argument("ref", metavar="REF")
def sign(key, ref):
    """Sign the image REF in its registry as `cosign sign --key` does: a
    simple-signing payload naming the manifest digest, ECDSA P-256 over it,
    under the tag sha256-<digest>.sig. `cosign verify --key` accepts it.
    Prints the signature's reference."""
    from wasm_bpf_cli.oci import sign as oci_sign

    try:
        signed = oci_sign(ref, key)
    except WasmBpfError as err:
        fail(err)
    click.echo(signed.signature_ref)
