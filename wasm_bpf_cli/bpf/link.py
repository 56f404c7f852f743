"""An attached program. Destroying the link detaches it."""
from __future__ import annotations

from typing import Any, Optional

from .errors import BpfError
from .lib import libbpf


class OwnedHandle:
    """Owns one native handle (`_handle`) until `destroy()`, which is
    idempotent: the first call hands the handle to `_release()`, later calls
    do nothing. `__del__` is a safety net only; owners call `destroy()`.
    Subclasses implement `_release(handle)`; `description` says what it is."""

    def __init__(self, handle: Any, description: str) -> None:
        self._handle: Optional[Any] = handle
        self.description = description

    @property
    def destroyed(self) -> bool:
        return self._handle is None

    def _release(self, handle: Any) -> None:
        raise NotImplementedError

    def destroy(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            self._release(handle)

    def __del__(self) -> None:  # safety net only; owners call destroy()
        try:
            self.destroy()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __repr__(self) -> str:
        state = "destroyed" if self.destroyed else "attached"
        return f"<{type(self).__name__} {self.description} {state}>"


class Link(OwnedHandle):
    """Owns one `struct bpf_link *`; `destroy()` is idempotent."""

    @property
    def fd(self) -> int:
        if self._handle is None:
            raise BpfError(f"link of {self.description} is destroyed")
        return libbpf().bpf_link__fd(self._handle)

    def _release(self, ptr) -> None:
        if ptr:
            libbpf().bpf_link__destroy(ptr)
