"""Engine selection. Adapters are imported only when chosen (wasmtime's import
alone costs ~55 ms, which `--help` and `inspect` should not pay)."""
import importlib
import sys
from typing import List, NamedTuple, Optional

from wasm_bpf_cli.errors import EngineError, UsageError

ENGINE_NAMES = ("wasmtime", "wasmer")
CHOICES = ("auto",) + ENGINE_NAMES
_ADAPTERS = {
    "wasmtime": ("wasm_bpf_cli.engines.wasmtime_engine", "WasmtimeEngine"),
    "wasmer": ("wasm_bpf_cli.engines.wasmer_engine", "WasmerEngine"),
}


class EngineInfo(NamedTuple):
    name: str
    version: Optional[str]  # None when not importable here
    note: str  # why not, or what it can't do


def _distribution_version(name: str) -> Optional[str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _wasmer_importable() -> bool:
    if sys.version_info >= (3, 11):
        return False  # PyPI wasmer 1.1 has native wheels for CPython <= 3.10 only
    try:
        importlib.import_module("wasmer")
        importlib.import_module("wasmer_compiler_cranelift")
    except ImportError:
        return False
    return True


def available() -> List[EngineInfo]:
    """Every engine, with its version where it can run here."""
    out = [EngineInfo("wasmtime", _distribution_version("wasmtime"),
                      "epoch interruption: a spinning guest is stopped in place")]
    if _wasmer_importable():
        out.append(EngineInfo("wasmer", _distribution_version("wasmer"),
                              "cannot interrupt wasm code: a spinning guest is abandoned after teardown"))
    else:
        why = ("needs CPython <= 3.10" if sys.version_info >= (3, 11)
               else "not installed: pip install 'wasm-bpf[wasmer]'")
        out.append(EngineInfo("wasmer", None, why))
    return out


def resolve(name: str) -> str:
    """'auto' -> the engine that would run: wasmer where it imports, else wasmtime."""
    if name == "auto":
        return "wasmer" if _wasmer_importable() else "wasmtime"
    if name not in ENGINE_NAMES:
        raise UsageError(f"unknown engine {name!r}: choose one of {', '.join(CHOICES)}")
    return name


def create(name: str):
    """A new Engine instance by name ('auto' resolved)."""
    module, cls = _ADAPTERS[resolve(name)]
    try:
        return getattr(importlib.import_module(module), cls)()
    except ImportError as err:
        raise EngineError(f"engine {resolve(name)} is not available: {err}") from None
