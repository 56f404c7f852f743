"""The `wasm-bpf` command group. Subcommands live in their own modules and are
imported only when invoked, so `wasm-bpf --help` stays fast."""
import importlib
import sys

import click

# name -> (module, attribute, one-line help shown by `wasm-bpf --help`)
COMMANDS = {
    "run": ("wasm_bpf_cli.cli.run_cmd", "run", "Run a wasm-bpf guest module on the real kernel."),
    "new": ("wasm_bpf_cli.cli.new_cmd", "new", "Write a new guest (kernel and user half, Makefile) from a template."),
    "inspect": ("wasm_bpf_cli.cli.inspect_cmd", "inspect", "Show what is inside a module or BPF object."),
    "sdk": ("wasm_bpf_cli.cli.sdk_cmd", "sdk", "Print compiler flags for building C guests."),
    "gen": ("wasm_bpf_cli.cli.gen_cmd", "gen", "Generate skeleton headers and C types from a BPF object."),
    "doctor": ("wasm_bpf_cli.cli.doctor_cmd", "doctor", "Check what this machine can run."),
    "metrics": ("wasm_bpf_cli.cli.metrics_cmd", "metrics", "Embed, show or check a module's metrics config."),
    "cache": ("wasm_bpf_cli.cli.cache_cmd", "cache", "Show or clear the compiled-module cache."),
    # OCI registries (wasm_bpf_cli/oci)
    "pull": ("wasm_bpf_cli.cli.pull_cmd", "pull", "Pull an image (a guest) from a registry into the local store."),
    "push": ("wasm_bpf_cli.cli.push_cmd", "push", "Push a module to a registry as a Wasm OCI artifact."),
    "images": ("wasm_bpf_cli.cli.images_cmd", "images", "List the images in the local store."),
    "rmi": ("wasm_bpf_cli.cli.rmi_cmd", "rmi", "Remove images from the local store."),
    "login": ("wasm_bpf_cli.cli.login_cmd", "login", "Store credentials for a registry."),
    "logout": ("wasm_bpf_cli.cli.login_cmd", "logout", "Remove the credentials of a registry."),
    "sign": ("wasm_bpf_cli.cli.sign_cmd", "sign", "Sign an image in its registry (cosign format)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        module, attr, _ = entry
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _print_version(ctx, _param, value):
    if not value or ctx.resilient_parsing:
        return
    from wasm_bpf_cli.version import version_report

    click.echo(version_report())
    ctx.exit(0)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version, help="Show the version and the engines available.")
def cli():
    """Run WebAssembly eBPF programs (wasm-bpf guests).

    A guest is a wasm32-wasi module that embeds eBPF objects and uses the
    wasm_bpf host functions to load, attach and poll them.
    """


def main(argv=None):
    try:
        cli.main(args=argv, prog_name="wasm-bpf", standalone_mode=True)
    except KeyboardInterrupt:  # Ctrl-C outside a run (e.g. while parsing)
        sys.exit(130)
