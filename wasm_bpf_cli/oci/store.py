"""The local content-addressed store of pulled images.

    $XDG_CACHE_HOME/wasm-bpf/oci/      (~/.cache/wasm-bpf/oci), mode 0700
      blobs/sha256/<hex>               manifests, configs, wasm layers, signature payloads
      refs/<quoted reference>          JSON: the manifest digest a reference resolved to, ...
      signatures/<manifest hex>        the digest of that image's cosign signature manifest
      lock                             flock()ed while a pull commits or rmi collects

Every file is written to a temporary name in its directory and renamed into
place, so a reader (or a pull killed half-way) never sees a partial file.
A pull writes nothing until every digest and signature has been checked,
then the blobs, then the signature pointer, the reference last: whatever is
visible under refs/ is complete. Blobs are hashed again when read, so a
corrupted store is an error, never a different module.
"""
import contextlib
import fcntl
import json
import os
import time
import urllib.parse
from dataclasses import asdict, dataclass
from typing import Dict, Iterator, List, Optional, Tuple

try:  # the builtin sha256 (see engines/module_cache.py)
    from _sha256 import sha256
except ImportError:  # pragma: no cover
    from hashlib import sha256

from .errors import IntegrityError, WasmBpfError


def digest_of(data: bytes) -> str:
    return "sha256:" + sha256(data).hexdigest()


@dataclass
class RefRecord:
    digest: str  # manifest digest the reference resolved to
    wasm: str  # digest of the wasm layer
    size: int  # bytes of the wasm layer
    media_type: str  # the wasm layer's media type
    pulled: float  # time.time() of the pull


def default_root() -> str:
    from wasm_bpf_cli.engines.module_cache import cache_dir

    return os.path.join(cache_dir(), "oci")


def _hex(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise IntegrityError(f"unsupported digest {digest!r} (only sha256 is)")
    return hexpart


def write_atomic(path: str, data: bytes, mode: int = 0o600) -> None:
    """`data` at `path`, all or nothing (temporary file + fsync + rename)."""
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{time.monotonic_ns()}-{os.path.basename(path)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Store:
    def __init__(self, root: Optional[str] = None):
        self.root = root or default_root()

    # -- paths ------------------------------------------------------------
    def _dir(self, *parts: str, create: bool = False) -> str:
        path = os.path.join(self.root, *parts)
        if create:
            try:
                os.makedirs(self.root, mode=0o700, exist_ok=True)
                st = os.stat(self.root)
                if st.st_uid != os.geteuid():
                    raise WasmBpfError(f"image store {self.root} belongs to uid {st.st_uid}, not to this "
                                       f"user (uid {os.geteuid()}): not used")
                if st.st_mode & 0o022:
                    raise WasmBpfError(f"image store {self.root} is writable by other users: not used "
                                       f"(chmod go-w {self.root})")
                os.makedirs(path, mode=0o700, exist_ok=True)
            except OSError as err:
                raise WasmBpfError(f"image store {self.root}: {err.strerror or err}") from None
        return path

    def blob_path(self, digest: str) -> str:
        return os.path.join(self.root, "blobs", "sha256", _hex(digest))

    def _ref_path(self, ref: str) -> str:
        return os.path.join(self.root, "refs", urllib.parse.quote(ref, safe=""))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise commits and garbage collection between processes."""
        self._dir(create=True)
        fd = os.open(os.path.join(self.root, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- blobs ------------------------------------------------------------
    def has_blob(self, digest: str) -> bool:
        return os.path.isfile(self.blob_path(digest))

    def get_blob(self, digest: str) -> bytes:
        """The blob's bytes, checked against its digest."""
        path = self.blob_path(digest)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise IntegrityError(f"the image store lacks blob {digest}: pull the image again") from None
        except OSError as err:
            raise WasmBpfError(f"image store: cannot read {path}: {err.strerror}") from None
        if digest_of(data) != digest:
            raise IntegrityError(f"the image store's copy of {digest} is corrupt: "
                                 "remove the image (wasm-bpf rmi) and pull it again")
        return data

    def put_blob(self, digest: str, data: bytes) -> None:
        if digest_of(data) != digest:  # callers verified already; never store a lie
            raise IntegrityError(f"refusing to store bytes that do not match {digest}")
        path = self.blob_path(digest)
        try:
            with open(path, "rb") as f:
                if digest_of(f.read()) == digest:
                    return  # already there, intact; a corrupt copy is replaced
        except OSError:
            pass
        self._dir("blobs", "sha256", create=True)
        write_atomic(path, data, 0o644)

    # -- references -------------------------------------------------------
    def get_ref(self, ref: str) -> Optional[RefRecord]:
        try:
            with open(self._ref_path(ref), "rb") as f:
                return RefRecord(**json.loads(f.read()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError):
            return None  # unreadable: as if never pulled; the next pull rewrites it

    def refs(self) -> List[Tuple[str, RefRecord]]:
        try:
            names = sorted(os.listdir(os.path.join(self.root, "refs")))
        except OSError:
            return []
        out = []
        for name in names:
            if name.startswith(".tmp-"):
                continue
            ref = urllib.parse.unquote(name)
            record = self.get_ref(ref)
            if record is not None:
                out.append((ref, record))
        return out

    def remove_ref(self, ref: str) -> bool:
        try:
            os.unlink(self._ref_path(ref))
            return True
        except FileNotFoundError:
            return False

    def get_signature(self, manifest_digest: str) -> Optional[str]:
        """Digest of the cosign signature manifest stored with this image."""
        try:
            with open(os.path.join(self.root, "signatures", _hex(manifest_digest))) as f:
                return f.read().strip() or None
        except OSError:
            return None

    # -- writing ----------------------------------------------------------
    def commit(self, refs: List[str], record: RefRecord, blobs: Dict[str, bytes],
               signature: Optional[str]) -> None:
        """Store a checked image: blobs, its signature pointer, then each
        reference (last, so that a visible reference is always complete)."""
        with self.locked():
            for digest, data in blobs.items():
                self.put_blob(digest, data)
            if signature is not None:
                self.set_signature(record.digest, signature)
            self._dir("refs", create=True)
            for ref in refs:
                write_atomic(self._ref_path(ref), json.dumps(asdict(record)).encode())

    def set_signature(self, manifest_digest: str, signature: str) -> None:
        self._dir("signatures", create=True)
        write_atomic(os.path.join(self.root, "signatures", _hex(manifest_digest)), signature.encode())

    def collect(self) -> int:
        """Delete blobs and signature pointers no reference leads to; the
        number of blobs deleted. Call with the lock held."""
        live_manifests = {record.digest for _, record in self.refs()}
        live = set()
        for manifest in live_manifests:
            live |= self._closure(manifest)
            sig = self.get_signature(manifest)
            if sig:
                live |= self._closure(sig)
        removed = 0
        blob_dir = os.path.join(self.root, "blobs", "sha256")
        for name in _listdir(blob_dir):
            if "sha256:" + name not in live:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(blob_dir, name))
                    removed += 1
        sig_dir = os.path.join(self.root, "signatures")
        for name in _listdir(sig_dir):
            if "sha256:" + name not in live_manifests:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(sig_dir, name))
        self._remove_stale_temporaries()
        return removed

    def _remove_stale_temporaries(self, age: float = 3600) -> None:
        """Temporary files of writers killed before their rename (an hour
        old: no live writer takes that long)."""
        for sub in ("blobs/sha256", "refs", "signatures"):
            directory = os.path.join(self.root, sub)
            try:
                names = [n for n in os.listdir(directory) if n.startswith(".tmp-")]
            except OSError:
                continue
            for name in names:
                path = os.path.join(directory, name)
                with contextlib.suppress(OSError):
                    if time.time() - os.lstat(path).st_mtime > age:
                        os.unlink(path)

    def _closure(self, manifest_digest: str) -> set:
        """The manifest and every blob it names (read without failing: GC
        keeps what it cannot parse out of caution only for that manifest)."""
        out = {manifest_digest}
        try:
            with open(self.blob_path(manifest_digest), "rb") as f:
                doc = json.loads(f.read())
            descriptors = [doc.get("config") or {}] + list(doc.get("layers") or [])
            out |= {d["digest"] for d in descriptors if isinstance(d, dict) and "digest" in d}
        except (OSError, ValueError, TypeError, IntegrityError):
            pass
        return out


def _listdir(path: str) -> List[str]:
    try:
        return [n for n in os.listdir(path) if not n.startswith(".")]
    except OSError:
        return []
