"""The processor world, and whether a component fits it.

A component is described from its own type (wasmtime's ComponentType):
its exports and imports rendered as WIT, so `inspect` shows them and `run`
refuses a processor that does not fit before anything is loaded.
"""
from typing import Dict, List, NamedTuple

from wasmtime import component as wc

COMPONENT_HEADER = b"\0asm\x0d\x00\x01\x00"  # magic, component-model version 0xd, layer 1

# export name -> (parameter types, result type), as WIT spells them
PROCESSOR_EXPORTS = {
    "init": (("list<string>",), "result<_, string>"),
    "process": (("list<u8>",), "option<list<u8>>"),
}
PROCESSOR_WIT = {
    "init": "func(args: list<string>) -> result<_, string>",
    "process": "func(event: list<u8>) -> option<list<u8>>",
}
WASI_PREFIX = "wasi:"  # the only imports the runner provides (WASI 0.2, no rights)


def is_component(data: bytes) -> bool:
    return data[:8] == COMPONENT_HEADER


_SCALARS = {wc.Bool: "bool", wc.S8: "s8", wc.S16: "s16", wc.S32: "s32", wc.S64: "s64", wc.U8: "u8",
            wc.U16: "u16", wc.U32: "u32", wc.U64: "u64", wc.F32: "f32", wc.F64: "f64",
            wc.Char: "char", wc.String: "string"}


def wit_type(ty) -> str:
    """A component value type as WIT writes it (records, variants and the
    like by kind only: enough to show why a processor does not fit)."""
    name = _SCALARS.get(type(ty))
    if name is not None:
        return name
    if isinstance(ty, wc.ListType):
        return f"list<{wit_type(ty.element)}>"
    if isinstance(ty, wc.OptionType):
        return f"option<{wit_type(ty.payload)}>"
    if isinstance(ty, wc.ResultType):
        ok, err = ty.ok, ty.err
        if ok is None and err is None:
            return "result"
        if err is None:
            return f"result<{wit_type(ok)}>"
        return f"result<{'_' if ok is None else wit_type(ok)}, {wit_type(err)}>"
    if isinstance(ty, wc.TupleType):
        return f"tuple<{', '.join(wit_type(t) for t in getattr(ty, 'elements', []))}>"
    return type(ty).__name__.replace("Type", "").lower()


def wit_func(ty: "wc.FuncType") -> str:
    params = ", ".join(f"{name}: {wit_type(t)}" for name, t in ty.params)
    result = ty.result
    return f"func({params})" + ("" if result is None else f" -> {wit_type(result)}")


class ComponentWorld(NamedTuple):
    """What a component imports and exports, in WIT."""

    imports: List[str]  # names of imported interfaces or functions
    exports: Dict[str, str]  # export name -> "func(...) -> ..." or its kind ("interface")
    problems: List[str]  # why it does not fit the processor world (empty: it fits)


def describe(component: "wc.Component", engine) -> ComponentWorld:
    ctype = component.type
    exports: Dict[str, str] = {}
    funcs = {}
    for name, ext in ctype.exports(engine).items():
        ty = ext.ty
        if isinstance(ty, wc.FuncType):
            funcs[name] = ty
            exports[name] = wit_func(ty)
        else:
            exports[name] = type(ty).__name__.replace("Type", "").lower() or "item"
    imports = list(ctype.imports(engine))
    problems = []
    for name, (params, result) in PROCESSOR_EXPORTS.items():
        ty = funcs.get(name)
        if ty is None:
            problems.append(f"no export `{name}: {PROCESSOR_WIT[name]}`")
            continue
        got = (tuple(wit_type(t) for _, t in ty.params), "" if ty.result is None else wit_type(ty.result))
        if got != (params, result):
            problems.append(f"export `{name}` is `{exports[name]}`, not `{PROCESSOR_WIT[name]}`")
    for name in imports:
        if not name.startswith(WASI_PREFIX):
            problems.append(f"imports `{name}`, which the runner does not provide (only WASI)")
    return ComponentWorld(imports, exports, problems)
