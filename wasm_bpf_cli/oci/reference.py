"""Image references: `registry[:port]/path/name[:tag][@sha256:hex]`.

The grammar is the distribution project's (docker, podman, oras and cosign
parse the same way), with one restriction: the registry must be named (no
implicit docker.io), so that `run bootstrap/tool:1` is never mistaken for a
download and every reference says where it comes from."""
import re
from dataclasses import dataclass
from typing import Optional

from .errors import InvalidReference

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_HOST_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"^(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[0-9a-fA-F:.]+\])(?::[0-9]{{1,5}})?$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_NAME = 255


@dataclass(frozen=True)
class Reference:
    registry: str  # host[:port] as written
    repository: str  # path inside the registry, e.g. "tools/bootstrap"
    tag: Optional[str] = None  # None when only a digest was given
    digest: Optional[str] = None  # "sha256:<64 hex>" when pinned

    @property
    def name(self) -> str:
        """registry/repository: what allowed_images patterns and signatures name."""
        return f"{self.registry}/{self.repository}"

    @property
    def target(self) -> str:
        """What the registry's manifest endpoint is asked for: the digest if pinned."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> "Reference":
        return Reference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _looks_like_domain(first: str) -> bool:
    return "." in first or ":" in first or first == "localhost" or first.startswith("[") \
        or first != first.lower()


def parse(text: str) -> Reference:
    """A Reference, or InvalidReference saying what is wrong (one line)."""
    if not isinstance(text, str) or not text or len(text) > 4096:
        raise InvalidReference(f"{text!r} is not a valid image reference")
    rest, digest = text, None
    if "@" in rest:
        rest, _, digest = rest.partition("@")
        if not _DIGEST.match(digest):
            raise InvalidReference(f"{text!r}: the digest must be sha256: and 64 lowercase hex digits")
    first, slash, path = rest.partition("/")
    if not slash or not _looks_like_domain(first):
        raise InvalidReference(f"{text!r} is not a valid image reference: name its registry "
                               "(e.g. localhost:5000/tools/bootstrap:1 or ghcr.io/org/tool:1)")
    if not _DOMAIN.match(first):
        raise InvalidReference(f"{text!r}: {first!r} is not a valid registry host[:port]")
    tag = None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, _, tag = path.rpartition(":")
        if not _TAG.match(tag):
            raise InvalidReference(f"{text!r}: {tag!r} is not a valid tag")
    if not _PATH.match(path):
        raise InvalidReference(f"{text!r}: {path!r} is not a valid repository name "
                               "(lowercase letters, digits and . _ - separators)")
    if len(first) + 1 + len(path) > MAX_NAME:
        raise InvalidReference(f"{text!r}: the name is longer than {MAX_NAME} characters")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(first, path, tag, digest)


def is_reference(text: str) -> bool:
    """True when `text` is meant as an image reference rather than a file:
    it names a registry (host with a dot or a port, or localhost) and does
    not end like a module file (.wasm, .o). An existing file always wins
    (the caller checks that first)."""
    if not isinstance(text, str):
        return False
    first, slash, _ = text.partition("/")
    return bool(slash) and (":" in first or "." in first or first == "localhost") \
        and not text.startswith((".", "/", "~")) and not text.endswith((".wasm", ".o"))
