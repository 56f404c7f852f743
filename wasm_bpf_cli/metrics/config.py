"""The metrics config: which maps become which Prometheus metrics.

A small TOML file (`wasm-bpf run --metrics-config FILE`, or the same text
embedded in the module, see section.py), in ebpf_exporter's model:

    [[counter]]                       # or [[gauge]], [[histogram]]
    name = "packets_total"            # the metric's name
    help = "Packets by IP protocol"   # optional
    map = "proto_count"               # a map of the guest's BPF objects
    value = "packets"                 # member of a struct value (default: the whole value)
    per_cpu = "sum"                   # per-CPU maps: "sum" (default) or "cpu" (a `cpu` label)
    multiplier = 1                    # unit multiplier applied to every value
    zeros = false                     # keep entries whose value is 0 (array maps hold every key)
    labels = [
      { name = "protocol", member = "proto", decoder = "static_map",
        static_map = { 1 = "icmp", 6 = "tcp", 17 = "udp" } },
    ]

    [[histogram]]
    name = "runq_latency_seconds"
    map = "hist"
    buckets = "log2"                  # "log2" | "linear" (bucket_width) | "keyed"
    bucket_member = "slot"            # the key member holding the slot (default: the whole key)
    multiplier = 1e-6                 # map units (us) -> seconds

A label's `member` is a dotted path into the key's struct (default: the
whole key); `decoder` is one of DECODERS. Whether members exist and
decoders fit their types is checked against the module's BTF (layout.py).
No click or rich here: errors are UsageError, one line naming the source
and the metric.
"""
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Tuple

from wasm_bpf_cli.errors import UsageError

KINDS = ("counter", "gauge", "histogram")
DECODERS = ("integer", "string", "errno", "syscall", "ifname", "cgroup", "ksym", "static_map")
BUCKET_TYPES = ("log2", "linear", "keyed")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
MAX_CONFIG_BYTES = 1 << 20

_COMMON_KEYS = {"name", "help", "map", "value", "labels", "per_cpu", "multiplier"}
_KEYS = {
    "counter": _COMMON_KEYS | {"zeros"},
    "gauge": _COMMON_KEYS | {"zeros"},
    "histogram": _COMMON_KEYS | {"buckets", "bucket_member", "bucket_width"},
}
_LABEL_KEYS = {"name", "member", "decoder", "static_map"}


@dataclass(frozen=True)
class LabelSpec:
    name: str
    member: str = ""  # dotted path into the key; "" = the whole key
    decoder: str = "integer"
    static_map: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSpec:
    kind: str  # "counter" | "gauge" | "histogram"
    name: str
    help: str
    map: str
    labels: Tuple[LabelSpec, ...] = ()
    value: str = ""  # dotted path into the value; "" = the whole value
    per_cpu: str = "sum"  # "sum" | "cpu"
    multiplier: float = 1.0
    zeros: bool = False
    buckets: str = ""  # histograms: "log2" | "linear" | "keyed"
    bucket_member: str = ""  # histograms: key member of the slot/bound; "" = the whole key
    bucket_width: float = 0.0  # linear histograms

    def where(self) -> str:
        return f"{self.kind} {self.name!r}"


@dataclass(frozen=True)
class MetricsConfig:
    metrics: Tuple[MetricSpec, ...]
    source: str  # a file name, or "the module's wasm-bpf.metrics section"

    @property
    def maps(self) -> List[str]:
        return sorted({m.map for m in self.metrics})


def _toml():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on the 3.10 (wasmer) venv
        import tomli as tomllib
    return tomllib


def load_config(path: str) -> MetricsConfig:
    """Read a config file; UsageError (one line) if unreadable or malformed."""
    import os

    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise UsageError(f"metrics config {path}: cannot read: {err.strerror or err}") from None
    return parse_config(data, os.path.basename(path) or path)


def parse_config(data: bytes, source: str) -> MetricsConfig:
    """Parse config text (a file's or an embedded section's bytes)."""
    if len(data) > MAX_CONFIG_BYTES:
        raise UsageError(f"{source}: larger than {MAX_CONFIG_BYTES} bytes")
    tomllib = _toml()
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{source}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"{source}: not valid TOML: {err}") from None
    return from_mapping(doc, source)


def from_mapping(doc: Mapping[str, Any], source: str) -> MetricsConfig:
    unknown = sorted(set(doc) - set(KINDS))
    if unknown:
        raise UsageError(f"{source}: unknown key {unknown[0]!r} (expected [[counter]], [[gauge]] "
                         "or [[histogram]] tables)")
    metrics: List[MetricSpec] = []
    seen: Dict[str, str] = {}
    for kind in KINDS:
        tables = doc.get(kind, [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise UsageError(f"{source}: {kind!r} must be an array of tables ([[{kind}]])")
        for i, table in enumerate(tables):
            spec = _metric(kind, table, f"{source}: {kind} #{i + 1}")
            if spec.name in seen:
                raise UsageError(f"{source}: metric name {spec.name!r} is defined twice")
            seen[spec.name] = kind
            metrics.append(spec)
    if not metrics:
        raise UsageError(f"{source}: defines no metric ([[counter]], [[gauge]] or [[histogram]])")
    return MetricsConfig(tuple(metrics), source)


def _get(table: Mapping, key: str, types, where: str, default=None, what: str = ""):
    if key not in table:
        return default
    value = table[key]
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        value = None  # TOML true/false is not a number
    if not isinstance(value, types):
        raise UsageError(f"{where}: {key!r} must be {what or getattr(types, '__name__', types)}")
    return value


def _path(value: str, where: str, key: str) -> str:
    if value and not all(LABEL_NAME.match(part) for part in value.split(".")):
        raise UsageError(f"{where}: {key} {value!r} is not a member path (e.g. \"pid\" or \"key.cpu\")")
    return value


def _metric(kind: str, table: Mapping, where: str) -> MetricSpec:
    name = _get(table, "name", str, where)
    if name is None:
        raise UsageError(f"{where}: 'name' is missing")
    if not METRIC_NAME.match(name):
        raise UsageError(f"{where}: name {name!r} is not a Prometheus metric name")
    where = f"{where.rsplit(':', 1)[0]}: {kind} {name!r}"
    unknown = sorted(set(table) - _KEYS[kind])
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS[kind]))})")
    map_name = _get(table, "map", str, where)
    if not map_name:
        raise UsageError(f"{where}: 'map' is missing")
    per_cpu = _get(table, "per_cpu", str, where, "sum")
    if per_cpu not in ("sum", "cpu"):
        raise UsageError(f"{where}: per_cpu must be \"sum\" or \"cpu\", not {per_cpu!r}")
    multiplier = float(_get(table, "multiplier", (int, float), where, 1.0, "a number"))
    labels = tuple(_label(item, where, i) for i, item in
                   enumerate(_get(table, "labels", list, where, [], "an array of tables")))
    names = [label.name for label in labels] + (["cpu"] if per_cpu == "cpu" else [])
    for label_name in names:
        if names.count(label_name) > 1:
            raise UsageError(f"{where}: label {label_name!r} is defined twice")
    spec = dict(kind=kind, name=name, help=_get(table, "help", str, where, "") or f"map {map_name}",
                map=map_name, labels=labels, value=_path(_get(table, "value", str, where, ""), where, "value"),
                per_cpu=per_cpu, multiplier=multiplier)
    if kind == "histogram":
        if "le" in names:
            raise UsageError(f"{where}: a histogram cannot have a label named 'le'")
        buckets = _get(table, "buckets", str, where)
        if buckets not in BUCKET_TYPES:
            raise UsageError(f"{where}: buckets must be one of {', '.join(BUCKET_TYPES)}"
                             + (f", not {buckets!r}" if buckets else " ('buckets' is missing)"))
        width = float(_get(table, "bucket_width", (int, float), where, 0.0, "a number"))
        if (buckets == "linear") != (width > 0):
            raise UsageError(f"{where}: bucket_width (> 0) goes with buckets = \"linear\", and only there")
        spec.update(buckets=buckets, bucket_width=width,
                    bucket_member=_path(_get(table, "bucket_member", str, where, ""), where, "bucket_member"))
    else:
        spec["zeros"] = _get(table, "zeros", bool, where, False)
    return MetricSpec(**spec)


def _label(item: Any, where: str, i: int) -> LabelSpec:
    if not isinstance(item, dict):
        raise UsageError(f"{where}: labels[{i}] must be a table ({{ name = ..., member = ... }})")
    unknown = sorted(set(item) - _LABEL_KEYS)
    if unknown:
        raise UsageError(f"{where}: labels[{i}]: unknown key {unknown[0]!r}")
    name = _get(item, "name", str, f"{where}: labels[{i}]")
    if not name or not LABEL_NAME.match(name) or name.startswith("__"):
        raise UsageError(f"{where}: labels[{i}]: name {name!r} is not a Prometheus label name")
    where = f"{where}: label {name!r}"
    decoder = _get(item, "decoder", str, where, "integer")
    if decoder not in DECODERS:
        raise UsageError(f"{where}: unknown decoder {decoder!r} (known: {', '.join(DECODERS)})")
    table = _get(item, "static_map", dict, where, None, "a table of number = \"name\"")
    if (table is not None) != (decoder == "static_map"):
        raise UsageError(f"{where}: static_map (a table) goes with decoder = \"static_map\", and only there")
    static: Dict[int, str] = {}
    for key, value in (table or {}).items():
        try:
            number = int(key, 0)
        except ValueError:
            raise UsageError(f"{where}: static_map key {key!r} is not a number") from None
        if not isinstance(value, str):
            raise UsageError(f"{where}: static_map value of {key} must be a string")
        static[number] = value
    return LabelSpec(name, _path(_get(item, "member", str, where, ""), where, "member"), decoder, static)
