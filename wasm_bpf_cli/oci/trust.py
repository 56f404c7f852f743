"""What an image must satisfy before it is run: the policy's allowed_images
and its signature requirements (trusted_keys, require_signature), plus
`--verify-key` from the command line.

- allowed_images (default: any): an image is allowed when one pattern
  matches its name `registry/repo` or `registry/repo:tag` (shell-style `*`,
  `?`), or is its manifest digest `sha256:...`.
- trusted_keys: every signature an image carries is checked; one from a
  trusted key must verify, or the image is refused. An unsigned image is
  allowed with a warning, unless require_signature (or --verify-key) makes
  a valid signature mandatory."""
import fnmatch
import logging
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from .errors import ImageNotAllowed, SignatureError
from .reference import Reference

log = logging.getLogger("wasm_bpf.oci")


@dataclass(frozen=True)
class Trust:
    keys: Tuple[str, ...] = ()  # PEM public key paths
    require_signature: bool = False
    allowed_images: Tuple[str, ...] = ()
    source: str = "the command line"

    @classmethod
    def of(cls, policy=None, verify_keys: Sequence[str] = ()) -> "Trust":
        keys = tuple(getattr(policy, "trusted_keys", ()) or ()) + tuple(verify_keys)
        return cls(keys=keys,
                   require_signature=bool(verify_keys) or bool(getattr(policy, "require_signature", False)),
                   allowed_images=tuple(getattr(policy, "allowed_images", ()) or ()),
                   source=getattr(policy, "source", "the command line") if policy is not None
                   else "the command line")

    @property
    def checks_signatures(self) -> bool:
        return bool(self.keys) or self.require_signature

    def _matches(self, ref: Reference, digest: Optional[str]) -> Optional[bool]:
        """True/False, or None when only the digest can tell and it is unknown."""
        names = [ref.name] + ([f"{ref.name}:{ref.tag}"] if ref.tag else [])
        by_digest = [p for p in self.allowed_images if p.startswith("sha256:")]
        if any(fnmatch.fnmatchcase(n, p) for p in self.allowed_images if p not in by_digest for n in names):
            return True
        if digest is not None:
            return digest in by_digest
        return None if by_digest else False

    def check_name(self, ref: Reference) -> None:
        """Before any download: refuse a name no pattern can allow."""
        if self.allowed_images and self._matches(ref, ref.digest) is False:
            raise ImageNotAllowed(f"{ref} is not in allowed_images of {self.source}")

    def check_digest(self, ref: Reference, digest: str) -> None:
        if self.allowed_images and not self._matches(ref, digest):
            raise ImageNotAllowed(f"{ref} ({digest[:19]}) is not in allowed_images of {self.source}")

    def check_signatures(self, ref: Reference, digest: str, signatures) -> Optional[str]:
        """The trusted key that verified, None if none was needed; raises
        SignatureError (one line) otherwise. `signatures`: [(Signature, payload)]."""
        from . import cosign

        if not self.checks_signatures:
            return None
        if self.require_signature and not self.keys:
            raise SignatureError(f"{self.source}: require_signature needs trusted_keys to verify with")
        if not signatures and not self.require_signature:
            log.warning("%s is not signed (trusted_keys are set, require_signature is not)", ref)
            return None
        keys = [(path, cosign.load_public_key(path)) for path in self.keys]
        try:
            return cosign.verify(digest, signatures, keys)
        except SignatureError as err:
            raise SignatureError(f"{ref}: {err}") from None
