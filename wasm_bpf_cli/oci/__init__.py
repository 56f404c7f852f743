"""Guests from OCI registries: references, a local content-addressed store,
pull/push through the `oras` client, cosign-format signatures.

    from wasm_bpf_cli import oci

    oci.push("bootstrap.wasm", "localhost:5000/tools/bootstrap:1", description="exec/exit tracer")
    oci.sign("localhost:5000/tools/bootstrap:1", "cosign.key")
    image = oci.pull("localhost:5000/tools/bootstrap:1", trust=oci.Trust(keys=("cosign.pub",),
                                                                          require_signature=True))
    wasm = image.wasm()

`Runner("localhost:5000/tools/bootstrap:1")` does the pull itself (see
runner.py). Modules: reference (names), store (the local store), client
(one registry, via oras), artifact (the documents pushed and accepted),
cosign (signatures), trust (allowed_images and signature rules), fetch
(pull), publish (push, sign), credentials (docker config.json; login and
logout, which check them with a client first, are in client), errors.
"""
from .errors import (ImageNotAllowed, IntegrityError, InvalidReference, NotInStore, RegistryError,
                     SignatureError)
from .reference import Reference, is_reference, parse
from .store import Store
from .trust import Trust

__all__ = ["pull", "push", "sign", "login", "logout", "load_module", "Image", "Trust", "Store", "Reference", "parse",
           "is_reference", "PULL_MODES", "InvalidReference", "RegistryError", "IntegrityError",
           "SignatureError", "ImageNotAllowed", "NotInStore"]


def __getattr__(name):  # lazy: the runner imports this package for is_reference only
    import importlib

    if name in ("pull", "load_module", "Image", "PULL_MODES"):
        return getattr(importlib.import_module(".fetch", __name__), name)
    if name in ("push", "sign"):
        return getattr(importlib.import_module(".publish", __name__), name)
    if name in ("login", "logout"):
        return getattr(importlib.import_module(".client", __name__), name)
    raise AttributeError(name)
