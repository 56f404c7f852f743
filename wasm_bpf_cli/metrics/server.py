"""The HTTP endpoint: prometheus_client's WSGI app on a threading server.

The server thread sleeps in accept() until a scraper connects (no timer,
no polling); close() wakes it with one connection of its own, then closes
the listening socket, so the port is free when the runner returns.
"""
import socket
import threading
from typing import Tuple
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from socketserver import ThreadingMixIn

from wasm_bpf_cli.errors import UsageError, WasmBpfError


def parse_address(text: str) -> Tuple[str, int]:
    """"ADDR:PORT", "[IPV6]:PORT" or ":PORT" (every interface) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--metrics {text!r}: expected ADDR:PORT (e.g. 127.0.0.1:9435 or :9435)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # a scrape is not worth a line on stderr


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in progress does not hold up the exit
    timeout = None  # handle_request() waits for a connection without a timeout


class MetricsEndpoint:
    """Serves `registry` at http://HOST:PORT/metrics (any path) until close()."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry):
        server = type("_Server", (_Server,),
                      {"address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})
        try:
            self._httpd = make_server(host, port, make_wsgi_app(registry), server, _Quiet)
        except OSError as err:
            raise WasmBpfError(f"--metrics {_show(host, port)}: cannot listen: "
                               f"{err.strerror or err}") from None
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
        self._httpd.server_close()


def _show(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
