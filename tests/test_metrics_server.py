"""The metrics endpoint's HTTP (metrics/server.py) and encoding
(metrics/encoding.py), without a guest: what a scraper sees."""
import gzip
import http.client
import socket
import threading
import time

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.parser import text_string_to_metric_families

from wasm_bpf_cli.errors import WasmBpfError
from wasm_bpf_cli.metrics import server
from wasm_bpf_cli.metrics.encoding import FamilyEncoder
from wasm_bpf_cli.metrics.server import MetricsEndpoint, choose_format

PROMETHEUS_3 = ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
                "application/openmetrics-text;version=0.0.1;q=0.4,"
                "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1")
PROMETHEUS_2 = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


@pytest.fixture
def registry():
    reg = CollectorRegistry()
    Counter("things", "Things counted", ["kind"], registry=reg).labels("a").inc(3)
    Gauge("level", "A level", registry=reg).set(7)
    return reg


@pytest.fixture
def endpoint(registry):
    ep = MetricsEndpoint("127.0.0.1", 0, registry)
    yield ep
    ep.close()


def _raw(ep, data: bytes, timeout=5.0) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", ep.port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_a_kept_alive_connection_serves_many_scrapes(endpoint):
    conn = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=5)
    sock_ids = set()
    for _ in range(5):
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        body = resp.read()
        sock_ids.add(id(conn.sock))
        assert resp.status == 200
        assert resp.getheader("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
        assert int(resp.getheader("Content-Length")) == len(body)
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        assert families["things"].samples[0].value == 3.0
        assert families["level"].samples[0].value == 7.0
    assert len(sock_ids) == 1  # one TCP connection for all five
    conn.close()


def test_http10_and_connection_close_end_the_connection(endpoint):
    for request in (b"GET /metrics HTTP/1.0\r\n\r\n",
                    b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"):
        answer = _raw(endpoint, request)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\r\nConnection: close" in head
        assert b"things_total{kind=\"a\"} 3.0" in body


def test_pipelined_requests_get_answers_in_order(endpoint):
    answer = _raw(endpoint, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                            b"HEAD /b HTTP/1.1\r\nHost: x\r\n\r\n"
                            b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 OK") == 3
    first, second, third = answer.split(b"HTTP/1.1 200 OK")[1:]
    assert b"level 7.0" in first and b"level" not in second and b"level 7.0" in third  # HEAD: no body


@pytest.mark.parametrize("request_bytes, status", [
    (b"NOT HTTP AT ALL\r\n\r\n", b"400 Bad Request"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", b"400 Bad Request"),
    (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", b"405 Method Not Allowed"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (server.MAX_REQUEST_BYTES + 10), b"431 "),
])
def test_a_bad_request_gets_a_status_and_a_closed_connection(endpoint, request_bytes, status):
    answer = _raw(endpoint, request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:80]
    assert b"\r\nConnection: close" in answer
    # and the endpoint still serves
    assert _raw(endpoint, b"GET / HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200 OK")


def test_formats_as_scrapers_ask():
    text = "text/plain; version=0.0.4; charset=utf-8"
    assert choose_format("")[1] == text
    assert choose_format("*/*")[1] == text
    assert choose_format(PROMETHEUS_2)[1] == text
    assert choose_format(PROMETHEUS_3)[1] == text  # 0.0.4 is listed: names here are all legacy ones
    # text 1.0.0 only, as asked: which text version is prometheus_client's choice (0.20 has 0.0.4 only)
    assert choose_format("text/plain;version=1.0.0")[1] == choose_encoder("text/plain;version=1.0.0")[1]
    assert choose_format("application/openmetrics-text;version=1.0.0")[1].startswith(
        "application/openmetrics-text; version=1.0.0")
    # text refused with q=0: OpenMetrics
    assert choose_format("application/openmetrics-text;version=1.0.0,text/plain;q=0")[1].startswith(
        "application/openmetrics-text")


def test_openmetrics_only_scraper_gets_openmetrics(endpoint):
    conn = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=5)
    conn.request("GET", "/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0"})
    resp = conn.getresponse()
    body = resp.read()
    assert resp.getheader("Content-Type").startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n") and body.count(b"# EOF") == 1
    conn.close()


def test_gzip_only_for_a_large_body(registry):
    small = MetricsEndpoint("127.0.0.1", 0, registry)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", small.port, timeout=5)
        conn.request("GET", "/", headers={"Accept-Encoding": "gzip"})
        resp = conn.getresponse()
        assert resp.getheader("Content-Encoding") is None and b"level 7.0" in resp.read()
        big = Gauge("wide", "Many series", ["i"], registry=registry)
        for i in range(2000):
            big.labels(str(i)).set(i)
        conn.request("GET", "/", headers={"Accept-Encoding": "gzip"})
        resp = conn.getresponse()
        body = resp.read()
        assert resp.getheader("Content-Encoding") == "gzip"
        plain = gzip.decompress(body)
        assert len(plain) >= server.GZIP_MIN_BYTES and b'wide{i="1999"} 1999.0' in plain
        conn.close()
    finally:
        small.close()


def test_a_failing_collector_answers_500_and_the_endpoint_lives_on(registry):
    class Broken:
        def collect(self):
            raise RuntimeError("map went away")

    registry.register(Broken())
    ep = MetricsEndpoint("127.0.0.1", 0, registry)
    try:
        answer = _raw(ep, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 500 Internal Server Error")
        assert b"metrics: RuntimeError: map went away" in answer
    finally:
        ep.close()


def test_close_frees_the_port_and_ends_every_thread(registry):
    before = set(threading.enumerate())
    ep = MetricsEndpoint("127.0.0.1", 0, registry)
    port = ep.port
    idle = [http.client.HTTPConnection("127.0.0.1", port, timeout=5) for _ in range(3)]
    for conn in idle:  # three kept-alive scrapers, each with a thread asleep in recv()
        conn.request("GET", "/")
        conn.getresponse().read()
    ep.close()
    assert set(threading.enumerate()) - before == set()
    again = MetricsEndpoint("127.0.0.1", port, registry)  # the port is free for the next run
    again.close()
    for conn in idle:
        conn.close()


def test_an_idle_connection_is_closed_after_the_timeout(registry, monkeypatch):
    monkeypatch.setattr(server, "_IDLE_TIMEVAL", server.struct.pack("@ll", 0, 300_000))  # 0.3 s
    ep = MetricsEndpoint("127.0.0.1", 0, registry)
    try:
        with socket.create_connection(("127.0.0.1", ep.port), timeout=5) as s:
            started = time.monotonic()
            assert s.recv(10) == b""  # the server closed it
            assert 0.2 < time.monotonic() - started < 3
    finally:
        ep.close()


def test_too_many_connections_get_503(registry, monkeypatch):
    monkeypatch.setattr(server, "MAX_CONNECTIONS", 2)
    ep = MetricsEndpoint("127.0.0.1", 0, registry)
    try:
        held = [socket.create_connection(("127.0.0.1", ep.port), timeout=5) for _ in range(2)]
        time.sleep(0.2)
        assert _raw(ep, b"").startswith(b"HTTP/1.1 503 Service Unavailable")
        for s in held:
            s.close()
    finally:
        ep.close()


def test_an_occupied_port_is_one_line(endpoint):
    with pytest.raises(WasmBpfError) as err:
        MetricsEndpoint("127.0.0.1", endpoint.port, CollectorRegistry())
    assert str(err.value) == f"--metrics 127.0.0.1:{endpoint.port}: cannot listen: Address already in use"


@pytest.mark.parametrize("encoder, content_type", [
    (generate_latest, "text/plain; version=0.0.4; charset=utf-8"),
    (openmetrics_latest, "application/openmetrics-text; version=1.0.0; charset=utf-8"),
])
def test_family_by_family_is_the_library_bytes_as_values_change(encoder, content_type):
    reg = CollectorRegistry()
    counter = Counter("c", "a counter", ["k"], registry=reg)
    hist = Histogram("h_seconds", "a histogram", registry=reg)
    gauge = Gauge("g", "a gauge", registry=reg)
    Info("build", "build info", registry=reg).info({"version": "1"})
    families = FamilyEncoder()
    for step in range(6):
        if step % 2:
            counter.labels(str(step % 3)).inc()
        if step in (2, 5):
            hist.observe(step * 0.01)
        if step == 4:
            gauge.set(float("nan"))
        assert families.encode(reg, encoder, content_type) == encoder(reg)


class _Families:
    """A collector handing out families made as GuestCollector makes them
    (Metric + Sample), values set by the test."""

    def __init__(self):
        self.values = {}
        self.extra_kind = False

    def collect(self):
        from prometheus_client.core import Metric
        from prometheus_client.samples import Sample

        v = self.values
        hist = Metric("lat_seconds", "Latency", "histogram")
        total = 0.0
        for i, le in enumerate(["1e-06", "2e-06", "4e-06", "+Inf"]):
            total += v.get(i, 0.0)
            hist.samples.append(Sample("lat_seconds_bucket", {"le": le}, total, None, None))
        hist.samples.append(Sample("lat_seconds_count", {}, total, None, None))
        counter = Metric("packets", "Packets by protocol", "counter")
        kinds = ["tcp", "udp"] + (["icmp"] if self.extra_kind else [])
        for k in kinds:
            counter.samples.append(Sample("packets_total", {"proto": k}, v.get(k, 0.0), None, None))
        gauge = Metric("run_seconds", "Run time", "gauge")
        gauge.samples.append(Sample("run_seconds", {}, v.get("run", 0.0), None, None))
        return [hist, counter, gauge]


@pytest.mark.parametrize("encoder, content_type", [
    (generate_latest, "text/plain; version=0.0.4; charset=utf-8"),
    (openmetrics_latest, "application/openmetrics-text; version=1.0.0; charset=utf-8"),
])
def test_a_family_whose_values_change_is_the_library_bytes_without_the_library(encoder, content_type):
    """Values only: the library's text of the first scrape is re-filled (its
    encoder is not called again), byte for byte what it would write, for
    values in every form it writes (exponents, NaN, infinities, negatives);
    a new series is the library's again."""
    reg = CollectorRegistry()
    families = _Families()
    reg.register(families)
    enc = FamilyEncoder()
    assert enc.encode(reg, encoder, content_type) == encoder(reg)
    first = enc.library_encodes
    assert first == 3
    values = [1.0, 3.0, 1234567.0, 12345678.0, 1.5e-7, float("nan"), float("inf"), -2.5, 0.1 + 0.2, 2.0 ** 60]
    for step, value in enumerate(values):
        families.values = {step % 4: value, "tcp": value, "udp": step, "run": value * 3}
        assert enc.encode(reg, encoder, content_type) == encoder(reg), value
    assert enc.library_encodes == first  # every change was a re-fill
    families.extra_kind = True  # a new series: the library encodes that family
    assert enc.encode(reg, encoder, content_type) == encoder(reg)
    assert enc.library_encodes == first + 1
    families.values = {"icmp": 4.0}
    assert enc.encode(reg, encoder, content_type) == encoder(reg)
    assert enc.library_encodes == first + 1


def _slot_histogram(reads):
    """The samples GuestCollector makes of a histogram without labels whose
    map is slot (u32 key) -> count (u64), read as `reads` (per object: a list
    of (slot, count) in the order the kernel gave them), scrape after scrape."""
    import struct as st
    from types import SimpleNamespace

    from wasm_bpf_cli.metrics.collector import GuestCollector, _MapMetric
    from wasm_bpf_cli.metrics.config import MetricSpec
    from wasm_bpf_cli.metrics.layout import Field, MapShape, Plan

    spec = MetricSpec("histogram", "lat_seconds", "latency", "hist", buckets="log2", multiplier=0.5)
    plan = Plan(spec, MapShape("hist", 1, 4, 8, 64), (), Field(0, 8, "int"), Field(0, 4, "int"))
    collector = GuestCollector(SimpleNamespace(info={}), [])
    metric = _MapMetric(plan, 1)
    out = []
    for objects in reads:
        raws = [(len(entries), b"".join(st.pack("<I", k) for k, _ in entries),
                 b"".join(st.pack("<Q", v) for _, v in entries)) for entries in objects]
        family = collector._histogram(metric, raws)
        out.append([(s.name, dict(s.labels), s.value) for s in family.samples])
    return out


def test_slot_histograms_from_arrays_hashes_and_several_objects():
    array = [(i, c) for i, c in enumerate([1, 0, 2, 5])]
    first, again = _slot_histogram([[array], [[(i, c * 2) for i, c in array]]])
    assert first == [("lat_seconds_bucket", {"le": "1.0"}, 1), ("lat_seconds_bucket", {"le": "2.0"}, 1),
                     ("lat_seconds_bucket", {"le": "4.0"}, 3), ("lat_seconds_bucket", {"le": "8.0"}, 8),
                     ("lat_seconds_bucket", {"le": "+Inf"}, 8), ("lat_seconds_count", {}, 8)]
    assert [s[2] for s in again] == [2, 2, 6, 16, 16, 16]  # same slots: the counts of this scrape
    # a hash map: slots in any order, some missing; then a slot added
    hashed, grown = _slot_histogram([[[(5, 1), (2, 3)]], [[(5, 1), (0, 4), (2, 3)]]])
    assert [(s[1].get("le"), s[2]) for s in hashed] == [("4.0", 3), ("32.0", 4), ("+Inf", 4), (None, 4)]
    assert [(s[1].get("le"), s[2]) for s in grown] == [("1.0", 4), ("4.0", 7), ("32.0", 8), ("+Inf", 8),
                                                       (None, 8)]
    # the map in two objects: their counts added slot by slot
    (both,) = _slot_histogram([[[(0, 1), (1, 2)], [(1, 10), (3, 1)]]])
    assert [(s[1].get("le"), s[2]) for s in both] == [("1.0", 1), ("2.0", 13), ("8.0", 14), ("+Inf", 14),
                                                      (None, 14)]
    # nothing in the map: +Inf and count at 0
    (empty,) = _slot_histogram([[[]]])
    assert empty == [("lat_seconds_bucket", {"le": "+Inf"}, 0), ("lat_seconds_count", {}, 0)]
