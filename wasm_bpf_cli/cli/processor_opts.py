"""`run`'s options for processor components: --with, --with-arg, --filter."""
import os

import click

from wasm_bpf_cli.errors import UsageError


def processor_options(command):
    """Add --with NAME=FILE, --with-arg NAME=ARG and --filter MAP=NAME."""
    command = click.option(
        "--filter", "filters", multiple=True, metavar="MAP=NAME",
        help="Run processor NAME on each sample of buffer map MAP before the guest's callback: "
             "`none` drops the sample (counted as dropped), `some` replaces it.")(command)
    command = click.option(
        "--with-arg", "with_args", multiple=True, metavar="NAME=ARG",
        help="An argument for processor NAME's init (repeatable, in order).")(command)
    command = click.option(
        "--with", "with_processors", multiple=True, metavar="NAME=FILE",
        help="Load processor component FILE (the wasm-bpf:processor world) as NAME, for the "
             "guest's wasm_bpf_call(\"NAME\", ...) and --filter (repeatable).")(command)
    return command


def _pairs(option: str, values, what: str):
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key or not value and what != "ARG":
            raise UsageError(f"{option} {item!r}: expected {what}")
        yield key, value


def processor_run_options(with_processors, with_args, filters) -> dict:
    """RunOptions keyword arguments for the three options."""
    processors = {}
    for name, path in _pairs("--with", with_processors, "NAME=FILE"):
        if name in processors:
            raise UsageError(f"--with {name}=...: processor {name!r} is given twice")
        if not os.path.isfile(path):
            raise UsageError(f"--with {name}={path}: no such file")
        processors[name] = path
    args = {}
    for name, arg in _pairs("--with-arg", with_args, "NAME=ARG"):
        args.setdefault(name, []).append(arg)
    maps = {}
    for map_name, name in _pairs("--filter", filters, "MAP=NAME"):
        if map_name in maps:
            raise UsageError(f"--filter {map_name}=...: buffer {map_name!r} has a filter already")
        maps[map_name] = name
    return {"processors": processors, "processor_args": args, "filters": maps}
