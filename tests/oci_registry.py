"""A real OCI registry for the tests: Debian's `docker-registry` (the CNCF
distribution registry), on a free loopback port, its storage in a temporary
directory, optionally with htpasswd basic auth and HTTPS (a certificate
from a self-signed CA made with openssl); stopped by the test.

    with Registry(tmp_path) as reg:          # reg.host == "127.0.0.1:PORT"
        ...
        reg.blob_file(digest)                # the file the registry serves a blob from
"""
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from typing import Optional

from conftest import skip_or_fail

BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_ca_and_cert(directory: str):
    """(ca.pem, cert.pem, key.pem): a self-signed CA and a server certificate
    it signed for 127.0.0.1 and localhost."""
    ca_key, ca, key, csr, cert = (os.path.join(directory, n) for n in
                                  ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    ext = os.path.join(directory, "san.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for cmd in (["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=wasm-bpf test CA"],
                ["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
                ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                 "-out", cert, "-days", "2", "-extfile", ext]):
        subprocess.run(cmd, check=True, capture_output=True)
    return ca, cert, key


class Registry:
    def __init__(self, workdir, user: Optional[str] = None, password: Optional[str] = None,
                 tls: bool = False, auth_config: str = ""):
        if not os.path.exists(BINARY):
            skip_or_fail("docker-registry is not installed (make deps installs it)")
        self.dir = os.path.join(str(workdir), f"registry-{free_port()}")
        os.makedirs(self.dir)
        self.user, self.password = user, password
        self.auth_config = auth_config  # an `auth:` section of its own (e.g. a token server's)
        self.ca = self.tls = None
        if tls:  # HTTPS with a certificate from a CA of its own (self.ca)
            self.ca, cert, key = make_ca_and_cert(self.dir)
            self.tls = (cert, key)
        self.port = None
        self.proc = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _config(self) -> str:
        auth = self.auth_config
        if self.user:
            htpasswd = os.path.join(self.dir, "htpasswd")
            out = subprocess.run(["htpasswd", "-Bbn", self.user, self.password], capture_output=True,
                                 text=True, check=True).stdout
            with open(htpasswd, "w") as f:
                f.write(out)
            auth = f"auth:\n  htpasswd:\n    realm: wasm-bpf-test\n    path: {htpasswd}\n"
        tls = f"  tls:\n    certificate: {self.tls[0]}\n    key: {self.tls[1]}\n" if self.tls else ""
        path = os.path.join(self.dir, "config.yml")
        with open(path, "w") as f:
            f.write("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {self.dir}/data\n"
                    "  delete:\n    enabled: true\n"
                    f"http:\n  addr: 127.0.0.1:{self.port}\n{tls}{auth}")
        return path

    def start(self) -> "Registry":
        """Start (again, on the same port and storage after stop()). The first
        start takes another free port if someone else took the chosen one
        between choosing and binding (the machine is shared)."""
        for attempt in range(5):
            first = self.port is None
            self.port = self.port or free_port()
            if self._start_once():
                return self
            if not first or "address already in use" not in self.log():
                raise RuntimeError(f"docker-registry did not start: {self.log()}")
            self.port = None
        raise RuntimeError(f"docker-registry found no free port: {self.log()}")

    def _start_once(self) -> bool:
        log = open(os.path.join(self.dir, "registry.log"), "ab")
        self.proc = subprocess.Popen([BINARY, "serve", self._config()], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 15
        scheme, context = "http", None
        if self.tls:
            import ssl

            scheme, context = "https", ssl.create_default_context(cafile=self.ca)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            try:
                urllib.request.urlopen(f"{scheme}://{self.host}/v2/", timeout=1, context=context)
                return True
            except urllib.error.HTTPError:
                return True  # 401: up, with auth
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("docker-registry did not start in 15 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self) -> str:
        with open(os.path.join(self.dir, "registry.log"), errors="replace") as f:
            return f.read()[-2000:]

    def blob_file(self, digest: str) -> str:
        hexpart = digest.split(":", 1)[1]
        return os.path.join(self.dir, "data", "docker", "registry", "v2", "blobs", "sha256",
                            hexpart[:2], hexpart, "data")

    def __enter__(self) -> "Registry":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
