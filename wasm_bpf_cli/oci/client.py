"""Talking to one registry, through the `oras` client library (requests
session, token and basic auth, URL layout, upload locations).

What this adds around oras:
- one attempt per request with a timeout: oras retries a failed request
  five times, sleeping 3 + 5 + 11 + 29 + 83 s, which makes "the registry is
  down" take two minutes to say;
- registries that challenge with `Basic` (htpasswd), answered with the
  credentials of the docker config file (credentials.py);
- every failure as one RegistryError line; response bodies read with a cap.

HTTPS with certificate checks (REQUESTS_CA_BUNDLE names a private CA),
except: a loopback registry (localhost, 127.0.0.0/8, [::1]) that does not
speak TLS is spoken to over plain HTTP (docker's rule for localhost), and
so are those listed in WASM_BPF_INSECURE_REGISTRIES (comma-separated
host:port)."""
import logging
import os
from typing import Optional, Tuple

from . import credentials
from . import mediatypes as mt
from .errors import RegistryError

log = logging.getLogger("wasm_bpf.oci")
logging.getLogger("oras").addHandler(logging.NullHandler())  # its warnings are ours to report

TIMEOUT = float(os.environ.get("WASM_BPF_REGISTRY_TIMEOUT", "30"))
MAX_MANIFEST = 4 * 1024 * 1024  # as the distribution registry's own limit
CHUNK = 64 * 1024


def is_loopback(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if not registry.startswith("[") else registry.split("]")[0] + "]"
    return host in ("localhost", "[::1]") or host.startswith("127.")


def _listed_insecure(registry: str) -> bool:
    listed = {h.strip() for h in os.environ.get("WASM_BPF_INSECURE_REGISTRIES", "").split(",") if h.strip()}
    return registry in listed


def _speaks_tls(registry: str) -> bool:
    """Whether a loopback registry answers a TLS handshake: False only when
    the server answers something else (plain HTTP). The handshake checks no
    certificate (the real requests do) and loads no CA store: it costs a
    loopback round trip, not the ~0.2 s of a verifying context."""
    import socket
    import ssl

    host, _, port = registry.rpartition(":") if not registry.endswith("]") else (registry, "", "")
    host = host.strip("[]") if port.isdigit() else registry.strip("[]")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection((host, int(port) if port.isdigit() else 443), timeout=min(TIMEOUT, 5)) as raw:
            with context.wrap_socket(raw, server_hostname=host):
                return True
    except ssl.SSLError:
        return False
    except OSError:
        return True  # unreachable: HTTPS, and the real request says why


def _oras_classes():
    """The oras client classes with our changes (imported on first use: oras
    brings requests and jsonschema, ~0.1 s)."""
    import oras.auth.token
    import oras.provider
    import requests

    class Session(requests.Session):
        def request(self, method, url, **kwargs):
            kwargs.setdefault("timeout", TIMEOUT)
            return super().request(method, url, **kwargs)

    class Auth(oras.auth.token.TokenAuth):
        """oras' token auth, plus registries whose challenge is Basic, and a
        new token when the challenge asks for another scope: oras would send
        the token it has again (a pull-scoped one for a push: refused)."""

        _scope = None

        def authenticate_request(self, original, headers, refresh=False):
            import oras.auth.utils

            challenge = original.headers.get("Www-Authenticate", "")
            if challenge.lower().startswith("basic"):
                if not getattr(self, "_basic_auth", None):
                    return headers or {}, False
                headers = dict(headers or {})
                headers["Authorization"] = f"Basic {self._basic_auth}"
                return headers, True
            scope = oras.auth.utils.parse_auth_header(challenge).scope
            if self.token is not None and scope != self._scope:
                refresh = True
            headers, changed = super().authenticate_request(original, headers, refresh)
            if changed:
                self._scope = scope
            return headers, changed

    class Oras(oras.provider.Registry):
        do_request = oras.provider.Registry.do_request.__wrapped__  # one attempt, no retry sleeps

    return Session, Auth, Oras


class RegistryClient:
    def __init__(self, registry: str, user: Optional[str] = None, password: Optional[str] = None):
        from http.cookiejar import DefaultCookiePolicy

        self.registry = registry
        Session, Auth, Oras = _oras_classes()
        session = Session()
        insecure = _listed_insecure(registry) or (is_loopback(registry) and not _speaks_tls(registry))
        self._oras = Oras(hostname=registry, insecure=insecure)
        self._oras.session = session
        self._oras.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        auth = Auth()
        auth.session, auth.prefix, auth._tls_verify = self._oras.session, self._oras.prefix, True
        self._oras.auth = auth
        self.user = user
        if user is None:
            found = credentials.lookup(registry)
            if found:
                user, password = found
                self.user = user
            else:
                self._credential_helper(auth, credentials.load())
        if user is not None:
            auth.set_basic_auth(user, password or "")

    def _credential_helper(self, auth, config) -> None:
        helper = (config.get("credHelpers") or {}).get(self.registry) or config.get("credsStore")
        if helper:
            found = auth._get_auth_from_creds_store(helper, self.registry)
            if found:
                auth._basic_auth = found
                self.user = "(credential helper)"

    # -- requests ---------------------------------------------------------
    def _url(self, repository: str, kind: str, target: str = "") -> str:
        return f"{self._oras.prefix}://{self.registry}/v2/{repository}/{kind}/{target}"

    def _request(self, method: str, url: str, **kwargs):
        import requests

        try:
            return self._oras.do_request(url, method, **kwargs)
        except requests.exceptions.SSLError as err:
            raise RegistryError(f"registry {self.registry}: TLS failed: {_reason(err)}") from None
        except requests.exceptions.Timeout:
            raise RegistryError(f"cannot reach registry {self.registry}: timed out after {TIMEOUT:g} s") from None
        except requests.exceptions.ConnectionError as err:
            raise RegistryError(f"cannot reach registry {self.registry}: {_reason(err)}") from None
        except requests.exceptions.RequestException as err:
            raise RegistryError(f"registry {self.registry}: {_reason(err)}") from None
        except ValueError:  # oras: a 401 it could not answer (no credentials)
            raise RegistryError(f"registry {self.registry} asks for credentials: "
                                f"run `wasm-bpf login {self.registry}`") from None

    def _check(self, response, what: str, ok=(200,)) -> None:
        code = response.status_code
        if code in ok:
            return
        if code == 401:
            who = f" for user {self.user!r}" if self.user else ""
            raise RegistryError(f"registry {self.registry} refused the credentials{who} (HTTP 401): "
                                f"run `wasm-bpf login {self.registry}`")
        if code == 403:
            raise RegistryError(f"registry {self.registry}: access to {what} denied (HTTP 403)")
        if code == 404:
            raise RegistryError(f"{what}: not found in registry {self.registry}")
        raise RegistryError(f"registry {self.registry}: {what}: HTTP {code} {_error_text(response)}")

    def ping(self) -> None:
        """Check that the registry answers and accepts our credentials."""
        response = self._request("GET", f"{self._oras.prefix}://{self.registry}/v2/")
        self._check(response, "the API root")

    # -- manifests --------------------------------------------------------
    def get_manifest(self, repository: str, target: str, what: str) -> Optional[Tuple[bytes, str, str]]:
        """(bytes, media type, Docker-Content-Digest header or "") of a
        manifest, or None if the registry has none by that name."""
        accept = ", ".join(mt.MANIFESTS + mt.INDEXES)
        response = self._request("GET", self._url(repository, "manifests", target),
                                 headers={"Accept": accept}, stream=True)
        with response:
            if response.status_code == 404:
                return None
            self._check(response, what)
            data = _read_capped(response, MAX_MANIFEST, f"{what}: the manifest")
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            return data, media_type, response.headers.get("Docker-Content-Digest", "")

    def put_manifest(self, repository: str, target: str, data: bytes, media_type: str, what: str) -> str:
        response = self._request("PUT", self._url(repository, "manifests", target), data=data,
                                 headers={"Content-Type": media_type})
        self._check(response, what, ok=(200, 201))
        return response.headers.get("Docker-Content-Digest", "")

    # -- blobs ------------------------------------------------------------
    def get_blob(self, repository: str, digest: str, limit: int, what: str) -> bytes:
        """A blob's bytes; RegistryError past `limit` bytes (never read further)."""
        from .errors import IntegrityError

        response = self._request("GET", self._url(repository, "blobs", digest), stream=True)
        with response:
            self._check(response, what)
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > limit:
                raise IntegrityError(f"{what}: {length} bytes, over the limit of {limit}")
            return _read_capped(response, limit, what)

    def has_blob(self, repository: str, digest: str) -> bool:
        response = self._request("HEAD", self._url(repository, "blobs", digest))
        return response.status_code == 200

    def put_blob(self, repository: str, digest: str, data: bytes, what: str) -> None:
        if self.has_blob(repository, digest):
            return
        container = self._oras.get_container(f"{self.registry}/{repository}")
        response = self._request("POST", self._url(repository, "blobs", "uploads/"),
                                 headers={"Content-Type": "application/octet-stream", "Content-Length": "0"})
        self._check(response, f"{what}: starting the upload", ok=(202,))
        location = self._oras._get_location(response, container)
        if not location:
            raise RegistryError(f"registry {self.registry}: no upload location for {what}")
        import oras.utils

        response = self._request("PUT", oras.utils.append_url_params(location, {"digest": digest}),
                                 data=data, headers={"Content-Type": "application/octet-stream",
                                                     "Content-Length": str(len(data))})
        self._check(response, what, ok=(201,))


def _read_capped(response, limit: int, what: str) -> bytes:
    from .errors import IntegrityError

    import requests

    chunks, total = [], 0
    try:
        for chunk in response.iter_content(CHUNK):
            total += len(chunk)
            if total > limit:
                raise IntegrityError(f"{what}: larger than the limit of {limit} bytes")
            chunks.append(chunk)
    except requests.exceptions.RequestException as err:
        raise RegistryError(f"{what}: the transfer failed: {_reason(err)}") from None
    return b"".join(chunks)


def _reason(err: Exception) -> str:
    text = str(err)
    for known in ("Connection refused", "Name or service not known", "No route to host",
                  "Temporary failure in name resolution", "certificate verify failed",
                  "Connection reset by peer", "timed out"):
        if known in text:
            return known[0].lower() + known[1:]
    return type(err).__name__


def _error_text(response) -> str:
    try:
        errors = response.json().get("errors") or []
        return "; ".join(str(e.get("message", "")) for e in errors if isinstance(e, dict))[:200]
    except (ValueError, AttributeError):
        return (response.reason or "")[:200]


def login(registry: str, user: str, password: str) -> str:
    """Check the credentials against the registry, then store them; the
    config file's path. Nothing is written if the registry refuses them."""
    host = credentials.registry_host(registry)
    RegistryClient(host, user, password).ping()
    return credentials.store(host, user, password)


def logout(registry: str) -> bool:
    """Forget the registry's credentials; False if there were none."""
    return credentials.remove(credentials.registry_host(registry))
