"""Registry credentials in the docker config file (`$DOCKER_CONFIG/config.json`,
default `~/.docker/config.json`): the file docker, podman, oras and cosign
read. `login` adds `auths[REGISTRY].auth` (base64 "user:password"); `logout`
removes it; every other key of the file is kept. Credential helpers
(credHelpers, credsStore) configured there are used for reading through the
registry client library (oras)."""
import base64
import json
import os
from typing import Dict, Optional, Tuple

from wasm_bpf_cli.errors import WasmBpfError

from .store import write_atomic


def config_path() -> str:
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(base, "config.json")


def load() -> Dict:
    path = config_path()
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read() or b"{}")
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise WasmBpfError(f"{path}: cannot read credentials: {getattr(err, 'strerror', None) or err}") from None
    if not isinstance(data, dict):
        raise WasmBpfError(f"{path}: not a JSON object")
    return data


def _save(data: Dict) -> None:
    path = config_path()
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        write_atomic(path, (json.dumps(data, indent="\t") + "\n").encode(), 0o600)
    except OSError as err:
        raise WasmBpfError(f"{path}: cannot write credentials: {err.strerror or err}") from None


def _aliases(registry: str):
    yield registry
    for a, b in (("localhost", "127.0.0.1"), ("127.0.0.1", "localhost")):
        if registry.split(":")[0] == a:
            yield b + registry[len(a):]


def lookup(registry: str) -> Optional[Tuple[str, str]]:
    """(user, password) stored inline for `registry`, or None."""
    auths = load().get("auths") or {}
    for name in _aliases(registry):
        entry = auths.get(name) or auths.get(f"https://{name}") or auths.get(f"http://{name}")
        if isinstance(entry, dict) and entry.get("auth"):
            try:
                user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                continue
            if sep:
                return user, password
    return None


def store(registry: str, user: str, password: str) -> str:
    data = load()
    auths = data.setdefault("auths", {})
    entry = auths.setdefault(registry, {})
    entry["auth"] = base64.b64encode(f"{user}:{password}".encode()).decode()
    _save(data)
    return config_path()


def remove(registry: str) -> bool:
    data = load()
    auths = data.get("auths") or {}
    removed = [name for name in _aliases(registry) if auths.pop(name, None) is not None]
    if removed:
        _save(data)
    return bool(removed)


def registry_host(text: str) -> str:
    """`host[:port]` from what a user typed for a registry (a scheme and a
    trailing slash are dropped); UsageError if it is not one."""
    from wasm_bpf_cli.errors import UsageError

    from .reference import _DOMAIN

    host = text.split("://", 1)[-1].rstrip("/")
    if not _DOMAIN.match(host):
        raise UsageError(f"{text!r} is not a registry host[:port]")
    return host
