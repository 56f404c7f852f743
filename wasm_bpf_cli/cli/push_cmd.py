"""`wasm-bpf push MODULE REF`: publish a module as a Wasm OCI artifact."""
import click

from wasm_bpf_cli.cli.errors import fail
from wasm_bpf_cli.cli.oci_options import EXIT_STATUS
from wasm_bpf_cli.errors import UsageError, WasmBpfError


@click.command(epilog=EXIT_STATUS)
@click.argument("module", type=click.Path(dir_okay=False), metavar="MODULE.wasm")
@click.argument("ref", metavar="REF")
@click.option("--title", help="org.opencontainers.image.title (default: the file name).")
@click.option("--description", help="org.opencontainers.image.description.")
@click.option("--source", help="org.opencontainers.image.source (e.g. the repository URL).")
@click.option("--version", "version_", metavar="VERSION", help="org.opencontainers.image.version.")
@click.option("--annotation", "annotations", multiple=True, metavar="KEY=VALUE",
              help="Another manifest annotation (repeatable).")
def push(module, ref, title, description, source, version_, annotations):
    """Push MODULE.wasm to REF (registry/repo:tag) in the CNCF Wasm OCI
    artifact layout, annotated with what `inspect` finds (programs and
    attach types, maps, host functions). Prints REF@DIGEST."""
    from wasm_bpf_cli.oci import push as oci_push

    try:
        extra = {}
        for item in annotations:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise UsageError(f"--annotation {item!r}: expected KEY=VALUE")
            extra[key] = value
        pushed = oci_push(module, ref, title=title, description=description, source=source,
                          version=version_, annotations=extra)
    except WasmBpfError as err:
        fail(err)
    click.echo(f"{pushed.reference}@{pushed.digest}")
