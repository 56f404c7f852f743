"""A process and its descendants, from /proc: for the bench scripts that
measure a runner (on wasmer `wasm-bpf run` forks a supervised child)."""
import os

TICKS = os.sysconf("SC_CLK_TCK")


def _stats() -> dict:
    """{pid: fields after the command name} of every process now."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                out[int(pid)] = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
    return out


def tree(root: int, stats: dict = None) -> list:
    """`root` and every live process below it."""
    stats = _stats() if stats is None else stats
    pids = [root]
    for pid in pids:
        pids.extend(child for child, fields in stats.items() if int(fields[1]) == pid)
    return pids


def tree_cpu(root: int) -> float:
    """user + system seconds of `root` and its live descendants."""
    stats = _stats()
    return sum((int(stats[pid][11]) + int(stats[pid][12])) / TICKS for pid in tree(root, stats) if pid in stats)
