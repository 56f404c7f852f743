"""Errors of the registry layer. Each is one line a user can act on; the CLI
prints it as `error: ...` and exits with its status (1, or 2 for a
reference that is not a valid name)."""
from wasm_bpf_cli.errors import UsageError, WasmBpfError


class InvalidReference(UsageError):
    """The text is not a valid image reference (exit status 2)."""


class RegistryError(WasmBpfError):
    """The registry cannot be reached, refuses us, or has no such image."""


class IntegrityError(WasmBpfError):
    """What the registry (or the local store) served does not match its digest,
    or is not a wasm module, or is larger than allowed."""


class SignatureError(WasmBpfError):
    """The image is unsigned where a signature is required, or no signature
    verifies with a trusted key."""


class ImageNotAllowed(WasmBpfError):
    """The policy's allowed_images does not list the image."""


class NotInStore(WasmBpfError):
    """`--pull never` and the image is not in the local store."""
