"""BpfError and the two helpers every libbpf call goes through, so that each
failure says what failed, why (strerror and errno name), and carries the errno."""
from __future__ import annotations

import ctypes
import errno as _errno
import os
from typing import Optional

from ..errors import WasmBpfError

ROOT_EPERM_HINT = ("refused although running as root: kernel lockdown or a security policy "
                   "forbids this program type here, or 'ulimit -l' is too low")
PRIVILEGE_HINT = "run as root or with CAP_BPF and CAP_PERFMON"


class BpfError(WasmBpfError):
    """A libbpf or kernel operation failed.

    `errno` is the positive Linux errno (or None when not errno-shaped);
    `details` holds extra lines (e.g. the verifier log tail) kept out of the
    one-line message."""

    def __init__(self, message: str, errno: Optional[int] = None, details: str = "") -> None:
        super().__init__(message)
        self.errno = errno
        self.details = details


LIBBPF_ERRNO_START = 4000  # libbpf's own error codes (enum libbpf_errno) start here


def describe_errno(err: int) -> str:
    """'No such file or directory (ENOENT)' for 2; libbpf's own codes (4000+)
    are described by libbpf_strerror: 'Invalid BPF object format (LIBBPF_ERRNO__FORMAT)'."""
    if err >= LIBBPF_ERRNO_START:
        from . import _libbpf_generated as gen

        names = {v: k for k, v in vars(gen).items() if k.startswith("LIBBPF_ERRNO__") and isinstance(v, int)}
        buf = ctypes.create_string_buffer(128)
        if gen.libbpf_strerror is not None and gen.libbpf_strerror(err, buf, len(buf)) == 0:
            return f"{buf.value.decode()} ({names.get(err, f'errno {err}')})"
    name = _errno.errorcode.get(err, f"errno {err}")
    return f"{os.strerror(err)} ({name})"


def error_from_errno(err: int, what: str, details: str = "", privileged: bool = False) -> BpfError:
    """Build the BpfError for positive errno `err`. With `privileged`, EPERM (and
    EACCES when not root: as root EACCES is the verifier's verdict) gets a hint."""
    message = f"{what}: {describe_errno(err)}"
    if privileged and err in (_errno.EPERM, _errno.EACCES):
        if os.geteuid() != 0:
            message += f": {PRIVILEGE_HINT}"
        elif err == _errno.EPERM:  # as root, EACCES is the verifier's verdict
            message += f": {ROOT_EPERM_HINT}"
    return BpfError(message, errno=err, details=details)


def check_int(ret: int, what: str, details: str = "", privileged: bool = False) -> int:
    """Return `ret` unchanged if >= 0; a negative return is libbpf's -errno."""
    if ret < 0:
        raise error_from_errno(-ret, what, details, privileged)
    return ret


def check_ptr(ptr, what: str, details: str = "", privileged: bool = False):
    """Return `ptr` if it is not NULL. libbpf 1.x (the oldest this runs on,
    lib.MIN_VERSION) returns NULL and sets errno; its ERR_PTR returns ended
    with 1.0's removal of the legacy mode."""
    if not ptr:
        err = ctypes.get_errno() or _errno.EINVAL
        raise error_from_errno(err, what, details, privileged)
    return ptr
