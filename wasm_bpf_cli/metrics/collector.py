"""The Prometheus collector of one running guest.

prometheus_client calls collect() once per scrape, on the HTTP server's
thread; nothing runs between scrapes. It reads the runner's state (buffers,
objects, programs, memory) and, for every metric of the config, the map's
entries by fd (mapread.py), decoded with the plan compiled at start
(layout.py). A map that cannot be read is left out of that scrape and
counted in wasm_bpf_metrics_scrape_errors_total; the scrape still answers.
"""
import logging
import threading
import time
from collections import defaultdict
from itertools import accumulate, repeat
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from wasm_bpf_cli.bpf import BpfError
from wasm_bpf_cli.bpf.maps import possible_cpus
from wasm_bpf_cli.metrics.decoders import make_decoder
from wasm_bpf_cli.metrics.layout import Plan
from wasm_bpf_cli.metrics.mapread import MapReader

log = logging.getLogger("wasm_bpf.metrics")

LABEL_CACHE_MAX = 65536  # decoded label tuples kept per metric (keys repeat across scrapes)


class GuestProbe:
    """What a scrape may read of a running guest. The runner makes one; the
    collector only calls these (each must be safe from another thread)."""

    def __init__(self, status: Callable, maps: Callable, programs: Callable[[], Iterable[Tuple[str, int]]],
                 memory_bytes: Callable[[], Optional[int]], info: Dict[str, str], started_at: float,
                 objects: Callable[[], Tuple] = lambda: ()):
        self.status = status  # () -> RunStatus
        self.maps = maps  # () -> [MapView]
        self.objects = objects  # () -> the handles of the loaded objects: maps() changes with them
        self.programs = programs  # () -> [(program name, fd)] of the loaded objects
        self.memory_bytes = memory_bytes
        self.info = info  # labels of wasm_bpf_guest_info
        self.started_at = started_at  # time.monotonic() at start


class _MapMetric:
    """One Plan, with what it keeps from scrape to scrape (reader buffers, decoded labels)."""

    def __init__(self, plan: Plan, cpus: int):
        self.plan = plan
        self.spec = plan.spec
        self.reader = MapReader(plan.shape, cpus)
        self.decoders = [make_decoder(label) for label, _f in plan.labels]
        self.label_names = [label.name for label, _f in plan.labels]
        if self.spec.per_cpu == "cpu":
            self.label_names.append("cpu")
        self._labels: Dict[bytes, Tuple[str, ...]] = {}
        self._bounds: Dict[int, str] = {}
        self._bound_labels: Dict[int, Dict[str, str]] = {}  # of a histogram without labels
        self._slot_order: List[int] = []  # its slots as the last scrape had them, in order
        self._slot_labels: List[Dict[str, str]] = []

    def slot_counts(self, raws) -> Tuple[List[Dict[str, str]], List[int]]:
        """(the `le` labels of the slots in order, their counts) of a map of
        slot -> count without labels. An array's slots come back in order,
        the same as the scrape before: no sorting, the same labels."""
        plan = self.plan
        key_size, stride = plan.shape.key_size, self.reader.stride
        if len(raws) == 1:
            _n, keys, values = raws[0]
            order = plan.bucket.column(keys, key_size)
            if order == self._slot_order:
                return self._slot_labels, plan.value.column(values, stride)
        slots: Dict[int, int] = defaultdict(int)
        for _n, keys, values in raws:
            for index, count in zip(plan.bucket.column(keys, key_size), plan.value.column(values, stride)):
                slots[index] += count
        self._slot_order = sorted(slots)
        self._slot_labels = [self.bound_labels(index) for index in self._slot_order]
        return self._slot_labels, [slots[index] for index in self._slot_order]

    def bound_labels(self, index: int) -> Dict[str, str]:
        """{"le": bound(index)}, the same dict every scrape (samples only read it)."""
        got = self._bound_labels.get(index)
        if got is None:
            got = self._bound_labels[index] = {"le": self.bound(index)}
        return got

    def bound(self, index: int) -> str:
        """The `le` of bucket `index`: its upper bound in the metric's unit."""
        le = self._bounds.get(index)
        if le is None:
            spec = self.spec
            if spec.buckets == "log2":  # slot i: [2^i, 2^(i+1)) (0 and 1 both in slot 0)
                value = float(2 ** (index + 1)) * spec.multiplier
            elif spec.buckets == "linear":  # slot i: [i*w, (i+1)*w)
                value = (index + 1) * spec.bucket_width * spec.multiplier
            else:  # keyed: the key holds the bound
                value = index * spec.multiplier
            le = self._bounds[index] = floatToGoString(value)
        return le

    def matches(self, map_name: str) -> bool:
        want = self.spec.map
        return map_name == want or (want.startswith(".") and map_name.endswith(want))

    def labels(self, key: bytes) -> Tuple[str, ...]:
        got = self._labels.get(key)
        if got is None:
            got = tuple(decode(f.chars(key) if f.kind == "chars" else f.number(key))
                        for decode, (_l, f) in zip(self.decoders, self.plan.labels))
            if len(self._labels) >= LABEL_CACHE_MAX:
                self._labels.clear()
            self._labels[key] = got
        return got

    def values(self, value: bytes) -> List:
        """The number (or slots) of each CPU's value; one item for a plain map."""
        f = self.plan.value
        read = f.slots if f.kind == "slots" else f.number
        if self.reader.cpus == 1:
            return [read(value)]
        return [read(v) for v in self.reader.per_cpu_values(value)]


class GuestCollector:
    """A prometheus_client custom collector (register it with a registry)."""

    def __init__(self, probe: GuestProbe, plans: Sequence[Plan], bpf_stats: bool = False):
        self.probe = probe
        cpus = possible_cpus() if any(p.shape.per_cpu for p in plans) else 1
        self.metrics = [_MapMetric(plan, cpus) for plan in plans]
        self.bpf_stats = bpf_stats
        self.scrape_errors: Dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()  # one scrape at a time: readers share buffers
        self._views: Tuple = (None, [])  # (objects, [(metric, its MapViews)]) as of the last scrape
        # constant for the run: made once, the same object every scrape (nothing changes it)
        self._last: Dict[str, Metric] = {}  # the always-there families of the last scrape
        self._info = _family("wasm_bpf_guest", "The guest module this runner runs", "info",
                             [Sample("wasm_bpf_guest_info", dict(probe.info), 1.0, None, None)])

    def describe(self) -> List[Metric]:
        return []  # registering must not scrape (the guest may not run yet)

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            return self._collect()

    def _collect(self) -> List[Metric]:
        out = self._runner_metrics()
        if self.metrics:
            for metric, views in self._metric_views():
                family = self._map_metric(metric, views)
                if family is not None:
                    out.append(family)
        out.append(self._family("wasm_bpf_metrics_scrape_errors", "Map reads that failed during a scrape, by map",
                           "counter", [Sample("wasm_bpf_metrics_scrape_errors_total", {"map": map_name},
                                              self.scrape_errors.get(map_name, 0), None, None)
                                       for map_name in sorted({m.spec.map for m in self.metrics}
                                                              | set(self.scrape_errors))]))
        return out

    def _metric_views(self):
        """Each metric with the live maps it reads, found again only when the
        guest has loaded or closed an object since the last scrape."""
        objects = self.probe.objects()
        if objects != self._views[0] or not objects:
            views = self.probe.maps()
            self._views = (objects, [(m, [v for v in views if m.matches(v.name)]) for m in self.metrics])
        return self._views[1]

    # -- always there -----------------------------------------------------
    def _runner_metrics(self) -> List[Metric]:
        probe = self.probe
        status = probe.status()
        totals: Dict[Tuple[str, str], List[int]] = {}
        for b in status.buffers:
            counts = totals.setdefault((b.name, b.kind), [0, 0])
            counts[0] += b.delivered
            counts[1] += b.lost
        delivered, lost = [], []
        for (name, kind), (d, n) in sorted(totals.items()):
            labels = {"buffer": name, "kind": kind}
            delivered.append(Sample("wasm_bpf_buffer_delivered_samples_total", labels, d, None, None))
            lost.append(Sample("wasm_bpf_buffer_lost_samples_total", labels, n, None, None))
        out: List[Metric] = [
            self._info,
            self._family("wasm_bpf_buffer_delivered_samples", "Samples delivered to the guest's callback, per buffer",
                    "counter", delivered),
            self._family("wasm_bpf_buffer_lost_samples",
                    "Samples the kernel dropped before the guest read them, per buffer", "counter", lost),
            self._one("wasm_bpf_objects_loaded", "BPF objects the guest has loaded", "gauge", status.objects),
            self._one("wasm_bpf_programs_attached", "BPF programs the guest has attached", "gauge",
                 status.programs_attached),
            self._one("wasm_bpf_run_seconds", "Seconds since the runner started", "gauge",
                 time.monotonic() - probe.started_at),
            self._one("wasm_bpf_cpu_seconds", "CPU time of the runner's process", "counter", time.process_time()),
        ]
        memory = probe.memory_bytes()
        if memory is not None:
            out.append(self._one("wasm_bpf_guest_memory_bytes", "The guest's linear memory", "gauge", memory))
        if self.bpf_stats:
            out.extend(self._program_stats())
        return out

    def _family(self, name: str, documentation: str, typ: str, samples: List[Sample]) -> Metric:
        """The family of the last scrape if its samples are the same (the same
        object: encoding.py then keeps its text too), else a new one."""
        last = self._last.get(name)
        if last is not None and last.samples == samples:
            return last
        family = self._last[name] = _family(name, documentation, typ, samples)
        return family

    def _one(self, name: str, documentation: str, typ: str, value: float) -> Metric:
        """A family of one sample without labels (a counter's sample is NAME_total)."""
        last = self._last.get(name)
        if last is not None and last.samples[0].value == value:
            return last
        return self._family(name, documentation, typ,
                            [Sample(name + "_total" if typ == "counter" else name, _NO_LABELS, value, None, None)])

    def _program_stats(self) -> List[Metric]:
        from wasm_bpf_cli.metrics.bpfstats import program_stats

        runs = CounterMetricFamily("wasm_bpf_program_runs", "Runs of each BPF program (--bpf-stats)",
                                   labels=["program"])
        run_time = CounterMetricFamily("wasm_bpf_program_run_seconds",
                                       "Time spent in each BPF program (--bpf-stats)", labels=["program"])
        totals: Dict[str, List[int]] = defaultdict(lambda: [0, 0])
        for name, fd in self.probe.programs():
            try:
                count, ns = program_stats(fd)
            except BpfError:
                continue  # closed meanwhile
            totals[name][0] += count
            totals[name][1] += ns
        for name, (count, ns) in sorted(totals.items()):
            runs.add_metric([name], count)
            run_time.add_metric([name], ns / 1e9)
        return [runs, run_time]

    # -- from the config ----------------------------------------------------
    def _map_metric(self, metric: _MapMetric, views) -> Optional[Metric]:
        raws = []
        shape = metric.plan.shape
        for view in views:
            if view.key_size != shape.key_size or view.value_size != shape.value_size:
                self._error(metric, f"map {view.name!r} is {view.key_size}/{view.value_size}-byte "
                                    f"key/value, the module's BTF said {shape.key_size}/{shape.value_size}")
                return None
            try:
                raws.append(metric.reader.read_raw(view.fd))
            except BpfError as err:
                self._error(metric, str(err))
                return None
        try:
            if metric.spec.kind == "histogram":
                return self._histogram(metric, raws)
            return self._scalar(metric, _entries(metric, raws))
        except Exception as err:  # noqa: BLE001 - one bad metric must not fail the scrape
            self._error(metric, f"decode: {type(err).__name__}: {err}")
            return None

    def _error(self, metric: _MapMetric, message: str) -> None:
        self.scrape_errors[metric.spec.map] += 1
        log.debug("metrics: %s: %s", metric.spec.name, message)

    def _scalar(self, metric: _MapMetric, entries) -> Metric:
        spec = metric.spec
        sums: Dict[Tuple[str, ...], float] = defaultdict(float)
        by_cpu = spec.per_cpu == "cpu"
        for key, value in entries:
            labels = metric.labels(key)
            numbers = metric.values(value)
            if by_cpu:
                for cpu, n in enumerate(numbers):
                    sums[labels + (str(cpu),)] += n
            else:
                sums[labels] += sum(numbers)
        cls = CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily
        family = cls(spec.name, spec.help, labels=metric.label_names)
        for labels, total in sorted(sums.items()):
            if total or spec.zeros:
                family.add_metric(list(labels), total * spec.multiplier)
        return family

    def _histogram(self, metric: _MapMetric, raws) -> Metric:
        spec, plan = metric.spec, metric.plan
        family = HistogramMetricFamily(spec.name, spec.help, labels=metric.label_names)
        bucket_name, count_name = spec.name + "_bucket", spec.name + "_count"
        if not plan.labels and plan.bucket is not None and plan.value.kind == "int" and metric.reader.cpus == 1:
            # the common shape (runqlat's): an array of slot -> count, read as two columns
            labels, counts = metric.slot_counts(raws)
            totals = list(accumulate(counts))
            total = totals[-1] if totals else 0
            family.samples = list(map(Sample, repeat(bucket_name), labels, totals, repeat(None), repeat(None)))
            family.samples.append(Sample(bucket_name, _INF, total, None, None))
            family.samples.append(Sample(count_name, _NO_LABELS, total, None, None))
            return family
        counts: Dict[Tuple[str, ...], Dict[int, int]] = defaultdict(lambda: defaultdict(int))
        by_cpu = spec.per_cpu == "cpu"
        for key, value in _entries(metric, raws):
            labels = metric.labels(key)
            numbers = metric.values(value)
            groups = [(labels + (str(cpu),), [n]) for cpu, n in enumerate(numbers)] if by_cpu \
                else [(labels, numbers)]
            for group_labels, per_cpu in groups:
                slots = counts[group_labels]
                if plan.bucket is None:  # the value is an array of slots
                    for cpu_slots in per_cpu:
                        for i, c in enumerate(cpu_slots):
                            slots[i] += c
                else:
                    slots[plan.bucket.number(key)] += sum(per_cpu)
        names = metric.label_names
        for labels, slots in sorted(counts.items()):
            total = 0
            base = dict(zip(names, labels))
            for index in sorted(slots):
                total += slots[index]
                family.samples.append(Sample(bucket_name, dict(base, le=metric.bound(index)), total, None, None))
            family.samples.append(Sample(bucket_name, dict(base, le="+Inf"), total, None, None))
            # no _sum (slots do not keep the sum of the values), but the count
            family.samples.append(Sample(count_name, base, total, None, None))
        return family


_INF = {"le": "+Inf"}
_NO_LABELS: Dict[str, str] = {}


def _entries(metric: _MapMetric, raws) -> List[Tuple[bytes, bytes]]:
    """(key, value) of every entry the raw reads hold."""
    ks, stride = metric.plan.shape.key_size, metric.reader.stride
    return [(keys[i * ks:(i + 1) * ks], values[i * stride:(i + 1) * stride])
            for n, keys, values in raws for i in range(n)]


def _family(name: str, documentation: str, typ: str, samples: List[Sample]) -> Metric:
    """A metric family with its samples, made directly (the *MetricFamily
    helpers check their arguments again for every sample of every scrape)."""
    family = Metric(name, documentation, typ)
    family.samples = samples
    return family
