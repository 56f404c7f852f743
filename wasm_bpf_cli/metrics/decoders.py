"""Label decoders: a key member's number (or chars) -> a label value.

Each decoder is a function of the raw value. The tables they need (the
kernel's symbols, the syscall numbers, the cgroup tree) are read on first
use, during a scrape, and kept; a number a table does not know becomes its
decimal string, so a label is never missing.
"""
import bisect
import errno
import os
import re
import socket
import threading
import time
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from wasm_bpf_cli.metrics.config import LabelSpec

CGROUP_RESCAN_S = 1.0  # an unknown cgroup id walks the tree again at most this often
KALLSYMS = "/proc/kallsyms"
# asm/unistd_64.h of the host's architecture (Debian: linux-libc-dev)
UNISTD_HEADERS = ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h",
                  "/usr/include/aarch64-linux-gnu/asm/unistd.h", "/usr/include/asm-generic/unistd.h")

Decoder = Callable[[object], str]


def make_decoder(label: LabelSpec) -> Decoder:
    if label.decoder == "static_map":
        table = dict(label.static_map)
        return lambda n: table.get(n, str(n))
    return _FIXED[label.decoder]


def _integer(n) -> str:
    return str(n)


def _string(s) -> str:
    return s


def _errno(n) -> str:
    return errno.errorcode.get(abs(n), str(n))


def _ifname(n) -> str:
    try:
        return socket.if_indextoname(n)
    except (OSError, OverflowError, ValueError):
        return str(n)


class _Syscalls:
    def __init__(self):
        self._names: Optional[Dict[int, str]] = None

    def __call__(self, n) -> str:
        if self._names is None:
            self._names = read_syscall_names()
        return self._names.get(n, str(n))


def read_syscall_names() -> Dict[int, str]:
    """{number: name} from the installed kernel headers ({} if none)."""
    pattern = re.compile(r"^#define\s+__NR_(\w+)\s+(\d+)\s*$")
    for path in UNISTD_HEADERS:
        try:
            with open(path) as f:
                names = {}
                for line in f:
                    m = pattern.match(line)
                    if m:
                        names.setdefault(int(m.group(2)), m.group(1))
                if names:
                    return names
        except OSError:
            continue
    return {}


class _Kallsyms:
    """Kernel address -> symbol name (the symbol at or below it)."""

    def __init__(self, path: str = KALLSYMS):
        self._path = path
        self._addrs: Optional[List[int]] = None
        self._names: List[str] = []
        self._lock = threading.Lock()

    def _load(self) -> None:
        pairs: List[Tuple[int, str]] = []
        try:
            with open(self._path) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3 and parts[1] in "tTwW":
                        addr = int(parts[0], 16)
                        if addr:
                            pairs.append((addr, parts[2]))
        except OSError:
            pass
        pairs.sort()
        self._names = [name for _a, name in pairs]
        self._addrs = [a for a, _n in pairs]

    def __call__(self, addr) -> str:
        with self._lock:
            if self._addrs is None:
                self._load()
        i = bisect.bisect_right(self._addrs, addr) - 1
        return self._names[i] if i >= 0 and addr else f"0x{addr:x}"


def cgroup2_root() -> Optional[str]:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or
    /sys/fs/cgroup/unified on a hybrid v1/v2 system), or None."""
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 2 and fields[2] == "cgroup2":
                    return fields[1]
    except OSError:
        pass
    return None


class _Cgroups:
    """cgroup id (the inode number of its directory in cgroup v2) -> its
    path in the hierarchy ("/system.slice/ssh.service")."""

    def __init__(self):
        self._root: Optional[str] = None
        self._paths: Dict[int, str] = {}
        self._scanned = 0.0
        self._lock = threading.Lock()

    def _scan(self) -> None:
        if self._root is None:
            self._root = cgroup2_root() or ""
        paths = {}
        for top, dirs, _files in os.walk(self._root) if self._root else ():
            try:
                ino = os.stat(top).st_ino
            except OSError:
                continue
            rel = top[len(self._root):] or "/"
            paths[ino] = rel
        self._paths = paths
        self._scanned = time.monotonic()

    def __call__(self, cgroup_id) -> str:
        with self._lock:
            path = self._paths.get(cgroup_id)
            if path is None and time.monotonic() - self._scanned >= CGROUP_RESCAN_S:
                self._scan()
                path = self._paths.get(cgroup_id)
        return path if path is not None else str(cgroup_id)


_FIXED: Mapping[str, Decoder] = {
    "integer": _integer,
    "string": _string,
    "errno": _errno,
    "ifname": _ifname,
    "syscall": _Syscalls(),
    "ksym": _Kallsyms(),
    "cgroup": _Cgroups(),
}
