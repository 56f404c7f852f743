"""The HTTP endpoint: prometheus_client's encoders on http.server.

HTTP/1.1 with keep-alive, as Prometheus scrapes: a scraper's connection
stays open between scrapes, so a scrape costs one request, not a TCP
connection and a thread each time (`make bench`, case scrape). Each
connection has a thread that sleeps in recv() until the next request; the
listening thread sleeps in accept(). No timer, no polling: nothing runs
between scrapes. close() wakes the listener with one connection of its own,
shuts the open connections down and closes the socket, so the port is free
when the runner returns.
"""
import gzip
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Set, Tuple

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted

from wasm_bpf_cli.errors import UsageError, WasmBpfError

IDLE_TIMEOUT_S = 300  # a keep-alive connection without a request for this long is closed


def parse_address(text: str) -> Tuple[str, int]:
    """"ADDR:PORT", "[IPV6]:PORT" or ":PORT" (every interface) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--metrics {text!r}: expected ADDR:PORT (e.g. 127.0.0.1:9435 or :9435)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive (every answer has a Content-Length)
    timeout = IDLE_TIMEOUT_S
    # headers and body go out in one write (http.server flushes after each
    # request), and at once: with Nagle's algorithm, a second small write
    # would wait for the client's delayed ACK of the first (40 ms)
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    registry: CollectorRegistry

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        body = encoder(self.registry)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        if gzip_accepted(self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body, compresslevel=1)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass  # a scrape is not worth a line on stderr


class _Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    timeout = None  # handle_request() waits for a connection without a timeout

    def server_bind(self) -> None:  # HTTPServer's would look up the host's FQDN (DNS) for nothing
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request, client_address) -> None:
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        self.connections.discard(request)
        super().shutdown_request(request)


class MetricsEndpoint:
    """Serves `registry` at http://HOST:PORT/metrics (any path) until close()."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry):
        server = type("_Server", (_Server,),
                      {"address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})
        handler = type("_Handler", (_Handler,), {"registry": registry})
        try:
            self._httpd = server((host, port), handler)
        except OSError as err:
            raise WasmBpfError(f"--metrics {_show(host, port)}: cannot listen: "
                               f"{err.strerror or err}") from None
        self._httpd.connections: Set[socket.socket] = set()
        self.host, self.port = host, self._httpd.server_address[1]
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name="wasm-bpf-metrics", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{_show(self.host, self.port)}/metrics"

    def _serve(self) -> None:
        while not self._closing:
            self._httpd.handle_request()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        wake = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        try:
            socket.create_connection((wake, self.port), timeout=1).close()
        except OSError:
            pass
        self._thread.join(2)
        for conn in list(self._httpd.connections):  # scrapers' keep-alive connections
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()


def _show(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
