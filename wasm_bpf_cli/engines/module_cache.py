"""On-disk cache of compiled modules (native code), shared by the engines.

Key: sha256 of the module bytes as given, the engine's name and version, and
rewrite.REWRITE_VERSION (what compile() adds to a module). Directory:
`$XDG_CACHE_HOME/wasm-bpf` or `~/.cache/wasm-bpf`, mode 0700; it is used only
if this user owns it and nobody else can write to it, since a cache entry is
native code the engine will run. Entries are written to a temp file and
renamed into place, so concurrent runners never see a partial entry; each
carries a sha256 of its payload, and an entry that fails it (truncated,
corrupt) or that the engine refuses is a miss, overwritten by the next store.
"""
import logging
import os
import threading
from typing import Optional

try:  # the builtin sha256: loading OpenSSL for hashlib costs ~3 ms of startup
    from _sha256 import sha256
except ImportError:  # pragma: no cover - other Pythons
    from hashlib import sha256

log = logging.getLogger("wasm_bpf.cache")

MAGIC = b"wasm-bpf-module-cache-1\n"


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "wasm-bpf")


def key(wasm: bytes, engine: str, engine_version: str, rewrite_version: int) -> str:
    h = sha256(wasm)
    h.update(f"\0{engine}\0{engine_version}\0{rewrite_version}".encode())
    return h.hexdigest()


def _safe_dir(create: bool) -> Optional[str]:
    path = cache_dir()
    try:
        if create:
            os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path)
    except OSError:
        return None
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        log.debug("module cache %s is not private to this user: not used", path)
        return None
    return path


def load(name: str) -> Optional[bytes]:
    path = _safe_dir(create=False)
    if path is None:
        return None
    try:
        with open(os.path.join(path, name), "rb") as f:
            raw = f.read()
    except OSError:
        return None
    head = len(MAGIC) + 32
    if raw[:len(MAGIC)] != MAGIC or len(raw) < head:
        return None
    payload = raw[head:]
    if sha256(payload).digest() != raw[len(MAGIC):head]:
        log.debug("module cache entry %s is corrupt: ignored", name)
        return None
    return payload


def store(name: str, payload: bytes) -> None:
    path = _safe_dir(create=True)
    if path is None:
        return
    try:
        tmp = os.path.join(path, f".tmp-{os.getpid()}-{threading.get_ident()}-{name}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + sha256(payload).digest() + payload)
            os.replace(tmp, os.path.join(path, name))
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as err:
        log.debug("cannot write module cache entry: %s", err)
