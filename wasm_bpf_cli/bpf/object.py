"""BpfObject (an ELF bpf object opened from memory) and its Programs.

Lifecycle: open_mem -> load -> attach programs -> close. The object owns the
links its programs create, and close() destroys them before the object."""
from __future__ import annotations

import ctypes
import errno
import os
import re
from typing import Callable, List, Optional

from . import log
from .errors import BpfError, check_int, check_ptr, describe_errno
from .lib import require_libbpf, libbpf
from .link import Link
from .maps import Map


_FAILED_PROG = re.compile(r"prog '([^']+)': failed to load")


class Program:
    """A program of a BpfObject. Borrowed: valid while its object is open."""

    def __init__(self, ptr, owner: "BpfObject") -> None:
        self._ptr = ptr
        self._owner = owner

    def _p(self):
        self._owner._check_open()
        return self._ptr

    @property
    def name(self) -> str:
        """The C function name."""
        return libbpf().bpf_program__name(self._p()).decode()

    @property
    def section(self) -> str:
        return libbpf().bpf_program__section_name(self._p()).decode()

    @property
    def prog_type(self) -> int:
        return libbpf().bpf_program__type(self._p())

    @property
    def prog_type_name(self) -> str:
        name = libbpf().libbpf_bpf_prog_type_str(self.prog_type)
        return name.decode() if name else f"type {self.prog_type}"

    @property
    def fd(self) -> int:
        return libbpf().bpf_program__fd(self._p())

    def _what(self) -> str:
        return f"attach program '{self.name}' ({self.section})"

    def _attach(self, call: Callable[[], object], what: str) -> Link:
        mark = log.mark()
        ptr = call()
        check_ptr(ptr, what, details=log.tail_since(mark), privileged=True)
        link = Link(ptr, f"program '{self.name}' ({self.section})")
        self._owner._links.append(link)
        return link

    def attach(self) -> Link:
        """Auto-attach as the section name says (tp/..., uprobe/..., ...)."""
        return self._attach(lambda: libbpf().bpf_program__attach(self._p()), self._what())

    def attach_cgroup(self, path: str) -> Link:
        what = self._what()
        try:
            cg_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise BpfError(f"{what}: cgroup {path!r}: {describe_errno(exc.errno)}", errno=exc.errno) from None
        try:
            return self._attach(lambda: libbpf().bpf_program__attach_cgroup(self._p(), cg_fd), what)
        finally:
            os.close(cg_fd)  # the kernel holds its own reference on the cgroup

    def attach_xdp(self, ifname: str) -> Link:
        what = self._what()
        try:
            import socket  # here: ~3 ms to import, needed only for an xdp target

            ifindex = socket.if_nametoindex(ifname)
        except OSError:
            raise BpfError(f"{what}: no network interface named {ifname!r}", errno=errno.ENODEV) from None
        return self._attach(lambda: libbpf().bpf_program__attach_xdp(self._p(), ifindex), what)

    def __repr__(self) -> str:
        if self._owner.closed:
            return "<Program (object closed)>"
        return f"<Program {self.name!r} section={self.section!r}>"


class BpfObject:
    """Owns one `struct bpf_object *` and the links of its programs."""

    def __init__(self, ptr, name: str) -> None:
        self._ptr = ptr
        self._name = name
        self._links: List[Link] = []

    @classmethod
    def open_mem(cls, address: int, size: int, name: str = "guest") -> "BpfObject":
        """Open the ELF image at native `address` (libbpf copies what it needs,
        so the memory may change or go away after this returns)."""
        lib = require_libbpf()
        what = f"open bpf object '{name}'"
        if not address or size <= 0:
            raise BpfError(f"{what}: empty buffer", errno=errno.EINVAL)
        opts = lib.struct_bpf_object_open_opts()
        opts.sz = ctypes.sizeof(opts)
        name_bytes = name.encode()
        opts.object_name = name_bytes  # libbpf copies it
        mark = log.mark()
        ptr = lib.bpf_object__open_mem(address, size, ctypes.byref(opts))
        check_ptr(ptr, what, details=log.tail_since(mark))
        return cls(ptr, name)

    @property
    def name(self) -> str:
        return self._name

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def _check_open(self) -> None:
        if self._ptr is None:
            raise BpfError(f"bpf object '{self._name}' is closed")

    def load(self) -> None:
        """Load maps and programs into the kernel. On failure the BpfError's
        details hold the tail of libbpf's log (the verifier's verdict)."""
        self._check_open()
        mark = log.mark()
        ret = libbpf().bpf_object__load(self._ptr)
        if ret < 0:
            what = f"load bpf object '{self._name}'"
            failed = [m.group(1) for m in map(_FAILED_PROG.search, log.lines_since(mark, limit=1000)) if m]
            if failed:
                what += f": program '{failed[-1]}'"
            check_int(ret, what, details=log.tail_since(mark), privileged=True)

    @property
    def programs(self) -> List[Program]:
        self._check_open()
        lib, out, prog = libbpf(), [], None
        while True:
            prog = lib.bpf_object__next_program(self._ptr, prog)
            if not prog:
                return out
            out.append(Program(prog, self))

    def find_program(self, function_name: str) -> Optional[Program]:
        self._check_open()
        ptr = libbpf().bpf_object__find_program_by_name(self._ptr, function_name.encode())
        return Program(ptr, self) if ptr else None

    @property
    def maps(self) -> List[Map]:
        self._check_open()
        lib, out, m = libbpf(), [], None
        while True:
            m = lib.bpf_object__next_map(self._ptr, m)
            if not m:
                return out
            out.append(Map(m, self))

    def find_map(self, name: str) -> Optional[Map]:
        self._check_open()
        ptr = libbpf().bpf_object__find_map_by_name(self._ptr, name.encode())
        return Map(ptr, self) if ptr else None

    @property
    def links(self) -> List[Link]:
        return list(self._links)

    def close(self) -> None:
        """Destroy this object's links, then the object. Idempotent."""
        links, self._links = self._links, []
        for link in reversed(links):
            link.destroy()
        ptr, self._ptr = self._ptr, None
        if ptr:
            libbpf().bpf_object__close(ptr)

    def __enter__(self) -> "BpfObject":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # safety net only; owners call close()
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __repr__(self) -> str:
        return f"<BpfObject {self._name!r}{' closed' if self.closed else ''}>"
