"""`wasm-bpf inspect` of a component: its world in WIT, and whether it fits
the processor world (the `verdict`: runnable means usable with `run --with`).

Keys, as for a module (inspect/report.py) where they apply: `schema`,
`path`, `kind` ("component"), `size`, `imports` ({}), `exports` ([]),
`memory` (null), `objects` ([]), `verdict` ({applicable, runnable,
callback_route: null, problems, warnings}); and `world`: {`imports`: [name],
`exports`: {name: WIT type}, `fits`: "wasm-bpf:processor@0.1.0" or null}.
"""
from typing import Dict

from wasm_bpf_cli.errors import ModuleError

from . import WIT_PACKAGE, WORLD, require_component_api


def component_report(data: bytes, name: str, schema: int) -> Dict:
    require_component_api()
    from .processor import ProcessorError, inspect_component

    try:
        world = inspect_component(data)
    except ProcessorError as err:
        raise ModuleError(f"{name}: {err}") from None
    fits = not world.problems
    return {
        "schema": schema, "path": name, "kind": "component", "size": len(data),
        "imports": {}, "exports": [], "memory": None, "table_exported": False,
        "data_segments": [], "custom_sections": [],
        "world": {"imports": world.imports, "exports": world.exports,
                  "fits": f"{WIT_PACKAGE}/{WORLD}" if fits else None},
        "verdict": {"applicable": True, "runnable": fits, "callback_route": None,
                    "problems": [f"not a {WIT_PACKAGE} processor: {p}" for p in world.problems],
                    "warnings": []},
        "objects": [],
    }
