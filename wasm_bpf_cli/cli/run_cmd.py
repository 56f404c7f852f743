"""`wasm-bpf run`: argument parsing, signals and the terminal UI around the
public Runner API."""
import logging
import math
import os
import signal
import sys
import threading

import click

from wasm_bpf_cli.cli.errors import fail
from wasm_bpf_cli.cli.processor_opts import processor_options, processor_run_options
from wasm_bpf_cli.cli.oci_options import pull_option, verify_key_option, with_verify_keys
from wasm_bpf_cli.errors import UsageError, WasmBpfError

EPILOG = """\b
Exit status:
  N    the guest's own exit status (proc_exit, or main's return), its low
       8 bits as for a native program (-1 -> 255, 256 -> 0), also when the
       guest exits by itself after a stop
  1    runner error (message on stderr), or the guest trapped
  2    usage error
  124  --duration elapsed and the guest had to be interrupted
  130  Ctrl-C and the guest had to be interrupted
  141  the reader of stdout/stderr went away (`| head -1`) and the guest
       had to be interrupted
  143  SIGTERM and the guest had to be interrupted

\b
Stopping: Ctrl-C, SIGTERM or --duration make the guest's pending or next
wasm_bpf_buffer_poll return -EINTR; a guest that does not return within
--grace-period is interrupted (wasmtime: in place, by epoch interruption;
wasmer cannot interrupt wasm code: its BPF objects are destroyed and the
guest abandoned). A second Ctrl-C stops at once. Every link, poller and BPF
object the guest opened is destroyed before exit.
"""


def _parse_env(values):
    env = []
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--env {item!r}: expected KEY=VALUE")
        env.append((key, value))
    return env


def _parse_dirs(values):
    dirs = []
    for item in values:
        host, sep, guest = item.partition("::")
        guest = guest if sep else host
        if not os.path.isdir(host):
            raise UsageError(f"--dir {item!r}: {host!r} is not a directory")
        dirs.append((host, guest))
    return dirs


def _seconds(ctx, param, value):
    """A positive number of seconds (click's FloatRange says 'not a valid float range')."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if (seconds is None or not math.isfinite(seconds) or seconds < 0
            or (seconds == 0 and param.name == "duration")):
        raise click.BadParameter(f"{value!r} is not a number of seconds "
                                 f"(e.g. 10 or 0.5{'' if param.name == 'duration' else '; 0 is allowed'})")
    return seconds


def _size(ctx, param, value):
    if value is None:
        return None
    from wasm_bpf_cli.policy import parse_size

    try:
        return parse_size(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


_DELAY_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def _delay(ctx, param, value):
    """--max-delivery-delay: a number with a unit (us, ms, s), e.g. 1ms."""
    if value is None:
        return 0.0
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|ms|s)\s*", value)
    if m is None:
        raise click.BadParameter(f"{value!r} is not a duration such as 500us, 1ms or 0.01s")
    seconds = float(m.group(1)) * _DELAY_UNITS[m.group(2)]
    if seconds > 1.0:
        raise click.BadParameter(f"{value!r} is longer than 1s (records wait in the ring meanwhile)")
    return seconds


def _policy(path, allow, deny, dirs):
    """The Policy of --policy FILE plus --allow/--deny, or None if none was given."""
    if path is None and not allow and not deny:
        return None
    from wasm_bpf_cli.policy import Policy

    policy = Policy.load(path) if path is not None else Policy()
    policy = policy.merged(allow=allow, deny=deny)
    if dirs and not policy.allow_preopens:
        raise UsageError(f"--dir: preopened directories are not allowed by {policy.source} "
                         "(allow_preopens = false)")
    return policy


class _UiLogHandler(logging.Handler):
    """Log records on stderr, one line each, around the status line if any."""

    def __init__(self, ui=None):
        super().__init__()
        self.ui = ui

    def emit(self, record):
        try:
            text = f"wasm-bpf: {record.levelname.lower()}: {record.getMessage()}"
            if record.exc_info and logging.getLogger("wasm_bpf").isEnabledFor(logging.DEBUG):
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            if self.ui is not None:
                self.ui.log(text)
            else:
                sys.stderr.write(text + "\n")
                sys.stderr.flush()
        except Exception:  # noqa: BLE001
            self.handleError(record)


def _setup_logging(verbose: int, quiet: bool) -> _UiLogHandler:
    handler = _UiLogHandler()
    root = logging.getLogger("wasm_bpf")
    root.handlers = [h for h in root.handlers if not isinstance(h, _UiLogHandler)]
    root.addHandler(handler)
    root.propagate = False
    root.setLevel(logging.ERROR if quiet else logging.DEBUG if verbose else logging.WARNING)
    return handler


@click.command(context_settings={"allow_interspersed_args": False,
                                 "help_option_names": ["-h", "--help"]},
               epilog=EPILOG)
@click.option("--duration", callback=_seconds, metavar="SECONDS",
              help="Stop the guest (as Ctrl-C does) after this many seconds.")
@click.option("--env", "env", multiple=True, metavar="KEY=VALUE",
              help="Set a guest environment variable (repeatable). None are inherited.")
@click.option("--dir", "dirs", multiple=True, metavar="HOST[::GUEST]",
              help="Preopen a host directory for the guest (repeatable). None by default.")
@click.option("--engine", type=click.Choice(["auto", "wasmtime", "wasmer"]), default="auto",
              envvar="WASM_BPF_ENGINE", show_default=True,
              help="Wasm engine. auto: wasmer where it imports (CPython <= 3.10), else wasmtime.")
@click.option("--grace-period", callback=_seconds, default="2", show_default=True,
              metavar="SECONDS", help="How long a stopped guest may take to return by itself.")
@click.option("--wrapper-module-name", default="callback-wrapper", show_default=True,
              help="Import module of the Go/TinyGo buffer-poll variant.")
@click.option("--callback-export-name", default="go-callback", show_default=True,
              help="Guest export that receives samples in the Go/TinyGo variant.")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="A TOML policy: program types, counts and limits the guest must keep to "
                   "(see wasm_bpf_cli/policy.py).")
@click.option("--allow", multiple=True, metavar="TYPE",
              help="Allow only programs of this type or group (tracing, networking, security; "
                   "repeatable). Others are not loaded.")
@click.option("--deny", multiple=True, metavar="TYPE",
              help="Never load programs of this type or group (repeatable).")
@click.option("--max-memory", callback=_size, metavar="SIZE",
              help="Cap the guest's linear memory (e.g. 64M); growing past it fails in the guest.")
@click.option("--max-object-size", callback=_size, metavar="SIZE",
              help="Refuse to load a BPF object larger than this (e.g. 1M).")
@click.option("--max-delivery-delay", callback=_delay, metavar="DURATION",
              help="Hold ring/perf buffer records up to this long (e.g. 1ms) before delivering them, "
                   "to deliver more per crossing into the guest: less CPU, more latency. A poll "
                   "still returns by its own timeout; a stop is still at once.")
@click.option("--output-buffering", type=click.Choice(["line", "libc"]), default="line", show_default=True,
              help="line: the guest's stdout/stderr look like a terminal to it, so each line it "
                   "prints is written at once (also through pipes). libc: they look like what they "
                   "are, so a guest printing in bulk to a pipe or file keeps its libc's 4 KiB buffer.")
@click.option("--no-cache", is_flag=True,
              help="Compile the module afresh: neither read nor write the compiled-module cache "
                   "(see `wasm-bpf cache`).")
@click.option("--cache-dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Directory of the compiled-module cache (default: $WASM_BPF_CACHE_DIR, else "
                   "$XDG_CACHE_HOME/wasm-bpf or ~/.cache/wasm-bpf).")
@click.option("--metrics", "metrics", metavar="ADDR:PORT",
              help="Serve Prometheus metrics of the run at http://ADDR:PORT/metrics (:PORT: every "
                   "interface) while the guest runs.")
@click.option("--metrics-config", type=click.Path(dir_okay=False), metavar="FILE",
              help="TOML config turning the guest's maps into metrics (default: the one embedded "
                   "in the module, if any; see `wasm-bpf metrics`).")
@click.option("--bpf-stats", is_flag=True,
              help="With --metrics: each BPF program's run count and run time (holds "
                   "BPF_ENABLE_STATS while running).")
@pull_option
@verify_key_option
@processor_options
@click.option("-v", "--verbose", count=True, help="Show libbpf's log and the host calls.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr; no status line or summary.")
@click.argument("module", type=click.Path(dir_okay=False), metavar="MODULE.wasm")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(duration, env, dirs, engine, grace_period, wrapper_module_name, callback_export_name,
        policy_file, allow, deny, max_memory, max_object_size, max_delivery_delay, output_buffering, no_cache,
        cache_dir,
        metrics, metrics_config, bpf_stats, pull_mode, verify_keys, with_processors, with_args, filters,
        verbose, quiet, module, args):
    """Run MODULE.wasm, or the image REF (registry/repo:tag, pulled into the
    local store once); everything after it goes to the guest (which sees
    MODULE.wasm or REF as argv[0]). Guest stdout passes through unchanged."""
    from wasm_bpf_cli import engines
    from wasm_bpf_cli.runner import RunOptions

    handler = _setup_logging(verbose, quiet)
    try:
        options = RunOptions(args=list(args), env=_parse_env(env), dirs=_parse_dirs(dirs),
                             engine=engines.resolve(engine), duration=duration,
                             grace_period=grace_period,
                             wrapper_module_name=wrapper_module_name,
                             callback_export_name=callback_export_name,
                             policy=with_verify_keys(_policy(policy_file, allow, deny, dirs), verify_keys),
                             pull=pull_mode,
                             max_memory=max_memory, max_object_size=max_object_size,
                             output_buffering=output_buffering, cache=not no_cache,
                             cache_dir=cache_dir, metrics=metrics,
                             metrics_config=metrics_config, bpf_stats=bpf_stats,
                             max_delivery_delay=max_delivery_delay,
                             **processor_run_options(with_processors, with_args, filters))
        if (metrics_config or bpf_stats) and not metrics:
            raise UsageError("--metrics-config and --bpf-stats need --metrics ADDR:PORT")
    except WasmBpfError as err:
        fail(err)
    if options.engine == "wasmer":
        # wasmer cannot interrupt a spinning guest and holds the GIL meanwhile:
        # a parent process enforces stops and --duration (see supervise.py).
        from wasm_bpf_cli.cli.supervise import run_supervised

        options.duration = None
        run_supervised(lambda: _run_guest(module, options, quiet, handler), duration, grace_period)
    _run_guest(module, options, quiet, handler)


def _run_guest(module, options, quiet, handler) -> None:
    from wasm_bpf_cli.runner import Runner

    ui = None
    if not quiet and sys.stderr.isatty():
        from wasm_bpf_cli.cli.ui import StatusLine

        ui = StatusLine(os.path.basename(module))
        handler.ui = ui
        options.stderr = ui.stderr
        if sys.stdout.isatty():  # a pipe gets the guest's bytes directly
            options.stdout = ui.stdout

    runner = Runner(module, options)
    _install_signal_handlers(runner)
    try:
        runner.start()
        while True:
            # No timeout without a status line: a main thread waking 4 times a
            # second competes for the GIL with the guest thread just when a
            # burst arrives. Signals still reach it (the runner's threads
            # block them, see runner._start_without_signals).
            result = runner.wait(0.25 if ui is not None else None)
            if result is not None:
                break
            if ui is not None:
                ui.refresh(runner.status())
    except WasmBpfError as err:
        if ui is not None:
            ui.close()
        fail(err)
    if ui is not None:
        ui.close()
    if result.message:
        click.echo(f"error: {result.message}", err=True)
    if ui is not None:
        from wasm_bpf_cli.cli.ui import print_summary

        print_summary(os.path.basename(module), result)
    if result.abandoned:  # a guest thread still runs: skip interpreter teardown
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(result.exit_code)
    sys.exit(result.exit_code)


def _install_signal_handlers(runner) -> None:
    seen = []

    def handler(signum, _frame):
        reason = "sigint" if signum == signal.SIGINT else "sigterm"
        if seen:  # the second one: stop now
            threading.Thread(target=runner.kill, daemon=True).start()
        else:
            runner.stop(reason)
        seen.append(signum)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    # --duration, when a supervising parent enforces it (supervise.py)
    signal.signal(signal.SIGUSR1, lambda *_: runner.stop("duration"))
