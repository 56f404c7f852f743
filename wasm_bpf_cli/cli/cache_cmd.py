"""`wasm-bpf cache`: where the compiled-module cache is, what it holds, and
clearing it.

Exit status: 0; 1 when the directory is not this user's own (the runner
does not use it, and --clear does not touch it); 2 usage error (e.g. a bad
$WASM_BPF_CACHE_MAX_SIZE).
"""
import json
import sys

import click

from wasm_bpf_cli.cli.errors import fail
from wasm_bpf_cli.errors import UsageError, WasmBpfError


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


@click.command()
@click.option("--cache-dir", type=click.Path(file_okay=False), metavar="DIR",
              help="The cache directory (default: $WASM_BPF_CACHE_DIR, else "
                   "$XDG_CACHE_HOME/wasm-bpf or ~/.cache/wasm-bpf).")
@click.option("--clear", is_flag=True, help="Delete every entry.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document to stdout.")
def cache(cache_dir, clear, as_json):
    """Show the compiled-module cache (directory, entries, size and its
    bound), or clear it. Entries beyond the bound ($WASM_BPF_CACHE_MAX_SIZE,
    default 256M) are evicted least recently used first."""
    from wasm_bpf_cli.engines.module_cache import ModuleCache

    try:
        store = ModuleCache(cache_dir)
    except ValueError as err:
        fail(UsageError(str(err)))
    problem = store.private()
    if problem == "does not exist":
        problem = None  # nothing cached yet: an empty cache
    if problem is not None and clear:
        fail(WasmBpfError(f"{store.directory}: not used and not cleared: {problem}"))
    removed = freed = 0
    if clear:
        removed, freed = store.clear()
    entries = store.entries() if problem is None else []
    size = sum(e.size for e in entries)
    if as_json:
        doc = {"directory": store.directory, "entries": len(entries), "bytes": size,
               "max_bytes": store.max_size, "problem": problem}
        if clear:
            doc.update(removed=removed, freed_bytes=freed)
        click.echo(json.dumps(doc, indent=2))
    elif clear:
        click.echo(f"removed {removed} entries ({_mib(freed)}) from {store.directory}")
    else:
        click.echo(f"directory: {store.directory}")
        if problem is not None:
            click.echo(f"not used: {problem}")
        click.echo(f"entries: {len(entries)}")
        click.echo(f"size: {_mib(size)} of at most {_mib(store.max_size)}")
    sys.exit(1 if problem is not None else 0)
