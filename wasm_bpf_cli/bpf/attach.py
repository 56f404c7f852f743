"""How a program is attached given the guest's attach target (ABI.md):
no target -> auto-attach from the section; cgroup sections -> a cgroup path;
xdp -> an interface name; uprobe/uretprobe -> `BINARY:FUNCTION[+OFFSET]`;
socket (socket filter) -> an interface name (the runner opens a packet socket
on it); tc/classifier -> `IFNAME[:ingress|:egress]`; anything else -> auto-attach."""
import ctypes
import errno

from .errors import BpfError
from .lib import libbpf
from .object import Program

CGROUP_SECTION_PREFIXES = ("sockops", "cgroup/", "cgroup_skb/", "sk_msg", "cgroup.")
UPROBE_SECTION_PREFIXES = ("uprobe", "uretprobe")
SOCKET_FILTER_SECTION_PREFIXES = ("socket",)
TC_SECTION_PREFIXES = ("tc", "classifier")


def _is_net_prog(prog: Program, prefixes, prog_type: str) -> bool:
    return prog.section.startswith(prefixes) and prog.prog_type == getattr(libbpf(), prog_type)


def attach_program(prog: Program, target: str) -> None:
    """Attach `prog`; the link (or other attachment) is owned by its object and
    undone when the object closes. Raises BpfError naming program and target."""
    section = prog.section
    if target and section.startswith(CGROUP_SECTION_PREFIXES):
        prog.attach_cgroup(target)
    elif target and section.startswith("xdp"):
        prog.attach_xdp(target)
    elif target and section.startswith(UPROBE_SECTION_PREFIXES):
        attach_uprobe(prog, target)
    elif target and _is_net_prog(prog, SOCKET_FILTER_SECTION_PREFIXES, "BPF_PROG_TYPE_SOCKET_FILTER"):
        from .netattach import attach_socket_filter  # imports socket: ~3 ms, only when needed

        attach_socket_filter(prog, target)
    elif target and _is_net_prog(prog, TC_SECTION_PREFIXES, "BPF_PROG_TYPE_SCHED_CLS"):
        from .netattach import attach_tc

        attach_tc(prog, target)
    else:
        prog.attach()


def parse_uprobe_target(target: str):
    """`BINARY:FUNCTION[+OFFSET]` -> (binary, function, offset). BINARY may be a
    path or a library name libbpf resolves (e.g. `libc.so.6`); the split is at
    the last ':' so that paths may contain ':'."""
    binary, sep, func = target.rpartition(":")
    offset = 0
    if "+" in func:
        func, _, off = func.partition("+")
        try:
            offset = int(off, 0)
        except ValueError:
            offset = -1
    if not sep or not binary or not func or offset < 0:
        raise BpfError(f"uprobe target {target!r}: expected BINARY:FUNCTION[+OFFSET]", errno=errno.EINVAL)
    return binary, func, offset


def attach_uprobe(prog: Program, target: str):
    """Attach a uprobe/uretprobe section to FUNCTION of BINARY in every process
    (pid -1); a `uretprobe*` section becomes a return probe."""
    binary, func, offset = parse_uprobe_target(target)
    lib = libbpf()
    opts = lib.struct_bpf_uprobe_opts()
    opts.sz = ctypes.sizeof(opts)
    opts.retprobe = prog.section.startswith("uretprobe")
    func_b, binary_b = func.encode(), binary.encode()
    opts.func_name = func_b
    what = f"attach program '{prog.name}' ({prog.section}) to {target!r}"
    return prog._attach(  # noqa: SLF001 - same package: link owned by the object
        lambda: lib.bpf_program__attach_uprobe_opts(prog._p(), -1, binary_b, offset, ctypes.byref(opts)),  # noqa: SLF001
        what)
