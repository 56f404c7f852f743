"""`wasm-bpf pull REF`: fetch an image into the local store, checked."""
import click

from wasm_bpf_cli.cli.errors import fail
from wasm_bpf_cli.cli.oci_options import EXIT_STATUS, verify_key_option, with_verify_keys
from wasm_bpf_cli.errors import WasmBpfError


@click.command(epilog=EXIT_STATUS)
@click.argument("ref", metavar="REF")
@verify_key_option
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="A policy file: its trusted_keys, require_signature and allowed_images apply.")
@click.option("--missing", is_flag=True, help="Do nothing if the image is already in the store.")
def pull(ref, verify_keys, policy_file, missing):
    """Pull REF (registry/repo:tag or registry/repo@sha256:...) into the local
    store; print REF@DIGEST. Digests, size, wasm magic and, when keys are
    given, the cosign signature are checked before anything is stored."""
    from wasm_bpf_cli.oci import Trust, pull as oci_pull

    try:
        policy = None
        if policy_file is not None:
            from wasm_bpf_cli.policy import Policy

            policy = Policy.load(policy_file)
        trust = Trust.of(with_verify_keys(policy, verify_keys))
        image = oci_pull(ref, "missing" if missing else "always", trust)
    except WasmBpfError as err:
        fail(err)
    click.echo(f"{image.reference.split('@')[0]}@{image.digest}")
    if image.signed_by:
        click.echo(f"signature verified with {image.signed_by}", err=True)
    elif trust.keys:  # trusted_keys without require_signature: allowed, said
        click.echo(f"warning: {image.reference} is not signed", err=True)
