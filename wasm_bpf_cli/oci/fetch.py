"""Resolving a reference to a wasm module: from the local store, or from the
registry into the store, checked (digests, size, wasm magic, allowed_images,
signatures) before anything is written or run."""
import logging
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from . import cosign
from .artifact import check_module_bytes, config_of, parse_manifest, wasm_layer
from .errors import IntegrityError, NotInStore, RegistryError, UsageError, WasmBpfError
from .reference import Reference, parse
from .store import RefRecord, Store, digest_of
from .trust import Trust

log = logging.getLogger("wasm_bpf.oci")

PULL_MODES = ("always", "missing", "never")
DEFAULT_MAX_SIZE = 64 * 1024 * 1024  # bytes of a wasm layer; WASM_BPF_MAX_IMAGE_SIZE or max_size=
MAX_CONFIG = 1024 * 1024
MAX_PAYLOAD = 64 * 1024  # a simple-signing payload is a few hundred bytes


@dataclass
class Image:
    reference: str  # normalised, as stored and listed by `images`
    digest: str  # manifest digest
    wasm_digest: str
    size: int
    signed_by: Optional[str]  # the trusted key that verified its signature, if one was checked
    pulled: bool  # fetched from the registry by this call (False: from the store)
    store: Store

    def wasm(self) -> bytes:
        """The module's bytes from the store, hashed again on the way."""
        return self.store.get_blob(self.wasm_digest)


def _max_size(max_size: Optional[int]) -> int:
    import os

    if max_size is not None:
        return max_size
    from wasm_bpf_cli.policy import parse_size

    try:
        return parse_size(os.environ.get("WASM_BPF_MAX_IMAGE_SIZE", DEFAULT_MAX_SIZE))
    except ValueError as err:
        raise UsageError(f"WASM_BPF_MAX_IMAGE_SIZE: {err}") from None


def pull(text: str, mode: str = "missing", trust: Optional[Trust] = None,
         max_size: Optional[int] = None, store: Optional[Store] = None) -> Image:
    """The image `text` names, in the store and checked. mode: "always"
    (ask the registry), "missing" (only if not stored), "never" (store only)."""
    if mode not in PULL_MODES:
        raise UsageError(f"pull mode {mode!r}: expected one of {', '.join(PULL_MODES)}")
    ref = parse(text)
    trust = trust or Trust()
    store = store or Store()
    trust.check_name(ref)
    record = store.get_ref(str(ref)) if mode != "always" else None
    if record is None and mode == "never":
        raise NotInStore(f"{ref}: not in the local image store (--pull never)")
    if record is not None:
        trust.check_digest(ref, record.digest)
        signatures = _stored_signatures(store, record.digest)
        if not signatures and trust.require_signature and mode == "missing":  # signed since?
            signatures = _refresh_signatures(ref, record.digest, store)
        signed_by = trust.check_signatures(ref, record.digest, signatures)
        return Image(str(ref), record.digest, record.wasm, record.size, signed_by, False, store)
    return _fetch(ref, trust, _max_size(max_size), store)


def _stored_signatures(store: Store, digest: str) -> List[Tuple[cosign.Signature, bytes]]:
    sig_manifest = store.get_signature(digest)
    if not sig_manifest:
        return []
    return [(sig, store.get_blob(sig.payload_digest))
            for sig in cosign.signatures_in(store.get_blob(sig_manifest))]


def _refresh_signatures(ref: Reference, digest: str, store: Store):
    """Signatures made since the image was pulled (best effort: offline, the
    stored state decides)."""
    from .client import RegistryClient

    blobs: Dict[str, bytes] = {}
    try:
        sig_digest, signatures = _fetch_signatures(RegistryClient(ref.registry), ref, digest, blobs)
    except WasmBpfError as err:
        log.debug("cannot look for new signatures of %s: %s", ref, err)
        return []
    if sig_digest is not None and signatures:
        with store.locked():
            for blob_digest, data in blobs.items():
                store.put_blob(blob_digest, data)
            store.set_signature(digest, sig_digest)
    return signatures


def resolve_manifest(client, ref: Reference) -> Tuple[bytes, str, str]:
    """(manifest bytes, its digest, media type) of `ref`, checked against
    the digest asked for and the one the registry announces."""
    got = client.get_manifest(ref.repository, ref.target, str(ref))
    if got is None:
        what = "digest" if ref.digest else "tag"
        raise RegistryError(f"{ref}: not found in registry {ref.registry} (unknown {what} or repository)")
    data, media_type, announced = got
    digest = digest_of(data)
    if ref.digest and digest != ref.digest:
        raise IntegrityError(f"{ref}: manifest digest mismatch: the registry served bytes that hash to {digest}")
    if announced and announced != digest:
        raise IntegrityError(f"{ref}: manifest digest mismatch: the registry announced {announced}, "
                             f"the bytes hash to {digest}")
    return data, digest, media_type


def _fetch(ref: Reference, trust: Trust, max_size: int, store: Store) -> Image:
    from .client import RegistryClient

    client = RegistryClient(ref.registry)
    manifest, digest, media_type = resolve_manifest(client, ref)
    trust.check_digest(ref, digest)
    doc = parse_manifest(manifest, media_type, str(ref))
    layer = wasm_layer(doc, str(ref))
    if layer.size > max_size:
        raise IntegrityError(f"{ref}: the wasm layer is {layer.size} bytes, over the limit of {max_size} "
                             "(WASM_BPF_MAX_IMAGE_SIZE)")
    blobs: Dict[str, bytes] = {digest: manifest}
    wasm = _stored(store, layer.digest)  # same module under another tag, or pulled before
    if wasm is None:
        wasm = _blob(client, ref, layer.digest, layer.size, max_size, "the wasm layer")
    check_module_bytes(wasm, str(ref))
    blobs[layer.digest] = wasm
    config = config_of(doc, str(ref))
    if config is not None and config.size <= MAX_CONFIG:
        blobs[config.digest] = _blob(client, ref, config.digest, config.size, MAX_CONFIG, "the config")
    signature_digest, signatures = _fetch_signatures(client, ref, digest, blobs)
    signed_by = trust.check_signatures(ref, digest, signatures)
    record = RefRecord(digest=digest, wasm=layer.digest, size=layer.size, media_type=layer.media_type,
                       pulled=time.time())
    store.commit([str(ref)], record, blobs, signature_digest)
    log.debug("pulled %s (%s, %d bytes)", ref, digest, layer.size)
    return Image(str(ref), digest, layer.digest, layer.size, signed_by, True, store)


def _stored(store: Store, digest: str) -> Optional[bytes]:
    """The store's copy of a blob, if it has an intact one."""
    if not store.has_blob(digest):
        return None
    try:
        return store.get_blob(digest)
    except (IntegrityError, WasmBpfError):
        return None  # corrupt or unreadable: fetched again (put_blob replaces the bad copy)


def _blob(client, ref: Reference, digest: str, size: int, limit: int, what: str) -> bytes:
    data = client.get_blob(ref.repository, digest, limit, f"{ref}: {what}")
    actual = digest_of(data)
    if actual != digest:
        raise IntegrityError(f"{ref}: {what}: layer digest mismatch: the registry served bytes that hash to "
                             f"{actual[:19]}..., not {digest[:19]}...")
    if len(data) != size:
        raise IntegrityError(f"{ref}: {what}: {len(data)} bytes, the manifest says {size}")
    return data


def _fetch_signatures(client, ref: Reference, digest: str, blobs: Dict[str, bytes]):
    """(signature manifest digest or None, [(Signature, payload)]) from the
    registry; the payloads join `blobs` so that the store keeps them."""
    tag_ref = Reference(ref.registry, ref.repository, cosign.signature_tag(digest))
    got = client.get_manifest(ref.repository, tag_ref.target, f"{tag_ref}")
    if got is None:
        return None, []
    data = got[0]
    signatures = []
    for sig in cosign.signatures_in(data):
        if sig.payload_size > MAX_PAYLOAD:
            continue
        payload = _blob(client, ref, sig.payload_digest, sig.payload_size, MAX_PAYLOAD, "a signature payload")
        blobs[sig.payload_digest] = payload
        signatures.append((sig, payload))
    sig_digest = digest_of(data)
    blobs[sig_digest] = data
    return sig_digest, signatures


def load_module(text: str, mode: str = "missing", policy=None, verify_keys=(),
                max_size: Optional[int] = None) -> Tuple[Image, bytes]:
    """For the runner: the checked image and its module bytes."""
    image = pull(text, mode, Trust.of(policy, verify_keys), max_size)
    return image, image.wasm()
