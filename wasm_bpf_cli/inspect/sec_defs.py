"""libbpf 1.1's table of ELF section names -> program type, expected attach
type, as data (libbpf.c `section_defs`), and the matcher libbpf 1.x uses.

A name ending in "+" matches the exact name or the name followed by "/..."
(the part after the "/" is the attach target); any other name matches only
exactly. Types use libbpf's own names (libbpf_bpf_prog_type_str and
libbpf_bpf_attach_type_str); None where libbpf leaves the attach type 0.
"""
from typing import NamedTuple, Optional

# (section, prog type, expected attach type)
SECTION_DEFS = (
    ("socket", "socket_filter", None),
    ("sk_reuseport/migrate", "sk_reuseport", "sk_reuseport_select_or_migrate"),
    ("sk_reuseport", "sk_reuseport", "sk_reuseport_select"),
    ("kprobe+", "kprobe", None),
    ("uprobe+", "kprobe", None),
    ("uprobe.s+", "kprobe", None),
    ("kretprobe+", "kprobe", None),
    ("uretprobe+", "kprobe", None),
    ("uretprobe.s+", "kprobe", None),
    ("kprobe.multi+", "kprobe", "trace_kprobe_multi"),
    ("kretprobe.multi+", "kprobe", "trace_kprobe_multi"),
    ("ksyscall+", "kprobe", None),
    ("kretsyscall+", "kprobe", None),
    ("usdt+", "kprobe", None),
    ("tc", "sched_cls", None),
    ("classifier", "sched_cls", None),
    ("action", "sched_act", None),
    ("tracepoint+", "tracepoint", None),
    ("tp+", "tracepoint", None),
    ("raw_tracepoint+", "raw_tracepoint", None),
    ("raw_tp+", "raw_tracepoint", None),
    ("raw_tracepoint.w+", "raw_tracepoint_writable", None),
    ("raw_tp.w+", "raw_tracepoint_writable", None),
    ("tp_btf+", "tracing", "trace_raw_tp"),
    ("fentry+", "tracing", "trace_fentry"),
    ("fmod_ret+", "tracing", "modify_return"),
    ("fexit+", "tracing", "trace_fexit"),
    ("fentry.s+", "tracing", "trace_fentry"),
    ("fmod_ret.s+", "tracing", "modify_return"),
    ("fexit.s+", "tracing", "trace_fexit"),
    ("freplace+", "ext", None),
    ("lsm+", "lsm", "lsm_mac"),
    ("lsm.s+", "lsm", "lsm_mac"),
    ("lsm_cgroup+", "lsm", "lsm_cgroup"),
    ("iter+", "tracing", "trace_iter"),
    ("iter.s+", "tracing", "trace_iter"),
    ("syscall", "syscall", None),
    ("xdp.frags/devmap", "xdp", "xdp_devmap"),
    ("xdp/devmap", "xdp", "xdp_devmap"),
    ("xdp.frags/cpumap", "xdp", "xdp_cpumap"),
    ("xdp/cpumap", "xdp", "xdp_cpumap"),
    ("xdp.frags", "xdp", "xdp"),
    ("xdp", "xdp", "xdp"),
    ("perf_event", "perf_event", None),
    ("lwt_in", "lwt_in", None),
    ("lwt_out", "lwt_out", None),
    ("lwt_xmit", "lwt_xmit", None),
    ("lwt_seg6local", "lwt_seg6local", None),
    ("sockops", "sock_ops", "cgroup_sock_ops"),
    ("sk_skb/stream_parser", "sk_skb", "sk_skb_stream_parser"),
    ("sk_skb/stream_verdict", "sk_skb", "sk_skb_stream_verdict"),
    ("sk_skb", "sk_skb", None),
    ("sk_msg", "sk_msg", "sk_msg_verdict"),
    ("lirc_mode2", "lirc_mode2", "lirc_mode2"),
    ("flow_dissector", "flow_dissector", "flow_dissector"),
    ("cgroup_skb/ingress", "cgroup_skb", "cgroup_inet_ingress"),
    ("cgroup_skb/egress", "cgroup_skb", "cgroup_inet_egress"),
    ("cgroup/skb", "cgroup_skb", None),
    ("cgroup/sock_create", "cgroup_sock", "cgroup_inet_sock_create"),
    ("cgroup/sock_release", "cgroup_sock", "cgroup_inet_sock_release"),
    ("cgroup/sock", "cgroup_sock", "cgroup_inet_sock_create"),
    ("cgroup/post_bind4", "cgroup_sock", "cgroup_inet4_post_bind"),
    ("cgroup/post_bind6", "cgroup_sock", "cgroup_inet6_post_bind"),
    ("cgroup/bind4", "cgroup_sock_addr", "cgroup_inet4_bind"),
    ("cgroup/bind6", "cgroup_sock_addr", "cgroup_inet6_bind"),
    ("cgroup/connect4", "cgroup_sock_addr", "cgroup_inet4_connect"),
    ("cgroup/connect6", "cgroup_sock_addr", "cgroup_inet6_connect"),
    ("cgroup/sendmsg4", "cgroup_sock_addr", "cgroup_udp4_sendmsg"),
    ("cgroup/sendmsg6", "cgroup_sock_addr", "cgroup_udp6_sendmsg"),
    ("cgroup/recvmsg4", "cgroup_sock_addr", "cgroup_udp4_recvmsg"),
    ("cgroup/recvmsg6", "cgroup_sock_addr", "cgroup_udp6_recvmsg"),
    ("cgroup/getpeername4", "cgroup_sock_addr", "cgroup_inet4_getpeername"),
    ("cgroup/getpeername6", "cgroup_sock_addr", "cgroup_inet6_getpeername"),
    ("cgroup/getsockname4", "cgroup_sock_addr", "cgroup_inet4_getsockname"),
    ("cgroup/getsockname6", "cgroup_sock_addr", "cgroup_inet6_getsockname"),
    ("cgroup/sysctl", "cgroup_sysctl", "cgroup_sysctl"),
    ("cgroup/getsockopt", "cgroup_sockopt", "cgroup_getsockopt"),
    ("cgroup/setsockopt", "cgroup_sockopt", "cgroup_setsockopt"),
    ("cgroup/dev", "cgroup_device", "cgroup_device"),
    ("struct_ops+", "struct_ops", None),
    ("sk_lookup", "sk_lookup", "sk_lookup"),
)

# libbpf_bpf_map_type_str, indexed by enum bpf_map_type.
MAP_TYPES = (
    "unspec", "hash", "array", "prog_array", "perf_event_array", "percpu_hash",
    "percpu_array", "stack_trace", "cgroup_array", "lru_hash", "lru_percpu_hash",
    "lpm_trie", "array_of_maps", "hash_of_maps", "devmap", "sockmap", "cpumap",
    "xskmap", "sockhash", "cgroup_storage", "reuseport_sockarray",
    "percpu_cgroup_storage", "queue", "stack", "sk_storage", "devmap_hash",
    "struct_ops", "ringbuf", "inode_storage", "task_storage", "bloom_filter",
    "user_ringbuf", "cgrp_storage",
)


def map_type_name(value) -> str:
    if isinstance(value, int) and 0 <= value < len(MAP_TYPES):
        return MAP_TYPES[value]
    return f"unknown({value})"


class ProgramKind(NamedTuple):
    prog_type: Optional[str]
    expected_attach_type: Optional[str]
    attach_target: Optional[str]


def classify_section(name: str) -> ProgramKind:
    """What libbpf 1.1 would make of a program in ELF section `name`. An
    unrecognised section gives prog_type None (libbpf refuses to load it)."""
    for sec, prog_type, attach in SECTION_DEFS:
        if sec.endswith("+"):
            prefix = sec[:-1]
            if name == prefix:
                return ProgramKind(prog_type, attach, None)
            if name.startswith(prefix + "/"):
                return ProgramKind(prog_type, attach, name[len(prefix) + 1:] or None)
        elif name == sec:
            return ProgramKind(prog_type, attach, None)
    return ProgramKind(None, None, None)
