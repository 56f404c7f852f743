"""An attached program. Destroying the link detaches it."""
from __future__ import annotations

from typing import Optional

from .errors import BpfError
from .lib import libbpf


class Link:
    """Owns one `struct bpf_link *`; `destroy()` is idempotent."""

    def __init__(self, ptr, description: str) -> None:
        self._ptr = ptr
        self.description = description

    @property
    def destroyed(self) -> bool:
        return self._ptr is None

    @property
    def fd(self) -> int:
        if self._ptr is None:
            raise BpfError(f"link of {self.description} is destroyed")
        return libbpf().bpf_link__fd(self._ptr)

    def destroy(self) -> None:
        ptr, self._ptr = self._ptr, None
        if ptr:
            libbpf().bpf_link__destroy(ptr)

    def __del__(self) -> None:  # safety net only; owners call destroy()
        try:
            self.destroy()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __repr__(self) -> str:
        state = "destroyed" if self._ptr is None else "attached"
        return f"<Link {self.description} {state}>"
