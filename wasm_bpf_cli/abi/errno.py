"""Linux errno -> WASI errno, so a guest's `err == -EINTR` matches.

The guest compiles against WASI's numbering (wasi-libc's errno.h, Rust's libc
for wasm32-wasi); libbpf and the kernel speak Linux's. Every negative value a
host function hands to the guest goes through `to_wasi`.
"""
import errno as _linux

# WASI preview1 errno numbers, in the order of the spec (value = index).
_WASI_NAMES = (
    "SUCCESS 2BIG ACCES ADDRINUSE ADDRNOTAVAIL AFNOSUPPORT AGAIN ALREADY BADF "
    "BADMSG BUSY CANCELED CHILD CONNABORTED CONNREFUSED CONNRESET DEADLK "
    "DESTADDRREQ DOM DQUOT EXIST FAULT FBIG HOSTUNREACH IDRM ILSEQ INPROGRESS "
    "INTR INVAL IO ISCONN ISDIR LOOP MFILE MLINK MSGSIZE MULTIHOP NAMETOOLONG "
    "NETDOWN NETRESET NETUNREACH NFILE NOBUFS NODEV NOENT NOEXEC NOLCK NOLINK "
    "NOMEM NOMSG NOPROTOOPT NOSPC NOSYS NOTCONN NOTDIR NOTEMPTY NOTRECOVERABLE "
    "NOTSOCK NOTSUP NOTTY NXIO OVERFLOW OWNERDEAD PERM PIPE PROTO PROTONOSUPPORT "
    "PROTOTYPE RANGE ROFS SPIPE SRCH STALE TIMEDOUT TXTBSY XDEV NOTCAPABLE"
).split()
WASI = {name: number for number, name in enumerate(_WASI_NAMES)}

# Linux numbers that have no same-named WASI errno but an obvious equivalent.
_LINUX_ALIASES = {
    _linux.EOPNOTSUPP: "NOTSUP",
    524: "NOTSUP",  # ENOTSUPP, kernel-internal, returned by some BPF commands
    _linux.EWOULDBLOCK: "AGAIN",
    _linux.EDEADLOCK: "DEADLK",
}

_LINUX_TO_WASI = {}
for _name, _number in WASI.items():
    _linux_number = getattr(_linux, "E" + _name, None)
    if _linux_number is not None:
        _LINUX_TO_WASI[_linux_number] = _number
for _linux_number, _name in _LINUX_ALIASES.items():
    _LINUX_TO_WASI.setdefault(_linux_number, WASI[_name])

EIO = WASI["IO"]


def to_wasi(linux_errno: int) -> int:
    """A positive Linux errno -> the positive WASI errno (EIO if WASI lacks it)."""
    return _LINUX_TO_WASI.get(abs(linux_errno), EIO)


def neg(linux_errno: int) -> int:
    """The negative WASI errno to return to a guest for a Linux errno (either sign)."""
    return -to_wasi(abs(linux_errno))


# The WASI values host code returns most often, negative, ready to hand back.
EINTR = -WASI["INTR"]
EINVAL = -WASI["INVAL"]
EFAULT = -WASI["FAULT"]
EBADF = -WASI["BADF"]
ENOENT = -WASI["NOENT"]
ENOMEM = -WASI["NOMEM"]
EPERM = -WASI["PERM"]
E2BIG = -WASI["2BIG"]
EIO_NEG = -EIO


def reported(err, log) -> int:
    """Log a failed BPF operation (a bpf.BpfError: its message as a warning,
    libbpf's details as info) and return the negative WASI errno for it."""
    log.warning("%s", err)
    if getattr(err, "details", ""):
        log.info("%s", err.details)
    return neg(err.errno) if err.errno else EIO_NEG
