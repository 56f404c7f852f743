"""What the C and the Go type writers share: each named type defined once,
the types it embeds by value first, a type that contains itself or cannot be
spelled refused with the reason (and refused again, the same way, when it
is asked for again)."""
from typing import Any, Dict, List, Optional, Tuple

from wasm_bpf_cli.inspect.btf_reader import ENUM, ENUM64, STRUCT, UNION, Btf, BtfType


class Unreproducible(Exception):
    """A type whose BPF layout has no exact wasm32 spelling; the message says why."""


def c_ref(t: BtfType, typedef: Optional[str] = None) -> str:
    """How C refers to a struct/union/enum ("struct x"), or the typedef that
    names an anonymous one."""
    tag = {STRUCT: "struct", UNION: "union"}.get(t.kind, "enum")
    return f"{tag} {t.name}" if t.name else typedef


class Definitions:
    """define(type_id) -> what the writer returns for the type; `blocks` holds
    the definitions in the order they must appear. A subclass writes one
    definition in `_definition`."""

    def __init__(self, btf: Btf):
        self.btf = btf
        self.blocks: List[str] = []  # emitted definitions, dependencies first
        self._done: Dict[int, Any] = {}  # type id -> what define() returned
        self._failed: Dict[int, str] = {}  # type id -> reason
        self._busy: set = set()  # being defined now (a type met again inside itself)

    def define(self, type_id: int, typedef: Optional[str] = None):
        """Define a named struct/union/enum (or an anonymous one named by
        `typedef`) once; Unreproducible if it cannot be."""
        if type_id in self._done:
            return self._done[type_id]
        if type_id in self._failed:
            raise Unreproducible(self._failed[type_id])
        if type_id in self._busy:
            raise Unreproducible(f"{self.btf.c_name(type_id)} contains itself")
        t = self.btf.get(type_id)
        if t is None or t.kind not in (STRUCT, UNION, ENUM, ENUM64):
            raise Unreproducible(f"type {type_id} is not a struct, union or enum")
        ref = c_ref(t, typedef)
        self._busy.add(type_id)
        try:
            result, block = self._definition(t, ref, typedef)
        except Unreproducible as exc:
            self._failed[type_id] = f"{ref}: {exc}"
            raise Unreproducible(self._failed[type_id]) from None
        finally:
            self._busy.discard(type_id)
        self.blocks.append(block)
        self._done[type_id] = result
        return result

    def _definition(self, t: BtfType, ref: str, typedef: Optional[str]) -> Tuple[Any, str]:
        """(what define() returns, the definition's text) of one type."""
        raise NotImplementedError
