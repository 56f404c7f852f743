"""On-disk cache of compiled modules (native code), shared by the engines.

Key: sha256 of the module bytes as given, the engine's name and version, and
rewrite.REWRITE_VERSION (what compile() adds to a module). Directory: the
one given (`--cache-dir`, RunOptions.cache_dir), else `$WASM_BPF_CACHE_DIR`,
else `$XDG_CACHE_HOME/wasm-bpf` or `~/.cache/wasm-bpf`; mode 0700. It is used
only if this user owns it and nobody else can write to it, since a cache
entry is native code the engine will run. Entries are written to a temp file
and renamed into place, so concurrent runners never see a partial entry;
each carries a sha256 of its payload, and an entry that fails it (truncated,
corrupt) or that the engine refuses is a miss, overwritten by the next store.

Bounded: after each store, the least recently used entries (a hit touches
its entry's mtime) are deleted until the directory holds at most `max_size`
bytes (default 256 MiB; `$WASM_BPF_CACHE_MAX_SIZE`, RunOptions.cache_max_size;
0 keeps nothing). Only a miss pays for the directory scan.
"""
import logging
import os
import stat
import threading
import time
from typing import List, NamedTuple, Optional, Tuple, Union

try:  # the builtin sha256: loading OpenSSL for hashlib costs ~3 ms of startup
    from _sha256 import sha256
except ImportError:  # pragma: no cover - other Pythons
    from hashlib import sha256

log = logging.getLogger("wasm_bpf.cache")

MAGIC = b"wasm-bpf-module-cache-1\n"
DEFAULT_MAX_SIZE = 256 * 1024 * 1024
DIR_ENV = "WASM_BPF_CACHE_DIR"
MAX_SIZE_ENV = "WASM_BPF_CACHE_MAX_SIZE"
_TMP_PREFIX = ".tmp-"
_STALE_TMP_S = 3600.0  # a temp file this old belongs to a writer that died


def cache_dir() -> str:
    """This user's wasm-bpf cache directory: `$XDG_CACHE_HOME/wasm-bpf` or
    `~/.cache/wasm-bpf` (the image store, oci/store.py, lives below it)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "wasm-bpf")


def default_dir() -> str:
    """The compiled-module cache's directory when none is given:
    $WASM_BPF_CACHE_DIR, else cache_dir()."""
    return os.environ.get(DIR_ENV) or cache_dir()


def default_max_size() -> int:
    """$WASM_BPF_CACHE_MAX_SIZE (bytes, or 512K/64M/1G), else DEFAULT_MAX_SIZE.
    Raises ValueError for a value that is not a size."""
    text = os.environ.get(MAX_SIZE_ENV)
    if not text:
        return DEFAULT_MAX_SIZE
    from wasm_bpf_cli.policy import parse_size

    try:
        return parse_size(text)
    except ValueError as err:
        raise ValueError(f"{MAX_SIZE_ENV}: {err}") from None


def key(wasm: bytes, engine: str, engine_version: str, rewrite_version: object) -> str:
    h = sha256(wasm)
    h.update(f"\0{engine}\0{engine_version}\0{rewrite_version}".encode())
    return h.hexdigest()


class Entry(NamedTuple):
    name: str
    size: int  # bytes on disk
    used: float  # last store or hit (mtime)


class ModuleCache:
    """One cache directory with its size bound."""

    def __init__(self, directory: Optional[str] = None, max_size: Optional[int] = None):
        self.directory = os.fspath(directory) if directory else default_dir()
        self.max_size = default_max_size() if max_size is None else max_size
        if self.max_size < 0:
            raise ValueError(f"cache size bound {self.max_size} is negative")

    def private(self, create: bool = False) -> Optional[str]:
        """Why the directory is not used (another owner, writable by others,
        cannot be made), or None when it is usable."""
        try:
            if create:
                os.makedirs(self.directory, mode=0o700, exist_ok=True)
            st = os.stat(self.directory)
        except FileNotFoundError:
            return "does not exist"
        except OSError as err:
            return err.strerror or str(err)
        if st.st_uid != os.geteuid():
            return "owned by another user"
        if st.st_mode & 0o022:
            return "writable by other users"
        return None

    def _usable(self, create: bool) -> bool:
        why = self.private(create)
        if why is not None and (create or why != "does not exist"):
            log.debug("module cache %s is not used: %s", self.directory, why)
        return why is None

    def load(self, name: str) -> Optional[bytes]:
        if not self._usable(create=False):
            return None
        path = os.path.join(self.directory, name)
        try:
            with open(path, "rb") as f:
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
        try:
            os.utime(path)  # used now: the last to be evicted
        except OSError:
            pass
        return payload

    def store(self, name: str, payload: bytes) -> None:
        if self.max_size == 0 or not self._usable(create=True):
            return
        if len(MAGIC) + 32 + len(payload) > self.max_size:
            log.debug("module cache entry %s (%d bytes) exceeds the cache bound %d: not stored",
                      name, len(payload), self.max_size)
            return
        try:
            tmp = os.path.join(self.directory,
                               f"{_TMP_PREFIX}{os.getpid()}-{threading.get_ident()}-{name}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(MAGIC + sha256(payload).digest() + payload)
                os.replace(tmp, os.path.join(self.directory, name))
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as err:
            log.debug("cannot write module cache entry: %s", err)
            return
        self.evict(keep=name)

    def entries(self) -> List[Entry]:
        """The entries (regular files: a subdirectory such as the image
        store's is not the cache's), least recently used first."""
        out = []
        try:
            names = os.listdir(self.directory)
        except OSError:
            return out
        now = time.time()
        for name in names:
            path = os.path.join(self.directory, name)
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                continue  # removed meanwhile by another runner
            if not stat.S_ISREG(st.st_mode):
                continue
            if name.startswith(_TMP_PREFIX):
                if now - st.st_mtime > _STALE_TMP_S:
                    _remove(path)
                continue
            out.append(Entry(name, st.st_size, st.st_mtime))
        out.sort(key=lambda e: e.used)
        return out

    def evict(self, keep: Optional[str] = None) -> int:
        """Delete least recently used entries (never `keep`) until the
        directory is within max_size. Bytes freed."""
        entries = self.entries()
        total = sum(e.size for e in entries)
        freed = 0
        for entry in entries:
            if total - freed <= self.max_size:
                break
            if entry.name != keep and _remove(os.path.join(self.directory, entry.name)):
                freed += entry.size
        if freed:
            log.debug("module cache: evicted %d bytes", freed)
        return freed

    def clear(self) -> Tuple[int, int]:
        """Delete every entry: (entries removed, bytes freed)."""
        removed = freed = 0
        for entry in self.entries():
            if _remove(os.path.join(self.directory, entry.name)):
                removed += 1
                freed += entry.size
        return removed, freed


def _remove(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except OSError:
        return False


def resolve(cache: Union[bool, None, ModuleCache]) -> Optional[ModuleCache]:
    """What Engine.compile's `cache` argument means: a ModuleCache, True for
    the default one, False/None for none."""
    if isinstance(cache, ModuleCache):
        return cache
    return ModuleCache() if cache else None
