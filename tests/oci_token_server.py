"""A bearer-token server for a docker-registry configured with `auth: token`
(the scheme ghcr.io and Docker Hub use): GET /token?service=..&scope=..
with basic auth returns {"token": JWT}, an ES256 JWT whose x5c header holds
the certificate the registry's rootcertbundle trusts, granting exactly the
scopes asked for. It records the scopes each token was issued for."""
import base64
import json
import os
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    def __init__(self, directory: str, user: str, password: str, service: str = "wasm-bpf-test",
                 issuer: str = "wasm-bpf-test-issuer"):
        self.user, self.password, self.service, self.issuer = user, password, service, issuer
        self.key_path = os.path.join(directory, "token.key")
        self.cert_path = os.path.join(directory, "token.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", self.key_path, "-out", self.cert_path, "-days", "2",
                        "-subj", "/CN=wasm-bpf test token issuer"], check=True, capture_output=True)
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        with open(self.key_path, "rb") as f:
            self._key = serialization.load_pem_private_key(f.read(), None)
        with open(self.cert_path, "rb") as f:
            self._cert_der = x509.load_pem_x509_certificate(f.read()).public_bytes(serialization.Encoding.DER)
        self.issued = []  # the scopes of each token, in order
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlparse(self.path)
                query = parse_qs(url.query)
                expected = "Basic " + base64.b64encode(f"{server.user}:{server.password}".encode()).decode()
                if url.path != "/token" or self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                scopes = query.get("scope", [])
                body = json.dumps({"token": server._token(scopes)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self._httpd.server_address[1]}/token"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def _token(self, scopes) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        self.issued.append(sorted(scopes))
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self._cert_der).decode()]}
        claims = {"iss": self.issuer, "sub": self.user, "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def registry_auth(self) -> str:
        """The `auth:` section of the registry's config."""
        return (f"auth:\n  token:\n    realm: {self.realm}\n    service: {self.service}\n"
                f"    issuer: {self.issuer}\n    rootcertbundle: {self.cert_path}\n")

    def __enter__(self) -> "TokenServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
