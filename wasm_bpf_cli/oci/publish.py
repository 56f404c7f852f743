"""Publishing: `push` a module as a Wasm OCI artifact, `sign` an image in
the registry (and in the local store, if it is there)."""
import logging
import os
from dataclasses import dataclass
from typing import Mapping, Optional, Union

from wasm_bpf_cli.errors import ModuleError, UsageError

from . import cosign
from . import mediatypes as mt
from .artifact import WASM_MAGIC, build, inspect_annotations
from .reference import Reference, parse
from .store import Store, digest_of

log = logging.getLogger("wasm_bpf.oci")


@dataclass
class Pushed:
    reference: str
    digest: str  # manifest digest
    size: int  # bytes of the module


def push(module: Union[str, bytes], text: str, title: Optional[str] = None,
         description: Optional[str] = None, source: Optional[str] = None,
         version: Optional[str] = None, annotations: Mapping[str, str] = ()) -> Pushed:
    """Push `module` (a path or the bytes) to the registry as `text`."""
    from .client import RegistryClient

    ref = parse(text)
    if ref.digest:
        raise UsageError(f"{ref}: push to a tag, not a digest (the digest is what the registry computes)")
    if isinstance(module, (bytes, bytearray)):
        wasm, name = bytes(module), "module.wasm"
    else:
        name = os.path.basename(module)
        try:
            with open(module, "rb") as f:
                wasm = f.read()
        except OSError as err:
            raise ModuleError(f"{module}: cannot read: {err.strerror}") from None
    if wasm[:4] != WASM_MAGIC:
        raise ModuleError(f"{name}: not a wasm module (bad magic)")
    notes = {mt.TITLE: title or name, mt.DESCRIPTION: description, mt.SOURCE: source,
             mt.VERSION: version, **inspect_annotations(wasm), **dict(annotations)}
    manifest, blobs = build(wasm, notes, name)
    client = RegistryClient(ref.registry)
    for digest, data in blobs.items():
        client.put_blob(ref.repository, digest, data, f"{ref}: blob {digest[:19]}")
    client.put_manifest(ref.repository, ref.tag, manifest, mt.OCI_MANIFEST, str(ref))
    return Pushed(str(ref), digest_of(manifest), len(wasm))


@dataclass
class Signed:
    reference: str
    digest: str  # the manifest digest that was signed
    signature_ref: str  # where the signature manifest went (REPO:sha256-HEX.sig)


def sign(text: str, key_path: str, store: Optional[Store] = None) -> Signed:
    """Sign the image `text` in its registry with the PEM private key at
    `key_path` (cosign key-pair format; see cosign.py)."""
    from .client import RegistryClient
    from .fetch import resolve_manifest

    ref = parse(text)
    key = cosign.load_private_key(key_path)
    client = RegistryClient(ref.registry)
    _, digest, _ = resolve_manifest(client, ref)
    payload = cosign.payload(ref.name, digest)
    signature = cosign.sign(key, payload)
    tag = cosign.signature_tag(digest)
    existing = client.get_manifest(ref.repository, tag, f"{ref.name}:{tag}")
    manifest, blobs = cosign.signature_manifest(existing[0] if existing else None, payload, signature)
    for blob_digest, data in blobs.items():
        client.put_blob(ref.repository, blob_digest, data, f"{ref.name}:{tag}: blob {blob_digest[:19]}")
    client.put_manifest(ref.repository, tag, manifest, mt.OCI_MANIFEST, f"{ref.name}:{tag}")
    _store_signature(store or Store(), digest, manifest, blobs, client, ref)
    return Signed(str(ref), digest, f"{ref.name}:{tag}")


def _store_signature(store: Store, digest: str, manifest: bytes, blobs, client, ref: Reference) -> None:
    """Keep the new signature with the image, if the store has the image, so
    that offline verification sees it."""
    if not any(record.digest == digest for _, record in store.refs()):
        return
    import json

    needed = dict(blobs)
    for layer in json.loads(manifest).get("layers", []):  # earlier signatures' payloads
        if layer["digest"] not in needed and not store.has_blob(layer["digest"]):
            needed[layer["digest"]] = client.get_blob(ref.repository, layer["digest"], 64 * 1024,
                                                      f"{ref}: a signature payload")
    needed[digest_of(manifest)] = manifest
    with store.locked():
        for blob_digest, data in needed.items():
            store.put_blob(blob_digest, data)
        store.set_signature(digest, digest_of(manifest))
