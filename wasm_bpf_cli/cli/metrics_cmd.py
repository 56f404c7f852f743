"""`wasm-bpf metrics embed|show|check`: a module's metrics config."""
import os

import click

from wasm_bpf_cli.cli.errors import fail, write_whole
from wasm_bpf_cli.errors import ModuleError, WasmBpfError

CONTEXT = {"help_option_names": ["-h", "--help"]}


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        raise ModuleError(f"{path}: cannot read: {err.strerror or err}") from None


@click.group(context_settings=CONTEXT)
def metrics():
    """A module's Prometheus metrics config (what `run --metrics` exports).

    \b
    The config is TOML: [[counter]], [[gauge]] and [[histogram]] tables that
    name a map of the guest's BPF objects, labels decoded from its key
    members and the value to export (README: "Metrics")."""


@metrics.command(context_settings=CONTEXT, short_help="Put a config into a module (custom section).")
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("module", type=click.Path(dir_okay=False), metavar="MODULE.wasm")
@click.option("-o", "--output", metavar="FILE", help="Write the module here (default: MODULE.wasm in place).")
def embed(config, module, output):
    """Check CONFIG against MODULE.wasm's BPF objects and write it into the
    module's `wasm-bpf.metrics` custom section (replacing any), so that
    `wasm-bpf run --metrics ADDR:PORT MODULE.wasm` exports it with no
    --metrics-config. The module runs as before on any runtime."""
    from wasm_bpf_cli.metrics import check, embed as embed_config, load_config

    try:
        wasm = _read(module)
        cfg = load_config(config)
        check(wasm, cfg)
        with open(config, "rb") as f:
            text = f.read()
        out = embed_config(wasm, text)
        target = output or module
        write_whole(target, out)
    except WasmBpfError as err:
        fail(err)
    click.echo(f"{target}: {len(cfg.metrics)} metrics from {os.path.basename(config)} embedded", err=True)


@metrics.command(context_settings=CONTEXT, short_help="Print the config embedded in a module.")
@click.argument("module", type=click.Path(dir_okay=False), metavar="MODULE.wasm")
def show(module):
    """Print the metrics config embedded in MODULE.wasm (exit 3 if it has none)."""
    from wasm_bpf_cli.metrics.section import embedded_text

    try:
        text = embedded_text(_read(module))
    except WasmBpfError as err:
        fail(err)
    if text is None:
        click.echo(f"{module}: no embedded metrics config", err=True)
        raise SystemExit(3)
    click.echo(text.decode("utf-8", "replace"), nl=False)


@metrics.command(context_settings=CONTEXT, short_help="Check a config against a module.")
@click.argument("module", type=click.Path(dir_okay=False), metavar="MODULE.wasm")
@click.option("--config", "config", type=click.Path(dir_okay=False), metavar="FILE",
              help="The config to check (default: the module's embedded one).")
def check(module, config):
    """Check that a config fits MODULE.wasm's maps and their BTF types
    (what `run --metrics` checks at start), and list the metrics."""
    from wasm_bpf_cli.metrics import check as check_config

    try:
        wasm = _read(module)
        plans = check_config(wasm, config)
    except WasmBpfError as err:
        fail(err)
    if not plans:
        click.echo(f"{module}: no metrics config (give --config FILE)", err=True)
        raise SystemExit(3)
    for plan in plans:
        spec = plan.spec
        labels = ", ".join(f"{label.name}={label.decoder}" for label, _f in plan.labels)
        click.echo(f"{spec.kind:9} {spec.name}  map {spec.map}" + (f"  labels {labels}" if labels else ""))
