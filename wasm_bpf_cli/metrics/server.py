"""The HTTP endpoint: prometheus_client's encoders behind httptools' parser.

HTTP/1.1 with keep-alive, as Prometheus scrapes: a scraper's connection
stays open between scrapes, so a scrape costs one request, not a TCP
connection and a thread each time. Each connection has a thread asleep in
recv() until its next request; the listening thread sleeps in accept(). No
timer, no polling: nothing runs between scrapes. close() wakes the listener
(shutdown of the listening socket), shuts the open connections down and
waits for their threads, so the port is free when the runner returns.

Requests are parsed by httptools (llhttp, the parser of Node.js and
uvicorn), not http.server: scraped 100 times a second (`make bench`, case
scrape), http.server's request handling took ~140 us of CPU per scrape,
httptools' ~25 us, of a budget of 500 us (5% of a core).

The format: the Prometheus text format whenever the scraper accepts it,
OpenMetrics only to one that accepts nothing else. Prometheus lists
OpenMetrics first but takes either; prometheus_client's OpenMetrics encoder
costs 2.4 times the text encoder's CPU (390 vs 162 us for runqlat's
metrics) and these metrics carry nothing OpenMetrics adds (no exemplars, no
_created). Which text version and name escaping is prometheus_client's
choice (choose_encoder), from the scraper's own text/plain entries.
"""
import functools
import gzip
import socket
import struct
import threading
from typing import Callable, List, Optional, Set, Tuple

import httptools
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted

from wasm_bpf_cli.errors import UsageError, WasmBpfError
from wasm_bpf_cli.metrics.encoding import FamilyEncoder

IDLE_TIMEOUT_S = 300  # a keep-alive connection without a request for this long is closed
MAX_REQUEST_BYTES = 64 * 1024  # a request larger than this is refused (431)
MAX_CONNECTIONS = 64  # open connections beyond these are answered 503 and closed
# A body smaller than this goes uncompressed even to a scraper that accepts
# gzip: compressing runqlat's 3.5 KB took 70 us of CPU, a sixth of a scrape's,
# to save 2.5 KB of a local network's traffic every 15 s or so.
GZIP_MIN_BYTES = 16 * 1024

_IDLE_TIMEVAL = struct.pack("@ll", IDLE_TIMEOUT_S, 0)  # struct timeval
_REASONS = {200: "OK", 400: "Bad Request", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


def parse_address(text: str) -> Tuple[str, int]:
    """"ADDR:PORT", "[IPV6]:PORT" or ":PORT" (every interface) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--metrics {text!r}: expected ADDR:PORT (e.g. 127.0.0.1:9435 or :9435)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port)


@functools.lru_cache(maxsize=64)  # a scraper sends the same Accept header every time
def choose_format(accept: str) -> Tuple[Callable[[CollectorRegistry], bytes], str]:
    """(encoder, content type) for a scraper's Accept header: the text
    format when it accepts text/plain (or anything, or says nothing),
    OpenMetrics when that is all it accepts."""
    ranges = [part.strip() for part in accept.split(",") if part.strip()]
    accepted = [part for part in ranges if not _refused(part)]
    media = [part.split(";", 1)[0].strip().lower() for part in accepted]
    if not ranges or any(m in ("text/plain", "text/*", "*/*") for m in media):
        text = [p for p, m in zip(accepted, media) if m == "text/plain"]
        if not text or any(_version(p) in ("", "0.0.4") for p in text):
            return choose_encoder("")  # text 0.0.4
        return choose_encoder(",".join(text))
    return choose_encoder(",".join(accepted))


def _version(media_range: str) -> str:
    for param in media_range.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "version":
            return value.strip()
    return ""


def _refused(media_range: str) -> bool:
    """True for a range with q=0 ("not acceptable")."""
    for param in media_range.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                return float(value) == 0
            except ValueError:
                return False
    return False


class _Requests:
    """httptools' callbacks for one connection: the requests it completed,
    as (method, Accept, Accept-Encoding, keep-alive)."""

    def __init__(self):
        self.parser: Optional[httptools.HttpRequestParser] = None
        self.done: List[Tuple[bytes, str, str, bool]] = []
        self._accept = self._encoding = ""

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"accept":
            self._accept = value.decode("latin-1")
        elif name == b"accept-encoding":
            self._encoding = value.decode("latin-1")

    def on_message_complete(self) -> None:
        p = self.parser
        self.done.append((p.get_method(), self._accept, self._encoding, p.should_keep_alive()))
        self._accept = self._encoding = ""  # the next request's own


class MetricsEndpoint:
    """Serves `registry` at http://HOST:PORT/metrics (any path) until close()."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(16)
        except OSError as err:
            sock.close()
            raise WasmBpfError(f"--metrics {_show(host, port)}: cannot listen: "
                               f"{err.strerror or err}") from None
        self._sock = sock
        self.registry = registry
        self._encoder = FamilyEncoder()
        self.host, self.port = host, sock.getsockname()[1]
        self._closing = False
        self._lock = threading.Lock()
        self._connections: Set[socket.socket] = set()
        self._threads: Set[threading.Thread] = set()
        self._thread = threading.Thread(target=self._accept, name="wasm-bpf-metrics", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{_show(self.host, self.port)}/metrics"

    # -- connections --------------------------------------------------------
    def _accept(self) -> None:
        while not self._closing:
            try:
                conn, _addr = self._sock.accept()
            except OSError:  # close() shut the socket down
                return
            with self._lock:
                if self._closing or len(self._connections) >= MAX_CONNECTIONS:
                    busy = not self._closing
                    conn_thread = None
                else:
                    busy = False
                    self._connections.add(conn)
                    conn_thread = threading.Thread(target=self._serve, args=(conn,),
                                                   name="wasm-bpf-metrics-conn", daemon=True)
                    self._threads.add(conn_thread)
            if conn_thread is None:
                if busy:
                    _send_quietly(conn, _response(503, b"too many connections\n", keep_alive=False))
                conn.close()
                continue
            conn_thread.start()

    def _serve(self, conn: socket.socket) -> None:
        requests = _Requests()
        parser = requests.parser = httptools.HttpRequestParser(requests)
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # the answer goes out at once
            # a blocking socket whose recv() gives up after the idle timeout: one
            # recv(2) per request (settimeout() would poll(2) before each)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _IDLE_TIMEVAL)
            pending = 0  # bytes received since the last complete request
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                pending += len(data)
                try:
                    parser.feed_data(data)
                except httptools.HttpParserUpgrade:
                    conn.sendall(_response(400, b"protocol upgrades are not served here\n", keep_alive=False))
                    return
                except httptools.HttpParserError as err:
                    conn.sendall(_response(400, f"bad request: {err}\n".encode(), keep_alive=False))
                    return
                done, requests.done = requests.done, []
                if done:
                    pending = 0
                elif pending > MAX_REQUEST_BYTES:
                    conn.sendall(_response(431, b"request too large\n", keep_alive=False))
                    return
                for method, accept, encoding, keep_alive in done:
                    answer, keep_alive = self._answer(method, accept, encoding, keep_alive)
                    conn.sendall(answer)
                    if not keep_alive:
                        return
        except OSError:  # the scraper went away, an idle timeout, or close()
            return
        finally:
            with self._lock:
                self._connections.discard(conn)
                self._threads.discard(threading.current_thread())
            conn.close()

    def _answer(self, method: bytes, accept: str, encoding: str, keep_alive: bool) -> Tuple[bytes, bool]:
        """(the response, whether the connection stays open after it)."""
        if method not in (b"GET", b"HEAD"):
            return _response(405, b"only GET and HEAD are served here\n", keep_alive=False,
                             headers=(("Allow", "GET, HEAD"),)), False
        encoder, content_type = choose_format(accept)
        try:
            body = self._encoder.encode(self.registry, encoder, content_type)
        except Exception as err:  # noqa: BLE001 - a scrape must answer, not kill the connection's thread
            return _response(500, f"metrics: {type(err).__name__}: {err}\n".encode(), keep_alive=False), False
        headers = [("Content-Type", content_type)]
        if len(body) >= GZIP_MIN_BYTES and gzip_accepted(encoding):
            body = gzip.compress(body, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        return _response(200, body, keep_alive, headers, head_only=method == b"HEAD"), keep_alive

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self._thread.join(2)
        self._sock.close()
        with self._lock:
            conns, threads = list(self._connections), list(self._threads)
        for conn in conns:  # scrapers' keep-alive connections: wakes their recv()
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(2)


def _response(status: int, body: bytes, keep_alive: bool, headers=(), head_only: bool = False) -> bytes:
    """Status line, headers and body as one buffer (one send: with Nagle's
    algorithm off, two small writes would be two packets)."""
    lines = [f"HTTP/1.1 {status} {_REASONS[status]}"]
    if status != 200:
        lines.append("Content-Type: text/plain; charset=utf-8")
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append(f"Content-Length: {len(body)}")
    if not keep_alive:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body


def _send_quietly(conn: socket.socket, data: bytes) -> None:
    try:
        conn.settimeout(1)
        conn.sendall(data)
    except OSError:
        pass


def _show(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
