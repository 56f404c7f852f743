"""Signatures in cosign's key-pair format (cosign specs/SIGNATURE_SPEC.md),
written from the specification with `cryptography`:

- the signed payload is a "simple signing" JSON document (media type
  application/vnd.dev.cosign.simplesigning.v1+json) whose
  critical.image.docker-manifest-digest names the image's manifest digest
  and critical.type is "cosign container image signature";
- the signature is ECDSA P-256 over SHA-256 of the payload bytes, ASN.1 DER,
  base64, in the payload layer's annotation dev.cosignproject.cosign/signature;
- signatures of the image `REPO@sha256:HEX` live in an OCI image manifest
  tagged `REPO:sha256-HEX.sig`, one payload layer per signature.

Public keys are PEM (SubjectPublicKeyInfo, what `cosign generate-key-pair`
writes as cosign.pub); private keys PEM PKCS#8 or SEC1, optionally
encrypted, or cosign's own cosign.key (scrypt + NaCl secretbox, needs
PyNaCl); the password comes from COSIGN_PASSWORD, as cosign reads it.

What verification checks: the payload blob matches its digest (done by the
caller), the signature verifies with a trusted key, the payload's type is
cosign's, and its manifest digest is the image's. The docker-reference
claim is not checked (the spec says it is ignored)."""
import base64
import json
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from . import mediatypes as mt
from .errors import SignatureError
from .store import digest_of


def signature_tag(manifest_digest: str) -> str:
    """sha256:HEX -> sha256-HEX.sig"""
    return manifest_digest.replace(":", "-") + ".sig"


def payload(repository_name: str, manifest_digest: str) -> bytes:
    """The simple-signing payload cosign writes (same keys and order)."""
    doc = {"critical": {"identity": {"docker-reference": repository_name},
                        "image": {"docker-manifest-digest": manifest_digest},
                        "type": mt.COSIGN_TYPE},
           "optional": None}
    return json.dumps(doc, separators=(",", ":")).encode()


def _get(doc, key: str):
    """A member of a JSON object, matched case-insensitively as cosign's Go
    decoder does (the spec's own example spells Docker-manifest-digest)."""
    if not isinstance(doc, dict):
        return None
    if key in doc:
        return doc[key]
    for k, v in doc.items():
        if isinstance(k, str) and k.lower() == key:
            return v
    return None


def claimed_digest(payload_bytes: bytes) -> Optional[str]:
    """The manifest digest a payload vouches for, None if it is not a cosign payload."""
    try:
        doc = json.loads(payload_bytes)
    except ValueError:
        return None
    critical = _get(doc, "critical")
    if _get(critical, "type") != mt.COSIGN_TYPE:
        return None
    digest = _get(_get(critical, "image"), "docker-manifest-digest")
    return digest if isinstance(digest, str) else None


# -- keys -------------------------------------------------------------------
def load_public_key(path: str):
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        with open(path, "rb") as f:
            key = load_pem_public_key(f.read())
    except OSError as err:
        raise SignatureError(f"public key {path}: cannot read: {err.strerror}") from None
    except (ValueError, TypeError):
        raise SignatureError(f"public key {path}: not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise SignatureError(f"public key {path}: not an ECDSA P-256 key (cosign's key-pair format)")
    return key


def load_private_key(path: str, password: Optional[bytes] = None):
    """A PEM ECDSA P-256 private key: PKCS#8 or SEC1 (encrypted or not), or
    cosign's own key file (`cosign generate-key-pair`: "ENCRYPTED SIGSTORE
    PRIVATE KEY", or "ENCRYPTED COSIGN PRIVATE KEY" from older cosign).
    The password comes from COSIGN_PASSWORD, as cosign reads it."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_private_key, load_pem_private_key

    if password is None and "COSIGN_PASSWORD" in os.environ:
        password = os.environ["COSIGN_PASSWORD"].encode()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise SignatureError(f"private key {path}: cannot read: {err.strerror}") from None
    try:
        if b"ENCRYPTED SIGSTORE PRIVATE KEY" in data or b"ENCRYPTED COSIGN PRIVATE KEY" in data:
            key = load_der_private_key(_cosign_key_plaintext(path, data, password or b""), None)
        else:
            key = load_pem_private_key(data, password or None)
    except TypeError:
        raise SignatureError(f"private key {path} is encrypted: set COSIGN_PASSWORD") from None
    except ValueError:
        raise SignatureError(f"private key {path}: not a PEM private key, or a wrong password") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise SignatureError(f"private key {path}: not an ECDSA P-256 key (cosign's key-pair format)")
    return key


# scrypt's N in cosign key files: 32768 (older cosign), 65536 (newer); more
# would let a crafted key file eat memory and time.
_MAX_SCRYPT_N = 1 << 17


def _cosign_key_plaintext(path: str, data: bytes, password: bytes) -> bytes:
    """The PKCS#8 DER inside a cosign key file: a PEM block holding JSON
    {kdf: {name: scrypt, params: {N, r, p}, salt}, cipher: {name:
    nacl/secretbox, nonce}, ciphertext} (base64 values); the key is
    scrypt(password, salt) of 32 bytes, the box XSalsa20-Poly1305."""
    import hashlib

    try:
        body = b"".join(line for line in data.strip().splitlines()[1:-1])
        doc = json.loads(base64.b64decode(body))
        kdf, cipher = doc["kdf"], doc["cipher"]
        params = kdf["params"]
        n, r, p = int(params["N"]), int(params["r"]), int(params["p"])
        salt, nonce = base64.b64decode(kdf["salt"]), base64.b64decode(cipher["nonce"])
        ciphertext = base64.b64decode(doc["ciphertext"])
    except (ValueError, KeyError, TypeError):
        raise SignatureError(f"private key {path}: a malformed cosign key file") from None
    if kdf.get("name") != "scrypt" or cipher.get("name") != "nacl/secretbox":
        raise SignatureError(f"private key {path}: unknown cosign key encryption "
                             f"({kdf.get('name')}, {cipher.get('name')})")
    if not (1 < n <= _MAX_SCRYPT_N and n & (n - 1) == 0 and 0 < r <= 16 and 0 < p <= 4):
        raise SignatureError(f"private key {path}: scrypt parameters out of range (N={n}, r={r}, p={p})")
    try:
        from nacl.exceptions import CryptoError
        from nacl.secret import SecretBox
    except ImportError:
        raise SignatureError(f"private key {path}: reading cosign key files needs PyNaCl "
                             "(pip install pynacl)") from None
    key = hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=256 * 1024 * 1024)
    try:
        return SecretBox(key).decrypt(ciphertext, nonce)
    except (CryptoError, ValueError):
        raise SignatureError(f"private key {path}: wrong password (COSIGN_PASSWORD)") from None


def sign(private_key, payload_bytes: bytes) -> str:
    """base64 of the ASN.1 DER ECDSA signature over SHA-256(payload)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return base64.b64encode(private_key.sign(payload_bytes, ec.ECDSA(hashes.SHA256()))).decode()


def _verifies(public_key, payload_bytes: bytes, signature_b64: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, payload_bytes, ec.ECDSA(hashes.SHA256()))
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


# -- the signature manifest --------------------------------------------------
@dataclass
class Signature:
    payload_digest: str
    payload_size: int
    signature: str  # base64


def signatures_in(manifest_bytes: bytes) -> List[Signature]:
    """The cosign signatures a signature manifest lists (payload layers with
    the signature annotation)."""
    try:
        doc = json.loads(manifest_bytes)
    except ValueError:
        return []
    out = []
    for layer in doc.get("layers") or [] if isinstance(doc, dict) else []:
        if not isinstance(layer, dict) or layer.get("mediaType") != mt.COSIGN_PAYLOAD:
            continue
        sig = (layer.get("annotations") or {}).get(mt.COSIGN_SIGNATURE)
        if isinstance(sig, str) and isinstance(layer.get("digest"), str) and isinstance(layer.get("size"), int):
            out.append(Signature(layer["digest"], layer["size"], sig))
    return out


def signature_manifest(existing: Optional[bytes], payload_bytes: bytes,
                       signature_b64: str) -> Tuple[bytes, Dict[str, bytes]]:
    """The signature manifest with one more signature (cosign appends to the
    manifest already under the .sig tag), and the blobs it needs."""
    layers = []
    if existing:
        try:
            layers = [l for l in json.loads(existing).get("layers") or [] if isinstance(l, dict)]
        except (ValueError, AttributeError):
            layers = []
    new = {"mediaType": mt.COSIGN_PAYLOAD, "size": len(payload_bytes), "digest": digest_of(payload_bytes),
           "annotations": {mt.COSIGN_SIGNATURE: signature_b64}}
    layers = [l for l in layers if l.get("annotations", {}).get(mt.COSIGN_SIGNATURE) != signature_b64] + [new]
    # An OCI image config in the shape cosign writes: its rootfs lists the layers.
    config = json.dumps({"architecture": "", "created": "0001-01-01T00:00:00Z", "os": "",
                         "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]},
                         "config": {}}, separators=(",", ":")).encode()
    manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                "config": {"mediaType": mt.OCI_CONFIG, "size": len(config), "digest": digest_of(config)},
                "layers": layers}
    return json.dumps(manifest, separators=(",", ":")).encode(), {digest_of(config): config,
                                                                  new["digest"]: payload_bytes}


def verify(manifest_digest: str, signatures: Sequence[Tuple[Signature, bytes]],
           keys: Sequence[Tuple[str, object]]) -> str:
    """The path of the first trusted key one of `signatures` (with their
    payload bytes) verifies with, for the image `manifest_digest`. Raises
    SignatureError saying why none does (the caller names the image)."""
    if not signatures:
        raise SignatureError("not signed")
    wrong_digest = False
    for sig, payload_bytes in signatures:
        for path, key in keys:
            if _verifies(key, payload_bytes, sig.signature):
                if claimed_digest(payload_bytes) == manifest_digest:
                    return path
                wrong_digest = True
    if wrong_digest:
        raise SignatureError("the signature is over another image "
                             "(the signed payload names a different manifest digest)")
    names = ", ".join(os.path.basename(p) for p, _ in keys)
    raise SignatureError(f"no signature verifies with the trusted key{'s' if len(keys) > 1 else ''} "
                         f"({names})")
