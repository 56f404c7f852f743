"""`wasm-bpf login REGISTRY` / `wasm-bpf logout REGISTRY`: credentials in the
docker config file ($DOCKER_CONFIG/config.json, default ~/.docker/config.json)."""
import sys

import click

from wasm_bpf_cli.cli.errors import fail
from wasm_bpf_cli.errors import UsageError, WasmBpfError


@click.command(epilog="Exit status: 0 logged in; 1 the registry refused the credentials or "
                      "cannot be reached (nothing is written); 2 usage error.")
@click.argument("registry")
@click.option("-u", "--username", required=True, help="User name.")
@click.option("-p", "--password", help="Password (prefer --password-stdin: argv is visible to others).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def login(registry, username, password, password_stdin):
    """Check USER's credentials against REGISTRY, then store them in the
    docker config file (read by docker, podman, oras, cosign)."""
    from wasm_bpf_cli.oci import login as oci_login

    try:
        if password_stdin:
            if password is not None:
                raise UsageError("--password and --password-stdin exclude each other")
            password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("no password: give --password-stdin (or --password)")
        path = oci_login(registry, username, password)
    except WasmBpfError as err:
        fail(err)
    host = registry.split("://", 1)[-1].rstrip("/")
    click.echo(f"logged in to {host} as {username} (credentials in {path})", err=True)


@click.command()
@click.argument("registry")
def logout(registry):
    """Remove REGISTRY's credentials from the docker config file."""
    from wasm_bpf_cli.oci import logout as oci_logout

    try:
        removed = oci_logout(registry)
    except WasmBpfError as err:
        fail(err)
    host = registry.split("://", 1)[-1].rstrip("/")
    click.echo(f"logged out of {host}" if removed else f"not logged in to {host}", err=True)
