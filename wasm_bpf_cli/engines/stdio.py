"""The guest's standard streams and its exit, served from Python on every engine.

Why not the engines' own WASI for these:
- Line buffering. wasi-libc line-buffers stdout only when `fd_fdstat_get`
  says fd 1 is a character device without seek/tell rights; otherwise it
  keeps 4 KiB in guest memory until exit. wasmtime reports fd 1 as "unknown"
  even on a terminal, and no engine does on a pipe or for an API callback, so
  a guest that prints with plain `printf` (as upstream's examples do) showed
  nothing until it ended, and lost it all when it had to be interrupted.
  Here fds 1 and 2 are reported as character devices by default
  (`line_buffered`), and every write goes to the host at once, byte for byte.
- Exit status. `proc_exit(code)` ends the guest with `code`'s low 8 bits, as
  a native process's status (wasmtime's WASI traps on a status >= 126).
- No callback from the engine's runtime threads: wasmtime's `stdout_custom`
  calls Python from a tokio worker, which panicked at interpreter exit.

Every other fd (files, preopened directories) goes to the engine's own WASI
through a tiny delegate instance that shares the guest's memory (the engines
find the memory a WASI function works on through the calling instance).

On wasmtime, with the native helper built, `fd_write` on fds 1 and 2 that go
to the host's own fds is served in C without entering Python
(abi/_nativestdio.c, engines/wasmtime_nativestdio.py; one Python host call
per printed line was most of a line's cost). `GuestStdio.fd_write` is the
reference it follows, and serves everything else: other fds, streams that go
to a Python callable (the API's callbacks), wasmer (whose host functions are
Python callables), no helper, WASM_BPF_NATIVE_STDIO=0.

On wasmer, the guest's fd_write calls reach the host without arguments
(rewrite.serve_fd_write_in_wasm: wasmer-python keeps each host call's
argument objects until the guest exits, ~150 B per printed line): the
import FD_WRITE_STAGE_NAME reads them from four globals the added function
set (`fd_write_staged`), then serves them as `fd_write`.
"""
import ctypes
import errno
import os
import stat
import struct
from typing import Callable, List, Optional, Tuple

from wasm_bpf_cli.abi.signatures import WASI_MODULE, Signature
from wasm_bpf_cli.engines.base import GuestExit, GuestMemory, WasiOptions

# WASI errno numbers (wasi-libc's errno.h).
_WASI_EBADF, _WASI_EFAULT, _WASI_EIO, _WASI_EPIPE, _WASI_EAGAIN, _WASI_EINTR = 8, 21, 29, 64, 6, 27
_LINUX_TO_WASI = {errno.EBADF: _WASI_EBADF, errno.EFAULT: _WASI_EFAULT, errno.EPIPE: _WASI_EPIPE,
                  errno.EAGAIN: _WASI_EAGAIN, errno.EINTR: _WASI_EINTR}

# WASI filetypes and rights (wasi_snapshot_preview1).
_FILETYPE_UNKNOWN, _FILETYPE_CHARACTER_DEVICE, _FILETYPE_REGULAR_FILE = 0, 2, 4
_FILETYPE_SOCKET_STREAM = 6
_RIGHT_FD_READ, _RIGHT_FD_WRITE = 1 << 1, 1 << 6
_RIGHT_FD_SEEK, _RIGHT_FD_TELL = 1 << 2, 1 << 5
_RIGHT_FD_FILESTAT_GET, _RIGHT_POLL_FD_READWRITE = 1 << 21, 1 << 27
_FDSTAT = struct.Struct("<BxHxxxxQQ")  # filetype, flags, rights base, rights inheriting: 24 bytes

LINE = "line"  # fds 1 and 2 look like a terminal: libc flushes stdout at each newline
LIBC = "libc"  # fds 1 and 2 look like the host's own: a pipe or file is fully buffered
BUFFERING_MODES = (LINE, LIBC)

I32x4 = Signature(("i32",) * 4, ("i32",))
I32x2 = Signature(("i32", "i32"), ("i32",))
PROC_EXIT = Signature(("i32",), ())
STAGED = Signature((), ("i32",))
FD_WRITE_STAGE_NAME = "wasm_bpf_fd_write_stage"  # rewrite.FD_WRITE_STAGE_IMPORT

# Shares the guest's memory and re-exports the engine's WASI functions that
# GuestStdio passes other fds on to. The same text on every engine.
DELEGATE_WAT = """(module
  (import "env" "memory" (memory 0))
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $r (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $s (param i32 i32) (result i32)))
  (export "memory" (memory 0))
  (func (export "fd_write") (param i32 i32 i32 i32) (result i32)
    (call $w (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "fd_read") (param i32 i32 i32 i32) (result i32)
    (call $r (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "fd_fdstat_get") (param i32 i32) (result i32)
    (call $s (local.get 0) (local.get 1))))"""
DELEGATED = (("fd_write", I32x4), ("fd_read", I32x4), ("fd_fdstat_get", I32x2))
_IOVECS = [struct.Struct(f"<{2 * n}I") for n in range(5)]  # (ptr, len) pairs of 0-4 iovecs


def _filetype_of(fd: int) -> int:
    """The WASI filetype of the host's own fd (for `libc` buffering)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return _FILETYPE_UNKNOWN
    if stat.S_ISCHR(mode):
        return _FILETYPE_CHARACTER_DEVICE
    if stat.S_ISREG(mode):
        return _FILETYPE_REGULAR_FILE
    if stat.S_ISSOCK(mode):
        return _FILETYPE_SOCKET_STREAM
    return _FILETYPE_UNKNOWN


def _says_terminal(sink) -> bool:
    isatty = getattr(sink, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except Exception:  # noqa: BLE001 - a sink's own isatty must not break the guest
        return False


class GuestStdio:
    """fd_write, fd_read, fd_fdstat_get and proc_exit for one guest.

    The engine adapter imports `functions()` in place of its WASI's, sets
    `memory` once the instance exists, and `delegate` to an object whose
    fd_write / fd_read / fd_fdstat_get are the engine's own (called for
    fds other than 0-2). Call `close()` when the guest is done."""

    def __init__(self, wasi: WasiOptions):
        self.sinks = {1: wasi.stdout, 2: wasi.stderr}
        self.stdin = open(wasi.stdin_path, "rb", buffering=0) if wasi.stdin_path else None
        self.line_buffered = wasi.buffering == LINE
        self.on_closed_output = wasi.on_closed_output
        self.memory: Optional[GuestMemory] = None
        self.delegate = None
        self._memview: Optional[memoryview] = None
        self._memview_base = 0
        # (fd, iovs, iovs_len, nwritten) as the guest's rewritten fd_write left
        # them (engines that rewrite it, see fd_write_staged)
        self.staged_fd_write_args: Optional[Callable[[], Tuple[int, int, int, int]]] = None

    def functions(self) -> List[Tuple[str, str, Signature, Callable[..., Optional[int]]]]:
        """(module, name, signature, function) of every WASI import served here."""
        return [(WASI_MODULE, "fd_write", I32x4, self.fd_write),
                (WASI_MODULE, "fd_read", I32x4, self.fd_read),
                (WASI_MODULE, "fd_fdstat_get", I32x2, self.fd_fdstat_get),
                (WASI_MODULE, "proc_exit", PROC_EXIT, proc_exit)]

    def staged_functions(self) -> List[Tuple[str, str, Signature, Callable[..., Optional[int]]]]:
        """The import a guest rewritten by rewrite.serve_fd_write_in_wasm calls
        in place of fd_write (only the engines that rewrite import it)."""
        return [(WASI_MODULE, FD_WRITE_STAGE_NAME, STAGED, self.fd_write_staged)]

    # -- helpers ----------------------------------------------------------
    def _view(self, end: int) -> Optional[memoryview]:
        """A byte view of guest memory covering [0, end), or None if the
        memory is smaller. Made again only when the memory grew past the
        view or moved (wasmer may move it when it grows)."""
        base = self.memory.host_address(0, end)
        if base is None:
            return None
        view = self._memview
        if view is None or base != self._memview_base or end > len(view):
            size = self.memory.size()
            view = memoryview((ctypes.c_ubyte * size).from_address(base)).cast("B")
            self._memview, self._memview_base = view, base
        return view

    def _iovec_views(self, iovs: int, count: int, result: int):
        """(memory view, [view of each iovec's bytes]) for a WASI iovec array,
        every range and the u32 result slot checked against memory; None if
        one falls outside it (-> EFAULT)."""
        iovs &= 0xFFFFFFFF
        if not 0 <= count <= 1024:
            return None
        mem = self._view(iovs + 8 * count)
        if mem is None:
            return None
        spans = _IOVECS[count].unpack_from(mem, iovs) if count < len(_IOVECS) else \
            struct.unpack_from(f"<{2 * count}I", mem, iovs)
        end = max([(result & 0xFFFFFFFF) + 4] + [spans[i] + spans[i + 1] for i in range(0, 2 * count, 2)])
        mem = self._view(end)
        if mem is None:
            return None
        return mem, [mem[spans[i]:spans[i] + spans[i + 1]] for i in range(0, 2 * count, 2)]

    # -- the WASI functions -----------------------------------------------
    def fd_write(self, fd: int, iovs: int, count: int, nwritten: int) -> int:
        """One call per line a line-buffered guest prints: the iovecs are read
        and written straight from a view of guest memory (writev, no copy).
        wb_wasmtime_fd_write (abi/_nativestdio.c) does the same in C for fds
        1 and 2 without a sink: a change here must be made there too (the
        tests in test_stdio_writes.py run both)."""
        if fd not in self.sinks:
            return self.delegate.fd_write(fd, iovs, count, nwritten)
        found = self._iovec_views(iovs, count, nwritten)
        if found is None:
            return _WASI_EFAULT
        mem, chunks = found
        total = sum(len(c) for c in chunks)
        sink = self.sinks[fd]
        try:
            if sink is not None:
                sink(b"".join(chunks))
            else:
                done = os.writev(fd, chunks) if chunks else 0
                if done < total:  # a short write: the rest in order
                    rest = memoryview(b"".join(chunks))[done:]
                    while rest:
                        rest = rest[os.write(fd, rest):]
        except OSError as err:
            if err.errno == errno.EPIPE and self.on_closed_output is not None:
                self.on_closed_output(fd)
            return _LINUX_TO_WASI.get(err.errno, _WASI_EIO)
        struct.pack_into("<I", mem, nwritten & 0xFFFFFFFF, total)
        return 0

    def fd_write_staged(self) -> int:
        """fd_write with the arguments the guest left in the globals
        rewrite.serve_fd_write_in_wasm added (EIO if the engine gave no way
        to read them)."""
        args = self.staged_fd_write_args
        if args is None:
            return _WASI_EIO
        return self.fd_write(*args())

    def fd_read(self, fd: int, iovs: int, count: int, nread: int) -> int:
        if fd != 0:
            return self.delegate.fd_read(fd, iovs, count, nread)
        found = self._iovec_views(iovs, count, nread)
        if found is None:
            return _WASI_EFAULT
        mem, buffers = found
        total = 0
        for buf in buffers:
            if self.stdin is None or not len(buf):
                continue
            try:
                got = self.stdin.readinto(buf) or 0
            except OSError as err:
                return _LINUX_TO_WASI.get(err.errno, _WASI_EIO)
            total += got
            if got < len(buf):
                break
        struct.pack_into("<I", mem, nread & 0xFFFFFFFF, total)
        return 0

    def fd_fdstat_get(self, fd: int, buf: int) -> int:
        if fd not in (0, 1, 2):
            return self.delegate.fd_fdstat_get(fd, buf)
        addr = self.memory.host_address(buf, _FDSTAT.size)
        if addr is None:
            return _WASI_EFAULT
        if fd == 0:
            filetype, rights = _FILETYPE_CHARACTER_DEVICE, _RIGHT_FD_READ | _RIGHT_POLL_FD_READWRITE
        else:
            rights = _RIGHT_FD_WRITE | _RIGHT_POLL_FD_READWRITE | _RIGHT_FD_FILESTAT_GET
            sink = self.sinks[fd]
            if self.line_buffered or (os.isatty(fd) if sink is None else _says_terminal(sink)):
                filetype = _FILETYPE_CHARACTER_DEVICE  # no seek/tell rights: libc's isatty() is true
            elif sink is None:
                filetype = _filetype_of(fd)
                if filetype == _FILETYPE_REGULAR_FILE:
                    rights |= _RIGHT_FD_SEEK | _RIGHT_FD_TELL
            else:
                filetype = _FILETYPE_UNKNOWN  # an API callback: a stream, fully buffered
        ctypes.memmove(addr, _FDSTAT.pack(filetype, 0, rights, rights), _FDSTAT.size)
        return 0

    def close(self) -> None:
        if self.stdin is not None:
            self.stdin.close()
            self.stdin = None


def proc_exit(code: int) -> None:
    """The guest's status as a native process's: its low 8 bits (-1 -> 255)."""
    raise GuestExit(code & 0xFF)
