"""One JSON-able document describing a wasm-bpf module or a plain BPF object.

Keys (stable; `schema` changes if they ever do):

- `schema`: 1
- `path`: the name given (file path or the `name` argument)
- `kind`: "wasm" | "bpf" | "component" (a processor component: its own
  keys in wasm_bpf_cli/components/report.py)
- `size`: bytes in the input
- `imports`: {module: [{name, kind, params, results}]}, modules in first-seen
  order (`params`/`results`: wasm value types, null for non-functions)
- `exports`: [{name, kind, index, params, results}]
- `memory`: {min_pages, max_pages, imported, shared, memory64} of memory 0, or null
- `table_exported`: whether `__indirect_function_table` is exported
- `data_segments`: [{index, mode ("active"|"passive"), memory, address,
  file_offset, size}] (`address`: the constant offset in linear memory, or null)
- `custom_sections`: [name]
- `verdict`: {`applicable`: false for a plain BPF object,
  `runnable`: bool (null when not applicable), `callback_route`:
  "table" | "wrapper" | "both" | null, `problems`: [str] (why not runnable),
  `warnings`: [str] (e.g. an embedded object that cannot be read)}
- `objects`: one per embedded BPF ELF object, in file order:
  {`offset` (in the input file), `size`, `address` (in linear memory, or null),
  `segment` (data segment index, or null), `error` (str, or null; when set,
  the other keys below are absent), `license`, `programs`: [{name, section,
  prog_type, expected_attach_type, attach_target, instructions}], `maps`:
  [{name, type, key_size, value_size, max_entries, flags, key_type,
  value_type, internal}], `has_btf`, `has_btf_ext`, `core_relocations`,
  `globals`: [{name, type, section, offset, size, read_only, file_offset
  (in the object), initial (hex, for up to 64 bytes, or null)}]}
- `policy` (only with `wasm-bpf inspect --policy FILE`): {`allowed`: bool,
  `violations`: [str]}, from `wasm_bpf_cli.policy.Policy.check_report`
"""
from typing import Dict, List, Optional

from wasm_bpf_cli.abi import signatures as abi

from .bpf_object import describe_object
from .elf_reader import ELF_MAGIC
from .embedded import embedded_objects
from .errors import InspectError
from .verdict import check_module
from .wasm_reader import MAGIC, read_wasm

SCHEMA = 1
MAX_INPUT = 1 << 30  # refuse to read more than 1 GiB


def inspect_path(path: str, wrapper_module: str = abi.DEFAULT_WRAPPER_MODULE,
                 callback_export: str = abi.DEFAULT_CALLBACK_EXPORT) -> Dict:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_INPUT + 1)
    except OSError as exc:
        raise InspectError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT:
        raise InspectError(f"{path}: larger than {MAX_INPUT} bytes")
    return inspect_bytes(data, path, wrapper_module, callback_export)


def inspect_bytes(data: bytes, name: str = "<bytes>",
                  wrapper_module: str = abi.DEFAULT_WRAPPER_MODULE,
                  callback_export: str = abi.DEFAULT_CALLBACK_EXPORT) -> Dict:
    data = bytes(data)
    if data[:4] == ELF_MAGIC:
        return _bpf_report(data, name)
    if data[:4] != MAGIC:
        raise InspectError(f"{name}: not a wasm module or BPF object (bad magic)")
    if data[4:8] == b"\x0d\x00\x01\x00":  # a component: a processor? (components/report.py)
        from wasm_bpf_cli.components.report import component_report

        return component_report(data, name, SCHEMA)
    return _wasm_report(data, name, wrapper_module, callback_export)


def _bpf_report(data: bytes, name: str) -> Dict:
    obj = describe_object(data, 0, name)
    obj.update(address=None, segment=None, error=None)
    return {
        "schema": SCHEMA, "path": name, "kind": "bpf", "size": len(data),
        "imports": {}, "exports": [], "memory": None, "table_exported": False,
        "data_segments": [], "custom_sections": [],
        "verdict": {"applicable": False, "runnable": None, "callback_route": None,
                    "problems": [], "warnings": []},
        "objects": [obj],
    }


def _func_sig(t) -> Dict:
    return {"params": list(t.params), "results": list(t.results)} if t else \
        {"params": None, "results": None}


def _wasm_report(data: bytes, name: str, wrapper_module: str, callback_export: str) -> Dict:
    mod = read_wasm(data)
    imports: Dict[str, List[Dict]] = {}
    for imp in mod.imports:
        imports.setdefault(imp.module, []).append(
            {"name": imp.name, "kind": imp.kind, **_func_sig(imp.type)})
    exports = [{"name": e.name, "kind": e.kind, "index": e.index,
                **_func_sig(mod.func_type(e.index) if e.kind == "func" else None)}
               for e in mod.exports]
    memory = None
    mem = mod.memory(0)
    if mem is not None:
        limits, imported = mem
        memory = {"min_pages": limits.min, "max_pages": limits.max, "imported": imported,
                  "shared": limits.shared, "memory64": limits.memory64}

    objects: List[Dict] = []
    warnings: List[str] = []
    for found in embedded_objects(mod):
        entry: Dict = {"offset": found.file_offset, "size": found.length, "address": found.address,
                       "segment": found.segment, "error": found.error}
        if found.error is None:
            try:
                desc = describe_object(found.data, found.start, f"BPF object at offset 0x{found.file_offset:x}")
            except InspectError as exc:
                entry["error"] = str(exc)
            else:
                entry = {**entry, **desc, "offset": found.file_offset}
        if entry["error"]:
            warnings.append(entry["error"])
        objects.append(entry)

    problems = check_module(mod, wrapper_module, callback_export)
    table = any(i.module == abi.WASM_BPF_MODULE and i.name == "wasm_bpf_buffer_poll"
                for i in mod.imports)
    wrapper = any(i.module == wrapper_module and i.name == abi.WRAPPER_POLL_NAME
                  for i in mod.imports)
    route: Optional[str] = {(True, True): "both", (True, False): "table",
                            (False, True): "wrapper"}.get((table, wrapper))
    return {
        "schema": SCHEMA, "path": name, "kind": "wasm", "size": len(data),
        "imports": imports, "exports": exports, "memory": memory,
        "table_exported": any(e.name == abi.TABLE_EXPORT and e.kind == "table"
                              for e in mod.exports),
        "data_segments": [{"index": s.index, "mode": s.mode, "memory": s.memory,
                           "address": s.offset, "file_offset": s.file_offset, "size": s.size}
                          for s in mod.data_segments],
        "custom_sections": list(mod.custom_sections),
        "verdict": {"applicable": True, "runnable": not problems, "callback_route": route,
                    "problems": problems, "warnings": warnings},
        "objects": objects,
    }
