"""Per-program run count and run time (`run --bpf-stats`).

The kernel counts a program's runs and their time only while some process
holds the fd `BPF_ENABLE_STATS(BPF_STATS_RUN_TIME)` returned (the counting
costs a few ns per run, so it is off by default): StatsHold keeps that fd
while the runner runs and closes it after. The counts are read per program
from its bpf_prog_info at scrape time.
"""
import ctypes
import os
from typing import Optional, Tuple

from wasm_bpf_cli.bpf import BpfError, libbpf
from wasm_bpf_cli.bpf.errors import describe_errno

BPF_STATS_RUN_TIME = 0


class StatsHold:
    """Holds BPF_ENABLE_STATS until close()."""

    def __init__(self):
        fd = libbpf().bpf_enable_stats(BPF_STATS_RUN_TIME)
        if fd < 0:
            raise BpfError(f"enable BPF run-time statistics: {describe_errno(-fd)}", errno=-fd)
        self._fd: Optional[int] = fd

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def program_stats(prog_fd: int) -> Tuple[int, int]:
    """(runs, run time in ns) the kernel counted for program `prog_fd`."""
    lib = libbpf()
    info = lib.struct_bpf_prog_info()
    length = ctypes.c_uint(ctypes.sizeof(info))
    ret = lib.bpf_obj_get_info_by_fd(prog_fd, ctypes.byref(info), ctypes.byref(length))
    if ret < 0:
        raise BpfError(f"program info of fd {prog_fd}: {describe_errno(-ret)}", errno=-ret)
    return info.run_cnt, info.run_time_ns
