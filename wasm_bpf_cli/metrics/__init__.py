"""Prometheus metrics of a running guest (`wasm-bpf run --metrics ADDR:PORT`).

- config.py: the TOML config (which maps become which metrics)
- section.py: the same config embedded in the module (custom section)
- layout.py: the config checked against the module's BTF, compiled to offsets
- mapread.py, decoders.py: reading a map's entries, decoding label values
- collector.py: the prometheus_client collector, evaluated at scrape time only
- bpfstats.py: BPF_ENABLE_STATS and per-program run counts (`--bpf-stats`)
- server.py: the HTTP endpoint

serve() does it all at the start of a run, before any BPF object is loaded:
a bad config, a map or member the module lacks, an address that cannot be
bound are one-line errors then, never later.
"""
import hashlib
import os
import time
from typing import TYPE_CHECKING, List, Optional, Tuple, Union

from wasm_bpf_cli.metrics.config import MetricsConfig, load_config, parse_config
from wasm_bpf_cli.metrics.section import SECTION_NAME, embed, embedded_config

if TYPE_CHECKING:
    from wasm_bpf_cli.metrics.server import MetricsEndpoint

__all__ = ["MetricsConfig", "load_config", "parse_config", "embed", "embedded_config",
           "SECTION_NAME", "serve", "check", "MetricsRun"]

ConfigSource = Union[None, str, os.PathLike, MetricsConfig]


def _config(wasm: bytes, config: ConfigSource) -> Optional[MetricsConfig]:
    """The config given (a path or a MetricsConfig), else the module's own, else None."""
    if isinstance(config, MetricsConfig):
        return config
    if config is not None:
        return load_config(os.fspath(config))
    return embedded_config(wasm)


def check(wasm: bytes, config: ConfigSource = None) -> List:
    """The compiled plans of `config` (or the module's embedded one) for
    this module; UsageError when it does not fit. Loads nothing."""
    from wasm_bpf_cli.abi.preload import embedded_images
    from wasm_bpf_cli.metrics.layout import compile_config

    cfg = _config(wasm, config)
    return [] if cfg is None else compile_config(cfg, embedded_images(wasm))


class MetricsRun:
    """What serve() started: the endpoint and the statistics hold; close() ends both."""

    def __init__(self, endpoint: "MetricsEndpoint", stats_hold=None):
        self.endpoint = endpoint
        self._stats_hold = stats_hold

    @property
    def url(self) -> str:
        return self.endpoint.url

    def close(self) -> None:
        self.endpoint.close()
        if self._stats_hold is not None:
            self._stats_hold.close()


def serve(address: str, wasm: bytes, module_name: str, engine: str, runner, abi,
          config: ConfigSource = None, bpf_stats: bool = False) -> MetricsRun:
    """Check the config, hold BPF statistics if asked, and serve the guest's
    metrics at `address` ("ADDR:PORT") until close()."""
    from prometheus_client import CollectorRegistry

    from wasm_bpf_cli.metrics.collector import GuestCollector, GuestProbe
    from wasm_bpf_cli.metrics.server import MetricsEndpoint, parse_address

    host, port = parse_address(address)
    plans = check(wasm, config)
    probe = GuestProbe(status=runner.status, maps=runner.maps, programs=lambda: _programs(abi),
                       memory_bytes=lambda: _memory_bytes(abi),
                       info={"module": module_name, "digest": "sha256:" + hashlib.sha256(wasm).hexdigest(),
                             "engine": engine},
                       started_at=time.monotonic(), objects=lambda: tuple(abi.objects))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GuestCollector(probe, plans, bpf_stats=bpf_stats))
    hold = None
    if bpf_stats:
        from wasm_bpf_cli.metrics.bpfstats import StatsHold

        hold = StatsHold()
    try:
        endpoint = MetricsEndpoint(host, port, registry)
    except BaseException:
        if hold is not None:
            hold.close()
        raise
    return MetricsRun(endpoint, hold)


def _programs(abi) -> List[Tuple[str, int]]:
    out = []
    for gobj in list(abi.objects.values()):
        try:
            out.extend((p.name, p.fd) for p in gobj.obj.programs)
        except Exception:  # noqa: BLE001 - the object was closed meanwhile
            continue
    return out


def _memory_bytes(abi) -> Optional[int]:
    instance = abi.instance
    if instance is None:
        return None
    return instance.memory.size_seen()  # this runs on the HTTP server's thread
