"""Attachments that are not bpf_links: a socket filter on a raw packet socket
the runner opens for the guest, and a tc (clsact) classifier.

Both are OwnedHandles like Link (`destroy()` idempotent, `destroyed`,
`description`) and are appended to the owning BpfObject's `_links`, so
`BpfObject.close()` undoes them like links."""
from __future__ import annotations

import ctypes
import errno
import logging
import socket
from typing import Optional, Tuple

from .errors import BpfError, describe_errno, error_from_errno
from .lib import libbpf
from .link import OwnedHandle

log = logging.getLogger(__name__)

SO_ATTACH_BPF = 50  # asm-generic/socket.h
ETH_P_ALL = 0x0003


def _what(prog, target: str) -> str:
    return f"attach program '{prog.name}' ({prog.section}) to interface {target!r}"


def _ifindex(prog, ifname: str, shown: Optional[str] = None) -> int:
    try:
        return socket.if_nametoindex(ifname)
    except (OSError, ValueError):
        raise BpfError(f"{_what(prog, shown or ifname)}: no such interface", errno=errno.ENODEV) from None


class SocketAttachment(OwnedHandle):
    """A raw AF_PACKET socket bound to one interface with a BPF socket filter
    attached (SO_ATTACH_BPF). Closing the socket detaches the filter."""

    def __init__(self, sock: socket.socket, description: str) -> None:
        super().__init__(sock, description)

    @property
    def fd(self) -> int:
        if self._handle is None:
            raise BpfError(f"socket of {self.description} is closed")
        return self._handle.fileno()

    def _release(self, sock: socket.socket) -> None:
        sock.close()


def attach_socket_filter(prog, ifname: str) -> SocketAttachment:
    """Open AF_PACKET/SOCK_RAW on `ifname` (all protocols), attach `prog` as its
    filter and hand the socket to the program's object. The socket is never
    read: a filter that returns 0 keeps it from queueing anything, and a full
    receive queue drops packets only after the filter has run."""
    what = _what(prog, ifname)
    ifindex = _ifindex(prog, ifname)
    prog_fd = prog.fd
    try:
        # protocol 0 until bound: no packet from another interface reaches the filter
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except OSError as exc:
        raise error_from_errno(exc.errno or errno.EPERM, f"{what}: packet socket", privileged=True) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, prog_fd)
        sock.bind((ifname, ETH_P_ALL))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.ENODEV:
            raise BpfError(f"{what}: no such interface", errno=errno.ENODEV) from None
        raise error_from_errno(exc.errno or errno.EINVAL, what, privileged=True) from None
    att = SocketAttachment(sock, f"program '{prog.name}' ({prog.section}) on {ifname} (ifindex {ifindex})")
    prog._owner._links.append(att)  # noqa: SLF001 - same package: owned by the object
    return att


def parse_tc_target(target: str) -> Tuple[str, str]:
    """`IFNAME`, `IFNAME:ingress` or `IFNAME:egress` -> (ifname, direction)."""
    ifname, sep, direction = target.rpartition(":")
    if not sep:
        return target, "ingress"
    if direction not in ("ingress", "egress") or not ifname:
        raise BpfError(f"tc target {target!r}: expected IFNAME, IFNAME:ingress or IFNAME:egress",
                       errno=errno.EINVAL)
    return ifname, direction


class TcAttachment(OwnedHandle):
    """A cls_bpf filter (direct-action) on a clsact hook; `destroy()` removes
    the filter, then the clsact qdisc if this attachment created it."""

    def __init__(self, hook, handle: int, priority: int, created_hook: bool, description: str) -> None:
        super().__init__(hook, description)
        self.handle = handle
        self.priority = priority
        self.created_hook = created_hook

    @property
    def ifindex(self) -> int:
        return self._handle.ifindex if self._handle is not None else 0

    def _release(self, hook) -> None:
        lib = libbpf()
        opts = lib.struct_bpf_tc_opts()
        opts.sz = ctypes.sizeof(opts)
        opts.handle = self.handle
        opts.priority = self.priority  # prog_fd, prog_id and flags must be 0 to detach
        ret = lib.bpf_tc_detach(ctypes.byref(hook), ctypes.byref(opts))
        if ret < 0:
            log.debug("tc detach %s: %s", self.description, describe_errno(-ret))
        if self.created_hook:
            ret = _destroy_hook(hook)
            if ret < 0:
                log.debug("tc hook destroy %s: %s", self.description, describe_errno(-ret))


def attach_tc(prog, target: str) -> TcAttachment:
    """Attach a tc/classifier program to `IFNAME[:ingress|:egress]` (default
    ingress): create the clsact qdisc (an existing one is reused and left in
    place) and add the program as a direct-action filter."""
    what = _what(prog, target)
    ifname, direction = parse_tc_target(target)
    lib = libbpf()
    hook = lib.struct_bpf_tc_hook()
    hook.sz = ctypes.sizeof(hook)
    hook.ifindex = _ifindex(prog, ifname, target)
    hook.attach_point = lib.BPF_TC_EGRESS if direction == "egress" else lib.BPF_TC_INGRESS
    ret = lib.bpf_tc_hook_create(ctypes.byref(hook))
    if ret < 0 and ret != -errno.EEXIST:
        raise error_from_errno(-ret, f"{what}: create clsact qdisc", privileged=True)
    created = ret == 0
    opts = lib.struct_bpf_tc_opts()
    opts.sz = ctypes.sizeof(opts)
    opts.prog_fd = prog.fd
    ret = lib.bpf_tc_attach(ctypes.byref(hook), ctypes.byref(opts))
    if ret < 0:
        if created:
            _destroy_hook(hook)
        raise error_from_errno(-ret, what, privileged=True)
    att = TcAttachment(hook, opts.handle, opts.priority, created,
                       f"program '{prog.name}' ({prog.section}) on {ifname} {direction}")
    prog._owner._links.append(att)  # noqa: SLF001 - same package: owned by the object
    return att


def _destroy_hook(hook) -> int:
    """Delete the clsact qdisc of hook's interface (both attach points)."""
    lib = libbpf()
    whole = lib.struct_bpf_tc_hook()
    whole.sz = ctypes.sizeof(whole)
    whole.ifindex = hook.ifindex
    whole.attach_point = lib.BPF_TC_INGRESS | lib.BPF_TC_EGRESS
    return lib.bpf_tc_hook_destroy(ctypes.byref(whole))
