"""Enumerate the kernel's BPF programs, links and maps by id (leak checks,
inspection). Objects can vanish between two calls; that is not an error."""
from __future__ import annotations

import ctypes
import errno
import os
from typing import Dict, List

from .errors import check_int
from .lib import libbpf


def _ids(next_id_fn: str) -> List[int]:
    fn = getattr(libbpf(), next_id_fn)
    out: List[int] = []
    current, nxt = 0, ctypes.c_uint(0)
    while True:
        ret = fn(current, ctypes.byref(nxt))
        if ret == -errno.ENOENT:
            return out
        check_int(ret, next_id_fn)
        current = nxt.value
        out.append(current)


def prog_ids() -> List[int]:
    return _ids("bpf_prog_get_next_id")


def link_ids() -> List[int]:
    return _ids("bpf_link_get_next_id")


def map_ids() -> List[int]:
    return _ids("bpf_map_get_next_id")


def prog_names() -> Dict[int, str]:
    """id -> program name (the kernel keeps the first 15 bytes)."""
    lib = libbpf()
    names: Dict[int, str] = {}
    for prog_id in prog_ids():
        fd = lib.bpf_prog_get_fd_by_id(prog_id)
        if fd < 0:
            continue  # freed meanwhile
        try:
            info = lib.struct_bpf_prog_info()
            length = ctypes.c_uint(ctypes.sizeof(info))
            if lib.bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(length)) == 0:
                names[prog_id] = info.name.decode("utf-8", "replace")
        finally:
            os.close(fd)
    return names
