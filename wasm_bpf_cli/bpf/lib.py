"""The one place libbpf.so.1 is loaded and checked (version, strict mode, log
routing), so every other module can just call `libbpf()`."""
from __future__ import annotations

import threading
from types import ModuleType
from typing import Optional

from .errors import BpfError

MIN_VERSION = (1, 0)
_lock = threading.Lock()
_module: Optional[ModuleType] = None


def libbpf() -> ModuleType:
    """The generated bindings module, with libbpf loaded and configured once."""
    global _module
    if _module is not None:
        return _module
    with _lock:
        if _module is None:
            from . import _libbpf_generated as gen
            from . import log

            if gen.LOAD_ERROR is not None:
                raise BpfError("libbpf.so.1 not found: apt-get install libbpf1")
            if gen.libbpf_set_strict_mode is not None:
                gen.libbpf_set_strict_mode(gen.LIBBPF_STRICT_ALL)
            log.install(gen)
            _module = gen
    return _module


def version() -> tuple:
    """(major, minor) of the loaded libbpf.so.1."""
    lib = libbpf()
    if lib.libbpf_major_version is None:  # only 1.0+ exports these
        return (0, 0)
    return (lib.libbpf_major_version(), lib.libbpf_minor_version())


def require_libbpf() -> ModuleType:
    """libbpf(), but raise BpfError unless the library is at least 1.0."""
    lib = libbpf()
    have = version()
    if have < MIN_VERSION:
        raise BpfError(f"libbpf {have[0]}.{have[1]} is too old: need {MIN_VERSION[0]}.{MIN_VERSION[1]} or newer")
    return lib
