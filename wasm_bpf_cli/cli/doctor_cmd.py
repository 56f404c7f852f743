"""`wasm-bpf doctor`: what this machine can run, with a fix for each failing row.

Exit status: 0 when everything needed to run guests is in place, 1 otherwise.
"""
import json
import sys

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document to stdout.")
def doctor(as_json):
    """Check privileges, kernel features, libbpf and engines; explain each failure."""
    from wasm_bpf_cli.doctor import report, run_checks

    checks = run_checks()
    doc = report(checks)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        sys.exit(0 if doc["ok"] else 1)
    from wasm_bpf_cli.cli.output import closed_stdout_is_quiet

    with closed_stdout_is_quiet():
        render(checks, doc["ok"])
    sys.exit(0 if doc["ok"] else 1)


def render(checks, ok) -> None:
    from rich.markup import escape
    from rich.table import Table

    from wasm_bpf_cli.cli.output import stdout_console

    console = stdout_console()
    table = Table(show_lines=False)
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail")
    table.add_column("fix")
    for c in checks:
        status = "[green]ok[/green]" if c.ok else ("[red]FAIL[/red]" if c.required else "[yellow]warn[/yellow]")
        table.add_row(escape(c.name), status, escape(c.detail), escape(c.fix))
    console.print(table)
    if ok:
        console.print("This machine can run wasm-bpf guests.")
    else:
        console.print("[red]This machine cannot run wasm-bpf guests yet:[/red] apply the fixes above.")
