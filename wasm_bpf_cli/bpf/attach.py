"""How a program is attached given the guest's attach target (ABI.md):
no target -> auto-attach from the section; cgroup sections -> a cgroup path;
xdp -> an interface name; anything else -> auto-attach."""
from .object import Program

CGROUP_SECTION_PREFIXES = ("sockops", "cgroup/", "cgroup_skb/", "sk_msg", "cgroup.")


def attach_program(prog: Program, target: str) -> None:
    """Attach `prog`; the link (or other attachment) is owned by its object and
    undone when the object closes. Raises BpfError naming program and target."""
    section = prog.section
    if target and section.startswith(CGROUP_SECTION_PREFIXES):
        prog.attach_cgroup(target)
    elif target and section.startswith("xdp"):
        prog.attach_xdp(target)
    else:
        prog.attach()
