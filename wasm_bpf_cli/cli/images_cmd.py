"""`wasm-bpf images`: what the local image store holds."""
import json
import time

import click


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document to stdout.")
def images(as_json):
    """List the images in the local store: reference, digest, size, age,
    whether a cosign signature is stored with it."""
    from wasm_bpf_cli.oci import Store

    store = Store()
    now = time.time()
    rows = [{"reference": ref, "digest": rec.digest, "size": rec.size, "pulled": rec.pulled,
             "signed": store.get_signature(rec.digest) is not None} for ref, rec in store.refs()]
    if as_json:
        click.echo(json.dumps({"store": store.root, "images": rows}, indent=2))
        return
    if not rows:
        click.echo(f"no images in {store.root}", err=True)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("REFERENCE", "DIGEST", "SIZE", "PULLED", "SIGNED"):
        table.add_column(column, no_wrap=column != "REFERENCE")
    for row in rows:
        table.add_row(row["reference"], row["digest"][:19], str(row["size"]), _age(now - row["pulled"]),
                      "yes" if row["signed"] else "no")
    Console(highlight=False, soft_wrap=True).print(table)
