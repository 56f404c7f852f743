"""`wasm-bpf inspect MODULE`: what is inside a wasm-bpf module or BPF object.

Exit status:
  0  the module is runnable here (or the input is a plain BPF object)
  1  the input cannot be read (missing, not wasm/ELF, corrupt); one line on stderr
  2  usage error
  3  the module is readable but this runner cannot run it (see the problems),
     or the policy (--policy FILE, --allow, --deny) would deny it,
     or it is a component that does not fit the processor world
  141 stdout was closed before everything was written (`| head -1`): quiet,
     as SIGPIPE ends a native tool
Output that is not a terminal is never cut to a width: names stay whole in
`| grep` and `| cat`.
"""
from __future__ import annotations  # rich types in annotations stay unimported

import json
import sys
from typing import Dict, List, Optional

import click

from wasm_bpf_cli.abi.signatures import DEFAULT_CALLBACK_EXPORT, DEFAULT_WRAPPER_MODULE
from wasm_bpf_cli.cli.oci_options import pull_option
from wasm_bpf_cli.errors import WasmBpfError

EXIT_NOT_RUNNABLE = 3


@click.command()
@click.argument("module", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document to stdout.")
@click.option("--wrapper-module-name", default=DEFAULT_WRAPPER_MODULE, show_default=True,
              help="Module of the Go/TinyGo callback variant of wasm_bpf_buffer_poll.")
@click.option("--callback-export-name", default=DEFAULT_CALLBACK_EXPORT, show_default=True,
              help="Export that receives samples in the callback variant.")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also say whether this TOML policy (as for `run --policy`) would allow the module.")
@click.option("--allow", multiple=True, metavar="TYPE",
              help="As for `run`: only programs of this type or group are allowed (repeatable).")
@click.option("--deny", multiple=True, metavar="TYPE",
              help="As for `run`: programs of this type or group are denied (repeatable).")
@pull_option
def inspect(module, as_json, wrapper_module_name, callback_export_name, policy_file, allow, deny, pull_mode):
    """Show what is inside MODULE (a .wasm guest, a processor component or a .bpf.o object), or
    in the image REF (registry/repo:tag; pulled into the local store).

    Exit status: 0 runnable (or a plain BPF object); 3 the module is readable
    but this runner cannot run it, or the policy denies it; 1 the input cannot
    be read; 2 usage error; 141 stdout was closed early (`| head`), quietly.
    """
    from wasm_bpf_cli.cli.output import closed_stdout_is_quiet

    try:
        policy = None
        if policy_file is not None or allow or deny:
            from wasm_bpf_cli.policy import Policy

            policy = Policy.load(policy_file) if policy_file is not None else Policy()
            policy = policy.merged(allow=allow, deny=deny)
        report = _inspect(module, wrapper_module_name, callback_export_name, pull_mode, policy)
        if policy is not None:
            report["policy"] = policy.check_report(report)
    except WasmBpfError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    with closed_stdout_is_quiet():
        if as_json:
            click.echo(json.dumps(report, indent=2))
        else:
            render(report)
    if report["verdict"]["runnable"] is False or report.get("policy", {}).get("allowed") is False:
        sys.exit(EXIT_NOT_RUNNABLE)


def _inspect(module, wrapper_module_name, callback_export_name, pull_mode, policy) -> Dict:
    import os

    from wasm_bpf_cli.inspect import inspect_bytes, inspect_path
    from wasm_bpf_cli.oci.reference import is_reference

    if is_reference(module) and not os.path.exists(module):
        from wasm_bpf_cli.oci import load_module

        _, wasm = load_module(module, pull_mode, policy)
        return inspect_bytes(wasm, module, wrapper_module_name, callback_export_name)
    return inspect_path(module, wrapper_module_name, callback_export_name)


# --- human output (rich is imported only when rendering) ---


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _sig(entry: Dict) -> str:
    if entry.get("params") is None:
        return entry["kind"]
    return f"({', '.join(entry['params'])}) -> ({', '.join(entry['results'])})"


def _opt(value) -> str:
    return "-" if value is None else _escape(str(value))


def _hex(value: Optional[int]) -> str:
    return "-" if value is None else f"0x{value:x}"


def render(report: Dict) -> None:
    """Print the report for people: rich tables and trees on stdout."""
    from wasm_bpf_cli.cli.output import stdout_console

    console = stdout_console()
    kinds = {"wasm": "wasm module", "bpf": "BPF object", "component": "wasm component"}
    console.print(f"[bold]{_escape(report['path'])}[/bold]: {kinds[report['kind']]}, {report['size']} bytes")
    if "policy" in report:  # the answer to the question asked, before the details
        _policy(console, report["policy"])
    if report["kind"] == "component":
        _component(console, report)
    if report["kind"] == "wasm":
        _module(console, report)
        _verdict(console, report["verdict"])
    for i, obj in enumerate(report["objects"]):
        _object(console, i, obj)
    if report["kind"] == "wasm" and not report["objects"]:
        console.print("No embedded BPF objects found in the data segments.")


def _module(console: Console, report: Dict) -> None:
    mem = report["memory"]
    from rich.table import Table

    info = Table(title="Module", show_header=False)
    info.add_column("key")
    info.add_column("value")
    if mem:
        info.add_row("memory", f"{mem['min_pages']} pages min, "
                     f"{'no max' if mem['max_pages'] is None else str(mem['max_pages']) + ' max'}"
                     f"{', imported' if mem['imported'] else ''}")
    else:
        info.add_row("memory", "none")
    info.add_row("__indirect_function_table exported", "yes" if report["table_exported"] else "no")
    info.add_row("data segments", str(len(report["data_segments"])))
    if report["custom_sections"]:
        info.add_row("custom sections", _escape(", ".join(report["custom_sections"])))
    console.print(info)

    from rich.tree import Tree

    imports = Tree("[bold]Imports[/bold]" if report["imports"] else "[bold]Imports[/bold]: none")
    for module, entries in report["imports"].items():
        branch = imports.add(f"{_escape(module)} ({len(entries)})")
        for e in entries:
            branch.add(f"{_escape(e['name'])} {_sig(e)}")
    console.print(imports)

    _table(console, "Exports", ["name", "kind", "signature"],
           [[e["name"], e["kind"], _sig(e) if e["kind"] == "func" else ""]
            for e in report["exports"]])


def _component(console: Console, report: Dict) -> None:
    """Its world as WIT, and whether `run --with` takes it."""
    world = report["world"]
    console.print("world (as the component declares it) {", highlight=False)
    for name in world["imports"]:
        console.print(f"  import {_escape(name)};", highlight=False, soft_wrap=True)
    for name, wit in world["exports"].items():
        console.print(f"  export {_escape(name)}: {_escape(wit)};", highlight=False, soft_wrap=True)
    console.print("}", highlight=False)
    if world["fits"]:
        console.print(f"[bold green]A processor[/bold green]: fits {world['fits']} "
                      "(`wasm-bpf run --with NAME=FILE`)")
    else:
        console.print("[bold red]Not a processor[/bold red]:")
        for p in report["verdict"]["problems"]:
            console.print(f"  - {_escape(p)}", soft_wrap=True)


def _verdict(console: Console, verdict: Dict) -> None:
    if verdict["runnable"]:
        route = verdict["callback_route"]
        console.print("[bold green]Runnable[/bold green]: every import is provided"
                      + (f"; samples are delivered via the {route} route" if route else ""))
    else:
        console.print("[bold red]Not runnable[/bold red]:")
        for p in verdict["problems"]:
            console.print(f"  - {_escape(p)}", soft_wrap=True)  # one problem, one line
    for w in verdict["warnings"]:
        console.print(f"[yellow]warning[/yellow]: {_escape(w)}", soft_wrap=True)


def _policy(console: Console, verdict: Dict) -> None:
    if verdict["allowed"]:
        console.print("[bold green]Allowed by the policy[/bold green]")
        return
    console.print("[bold red]Denied by the policy[/bold red]:")
    for v in verdict["violations"]:
        console.print(f"  - {_escape(v)}", soft_wrap=True)


def _object(console: Console, index: int, obj: Dict) -> None:
    where = f"offset {_hex(obj['offset'])}, {obj['size']} bytes"
    if obj.get("address") is not None:
        where += f", memory address {_hex(obj['address'])}"
    from rich.tree import Tree

    tree = Tree(f"[bold]BPF object {index}[/bold] ({where})")
    if obj.get("error"):
        tree.add(f"[red]unreadable[/red]: {_escape(obj['error'])}")
        console.print(tree)
        return
    tree.add(f"license: {_opt(obj['license'])}")
    tree.add(f"BTF: {'yes' if obj['has_btf'] else 'no'}, .BTF.ext: "
             f"{'yes' if obj['has_btf_ext'] else 'no'}, CO-RE relocations: {obj['core_relocations']}")
    console.print(tree)
    _table(console, "Programs", ["name", "section", "type", "attach type", "attach target"],
           [[p["name"], p["section"], p["prog_type"], p["expected_attach_type"], p["attach_target"]]
            for p in obj["programs"]])
    _table(console, "Maps", ["name", "type", "key", "value", "max entries", "flags"],
           [[m["name"], m["type"], _kv(m["key_size"], m["key_type"]),
             _kv(m["value_size"], m["value_type"]), m["max_entries"], _hex(m["flags"])]
            for m in obj["maps"]])
    _table(console, "Globals", ["section", "name", "type", "size", "offset", "initial"],
           [[g["section"], g["name"], g["type"], g["size"], _hex(g["offset"]), g["initial"]]
            for g in obj["globals"]])


def _kv(size: int, ctype: Optional[str]) -> str:
    return f"{size} ({ctype})" if ctype else str(size)


def _table(console: Console, title: str, columns: List[str], rows: List[List]) -> None:
    if not rows:
        console.print(f"{title}: none")
        return
    from rich.table import Table

    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for row in rows:
        table.add_row(*[_opt(v) for v in row])
    console.print(table)
