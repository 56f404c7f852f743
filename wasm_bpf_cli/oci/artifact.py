"""The wasm artifact's documents: what `push` writes and how `pull` finds
the module in what other tools pushed."""
import json
import time
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple

from . import mediatypes as mt
from .errors import IntegrityError
from .store import digest_of

WASM_MAGIC = b"\0asm"


@dataclass
class Layer:
    media_type: str
    digest: str
    size: int


def parse_manifest(data: bytes, media_type: str, what: str) -> Dict:
    """The manifest as a dict; IntegrityError for anything but a single-image
    manifest (an index, a schema 1 manifest, not JSON)."""
    try:
        doc = json.loads(data)
    except ValueError:
        raise IntegrityError(f"{what}: the registry served a manifest that is not JSON") from None
    if not isinstance(doc, dict):
        raise IntegrityError(f"{what}: the manifest is not a JSON object")
    kind = doc.get("mediaType") or media_type
    if kind in mt.INDEXES or "manifests" in doc:
        raise IntegrityError(f"{what} is an image index (several platforms), not a wasm artifact: "
                             "pull one of its manifests by digest")
    if doc.get("schemaVersion") != 2 or not isinstance(doc.get("layers"), list):
        raise IntegrityError(f"{what}: not an OCI or docker v2 image manifest")
    return doc


def _descriptor(d, what: str) -> Layer:
    if not isinstance(d, dict) or not isinstance(d.get("digest"), str) or \
            not isinstance(d.get("size"), int) or d["size"] < 0:
        raise IntegrityError(f"{what}: a descriptor in the manifest is malformed")
    return Layer(str(d.get("mediaType", "")), d["digest"], d["size"])


def config_of(doc: Dict, what: str) -> Optional[Layer]:
    return _descriptor(doc["config"], what) if isinstance(doc.get("config"), dict) else None


def wasm_layer(doc: Dict, what: str) -> Layer:
    """The one wasm layer of a manifest in any layout `pull` accepts
    (mediatypes.WASM_LAYERS); IntegrityError naming what it holds instead."""
    layers = [_descriptor(d, what) for d in doc["layers"]]
    wasm = [l for l in layers if l.media_type in mt.WASM_LAYERS]
    if len(wasm) == 1:
        return wasm[0]
    if len(wasm) > 1:
        raise IntegrityError(f"{what}: {len(wasm)} wasm layers; a wasm-bpf guest is one module")
    kinds = ", ".join(sorted({l.media_type or "?" for l in layers})) or "no layers"
    raise IntegrityError(f"{what} is not a wasm artifact (its layers: {kinds})")


def check_module_bytes(data: bytes, what: str) -> None:
    if data[:4] != WASM_MAGIC:
        raise IntegrityError(f"{what}: the layer is not a wasm module (bad magic)")


def inspect_annotations(wasm: bytes) -> Dict[str, str]:
    """What `inspect` knows, as manifest annotations (compact JSON strings):
    programs (name, section, type, attach type), maps, host imports."""
    from wasm_bpf_cli.inspect import InspectError, inspect_bytes

    try:
        report = inspect_bytes(wasm, "module")
    except InspectError:
        return {}
    programs, maps = [], []
    for obj in report.get("objects", []):
        for p in obj.get("programs", []):
            programs.append({"name": p["name"], "section": p["section"], "type": p.get("prog_type"),
                             "attach": p.get("expected_attach_type")})
        maps.extend({"name": m["name"], "type": m["type"]} for m in obj.get("maps", []))
    imports = [f"{module}.{e['name']}" for module, entries in report.get("imports", {}).items()
               for e in entries]
    dump = lambda v: json.dumps(v, separators=(",", ":"))  # noqa: E731
    return {mt.PROGRAMS: dump(programs), mt.MAPS: dump(maps), mt.IMPORTS: dump(imports)}


def build(wasm: bytes, annotations: Mapping[str, str], title: str) -> Tuple[bytes, Dict[str, bytes]]:
    """(manifest bytes, {digest: blob}) of a CNCF Wasm OCI artifact."""
    layer_digest = digest_of(wasm)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    config = json.dumps({"created": created, "architecture": "wasm", "os": "wasip1",
                         "layerDigests": [layer_digest]}, separators=(",", ":")).encode()
    notes = {mt.CREATED: created, **{k: v for k, v in annotations.items() if v is not None}}
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.WASM_CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": mt.WASM_LAYER, "digest": layer_digest, "size": len(wasm),
                    "annotations": {mt.TITLE: title}}],
        "annotations": notes,
    }
    return (json.dumps(manifest, separators=(",", ":")).encode(),
            {layer_digest: wasm, digest_of(config): config})
