"""What a guest may do: a policy of program types, counts and limits.

A policy comes from a small TOML file (`wasm-bpf run --policy FILE`) and/or
from command-line options (`--allow`, `--deny`, `--max-memory`, ...). Every
key is optional; an absent key allows everything it would restrict.

    # policy.toml: a tracing-only guest, small and without host files
    allow = ["tracing"]          # program kinds the guest may load (default: all)
    deny = ["lsm", "xdp"]        # program kinds it may never load (wins over allow)
    allow_attach = []            # kinds it may attach (default: all)
    deny_attach = ["sock_ops"]   # kinds it may never attach
    max_objects = 4              # BPF objects loaded at the same time
    max_maps = 32                # maps of all its objects together (.rodata/.bss/... count)
    max_links = 8                # programs attached at the same time
    max_memory = "64M"           # guest linear memory, bytes (int, or "512K", "64M", "1G")
    max_object_size = "4M"       # bytes of one BPF object the guest loads
    max_poll_timeout_ms = 1000   # a longer (or infinite, -1) poll timeout is cut to this
    allow_preopens = false       # false: `--dir` is refused
    trusted_keys = ["cosign.pub"]      # images: signatures must verify with one (paths: relative to this file)
    require_signature = true           # images: an unsigned one is refused
    allowed_images = ["ghcr.io/org/*"] # images: only these names (shell patterns) or digests ("sha256:...")

A "kind" is any of the names a program goes by, all libbpf's own:
- its program type (libbpf_bpf_prog_type_str): "tracepoint", "raw_tracepoint",
  "kprobe", "perf_event", "xdp", "sched_cls", "socket_filter", "sock_ops",
  "cgroup_skb", "lsm", ...;
- its expected attach type (libbpf_bpf_attach_type_str): "trace_fentry",
  "cgroup_inet_ingress", "lsm_mac", ...;
- the keyword of its ELF section as libbpf's section table spells it
  ("tp" and "tracepoint", "raw_tp", "tp_btf", "fentry", "fexit", "uprobe",
  "kretprobe", "usdt", "tc", "iter", "fmod_ret", ...);
- a group: "tracing" (tracepoint, raw_tp, tp_btf, fentry, fexit, uprobe,
  uretprobe, usdt, perf_event), "networking" (xdp, tc/sched_cls/sched_act,
  socket filters, sock_ops, sk_*, cgroup socket hooks, flow_dissector, lwt_*)
  and "security" (lsm, cgroup_device, cgroup_sysctl). "tracing" always means
  the group: libbpf's program type of that name covers fentry/fexit/tp_btf
  but also fmod_ret (which changes return values) and iter; name those.
  Kprobes are not in the group: allow "kprobe" to admit them.
A program is allowed when one of its names is in `allow` (or `allow` is
absent) and none is in `deny`. `allow`/`deny` are checked before an object
is loaded: an object with a denied program is not loaded at all (the guest's
`wasm_load_bpf_object` returns 0). `allow_attach`/`deny_attach` and
`max_links` are checked by `wasm_attach_bpf_program` (-EPERM).

No click or rich here: errors are UsageError, one line naming file and key.
"""
import os
import re
import sys
from dataclasses import dataclass, field, fields, replace
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple

from wasm_bpf_cli.errors import UsageError
from wasm_bpf_cli.inspect.sec_defs import SECTION_DEFS

GROUPS: Dict[str, FrozenSet[str]] = {
    "tracing": frozenset({"tracepoint", "raw_tracepoint", "tp_btf", "fentry", "fexit",
                          "uprobe", "uretprobe", "usdt", "perf_event"}),
    "networking": frozenset({"xdp", "sched_cls", "sched_act", "tc", "socket_filter", "sock_ops",
                             "sk_skb", "sk_msg", "sk_lookup", "sk_reuseport", "flow_dissector",
                             "cgroup_skb", "cgroup_sock", "cgroup_sock_addr", "cgroup_sockopt",
                             "lwt_in", "lwt_out", "lwt_xmit", "lwt_seg6local"}),
    "security": frozenset({"lsm", "cgroup_device", "cgroup_sysctl"}),
}
# Section keywords that are other spellings of a program type.
_ALIASES = {"tp": "tracepoint", "raw_tp": "raw_tracepoint", "socket": "socket_filter",
            "sockops": "sock_ops", "classifier": "sched_cls", "action": "sched_act"}


def _section_keyword(sec_def: str) -> str:
    """"uprobe.s+" -> "uprobe", "cgroup_skb/ingress" -> "cgroup_skb", "xdp.frags/devmap" -> "xdp"."""
    word = sec_def.rstrip("+").split("/")[0]
    return word.split(".")[0] if word not in ("raw_tracepoint.w", "raw_tp.w") else word


KNOWN_KINDS: FrozenSet[str] = frozenset(
    {name for _, prog, attach in SECTION_DEFS for name in (prog, attach) if name}
    | {_section_keyword(sec) for sec, _, _ in SECTION_DEFS}
    | set(_ALIASES.values()) | set(GROUPS))


def program_kinds(section: str, prog_type: Optional[str] = None) -> FrozenSet[str]:
    """Every name the program in ELF section `section` goes by (see the module
    doc). `prog_type`: libbpf's name of its type when known (the loader's
    view wins over the section table's)."""
    names = set()
    if prog_type:
        names.add(prog_type)
    for sec, sec_prog, attach in SECTION_DEFS:
        prefix = sec[:-1] if sec.endswith("+") else None
        if section == (prefix if prefix is not None else sec) or \
                (prefix is not None and section.startswith(prefix + "/")):
            keyword = _section_keyword(sec)
            names.update(n for n in (sec_prog if not prog_type else None, attach, keyword) if n)
            if keyword in _ALIASES:
                names.add(_ALIASES[keyword])
            break
    return frozenset(names)


def _expand(kinds: Iterable[str]) -> FrozenSet[str]:
    out = set()
    for kind in kinds:
        out |= GROUPS.get(kind, {kind})
        if kind in _ALIASES:
            out.add(_ALIASES[kind])
    return frozenset(out)


_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)


def parse_size(text) -> int:
    """Bytes from 4096, "4096", "512K", "64M", "64MiB", "1G" (powers of 1024)."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    match = _SIZE.match(str(text)) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not a size (e.g. 4096, 512K, 64M, 1G)")
    return int(match.group(1)) * 1024 ** " kmgt".index((match.group(2) or " ").lower())


@dataclass
class Policy:
    """See the module doc. None/empty: no restriction."""

    allow: Tuple[str, ...] = ()
    deny: Tuple[str, ...] = ()
    allow_attach: Tuple[str, ...] = ()
    deny_attach: Tuple[str, ...] = ()
    max_objects: Optional[int] = None
    max_maps: Optional[int] = None
    max_links: Optional[int] = None
    max_memory: Optional[int] = None
    max_object_size: Optional[int] = None
    max_poll_timeout_ms: Optional[int] = None
    allow_preopens: bool = True
    trusted_keys: Tuple[str, ...] = ()  # PEM public keys image signatures are checked with (oci/trust.py)
    require_signature: bool = False
    allowed_images: Tuple[str, ...] = ()
    source: str = field(default="the command line", compare=False)  # named in every denial

    # -- building ---------------------------------------------------------
    @classmethod
    def from_mapping(cls, data: Mapping, source: str = "the command line") -> "Policy":
        """From a parsed TOML document; UsageError naming `source` and the key."""
        values = {}
        names = {f.name for f in fields(cls)} - {"source"}
        for key, value in data.items():
            if key not in names:
                raise UsageError(f"{source}: unknown key {key!r} (known: {', '.join(sorted(names))})")
            values[key] = _check_value(source, key, value)
        return cls(**values, source=source)

    @classmethod
    def load(cls, path: str) -> "Policy":
        """Read a policy file; UsageError (one line) if it is missing or malformed."""
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - exercised on the 3.10 (wasmer) venv
            import tomli as tomllib
        name = os.path.basename(path) or path
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except OSError as err:
            raise UsageError(f"policy {path}: cannot read: {err.strerror or err}") from None
        except tomllib.TOMLDecodeError as err:
            raise UsageError(f"{name}: not valid TOML: {err}") from None
        policy = cls.from_mapping(data, name)
        if policy.trusted_keys:  # relative to the policy file, not to where wasm-bpf runs
            base = os.path.dirname(os.path.abspath(path))
            policy = replace(policy, trusted_keys=tuple(os.path.join(base, k) for k in policy.trusted_keys))
        return policy

    def merged(self, allow: Iterable[str] = (), deny: Iterable[str] = (), **limits) -> "Policy":
        """This policy plus command-line options: --allow/--deny are added to
        the lists, a given limit (not None) replaces the file's."""
        changes = {k: v for k, v in limits.items() if v is not None}
        for key in ("allow", "deny"):
            extra = tuple(allow if key == "allow" else deny)
            for kind in extra:
                if kind not in KNOWN_KINDS:
                    raise UsageError(f"--{key} {kind!r}: unknown program type ({_hint(kind)})")
            if extra:
                changes[key] = getattr(self, key) + extra
        return replace(self, **changes) if changes else self

    # -- questions ---------------------------------------------------------
    @property
    def restricts_programs(self) -> bool:
        return bool(self.allow or self.deny)

    def _judge(self, kinds: FrozenSet[str], allow, deny, key: str) -> Optional[str]:
        denied = sorted(kinds & _expand(deny))
        if denied:
            return f"{denied[0]} is denied ({key}) by {self.source}"
        if allow and not kinds & _expand(allow):
            return f"{_best(kinds)} is not allowed by {self.source}"
        return None

    def program_denial(self, section: str, prog_type: Optional[str] = None) -> Optional[str]:
        """Why a program may not be loaded, or None."""
        return self._judge(program_kinds(section, prog_type), self.allow, self.deny, "deny")

    def attach_denial(self, section: str, prog_type: Optional[str] = None) -> Optional[str]:
        """Why a program may not be attached, or None."""
        return self._judge(program_kinds(section, prog_type), self.allow_attach, self.deny_attach,
                           "deny_attach")

    def check_report(self, report: Mapping) -> Dict:
        """{allowed, violations} for an `inspect` report (wasm or BPF object):
        what this policy would refuse, found without loading anything."""
        violations: List[str] = []
        objects = [o for o in report.get("objects", []) if not o.get("error")]
        if self.max_objects is not None and len(objects) > self.max_objects:
            violations.append(f"{len(objects)} BPF objects: max_objects is {self.max_objects}")
        maps = sum(len(o.get("maps", [])) for o in objects)
        if self.max_maps is not None and maps > self.max_maps:
            violations.append(f"{maps} maps: max_maps is {self.max_maps}")
        for i, obj in enumerate(objects):
            if self.max_object_size is not None and obj["size"] > self.max_object_size:
                violations.append(f"BPF object {i}: {obj['size']} bytes: "
                                  f"max_object_size is {self.max_object_size}")
            for prog in obj.get("programs", []):
                for why in (self.program_denial(prog["section"], prog.get("prog_type")),
                            self.attach_denial(prog["section"], prog.get("prog_type"))):
                    if why:
                        violations.append(f"program {prog['name']!r} ({prog['section']}, type "
                                          f"{prog.get('prog_type') or 'unknown'}): {why}")
        mem = report.get("memory")
        if self.max_memory is not None and mem and mem["min_pages"] * 65536 > self.max_memory:
            violations.append(f"initial memory {mem['min_pages'] * 65536} bytes: "
                              f"max_memory is {self.max_memory}")
        return {"allowed": not violations, "violations": violations}

    def bound_timeout(self, timeout_ms: int) -> int:
        """A guest's poll timeout, cut to max_poll_timeout_ms (-1 and any
        negative value mean "forever" to libbpf)."""
        bound = self.max_poll_timeout_ms
        if bound is None or 0 <= timeout_ms <= bound:
            return timeout_ms
        return bound


def as_policy(value, what: str = "RunOptions.policy") -> Optional[Policy]:
    """A Policy from what a Python caller may hand over: a Policy, a mapping
    of the file's keys ({"deny": ["xdp"]}), or the path of a TOML file.
    None stays None; anything else is a UsageError saying what is expected."""
    if value is None or isinstance(value, Policy):
        return value
    if isinstance(value, Mapping):
        return Policy.from_mapping(value, what)
    if isinstance(value, (str, os.PathLike)):
        return Policy.load(os.fspath(value))
    raise UsageError(f"{what}: expected a Policy, a mapping of policy keys (e.g. "
                     f"{{'deny': ['xdp']}}) or the path of a TOML policy file, "
                     f"not {type(value).__name__}")


def _best(kinds: FrozenSet[str]) -> str:
    """The name to show for a program: its type (not a keyword or attach type)."""
    if not kinds:
        return "an unknown program type"
    for name in sorted(kinds - set(GROUPS)):
        if name in {prog for _, prog, _ in SECTION_DEFS}:
            return name
    for name in sorted(kinds - set(GROUPS)):
        return name
    return sorted(kinds)[0]


def _hint(kind: str) -> str:
    import difflib

    close = difflib.get_close_matches(kind, sorted(KNOWN_KINDS), n=3)
    return f"did you mean {', '.join(close)}?" if close else "see `wasm-bpf run --help`"


def _check_value(source: str, key: str, value):
    where = f"{source}: {key}"
    if key in ("allow", "deny", "allow_attach", "deny_attach"):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{where}: expected a list of strings")
        for kind in value:
            if kind not in KNOWN_KINDS:
                raise UsageError(f"{where}: unknown program type {kind!r} ({_hint(kind)})")
        return tuple(value)
    if key in ("trusted_keys", "allowed_images"):
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise UsageError(f"{where}: expected a list of non-empty strings")
        return tuple(value)
    if key in ("allow_preopens", "require_signature"):
        if not isinstance(value, bool):
            raise UsageError(f"{where}: expected true or false")
        return value
    if key in ("max_memory", "max_object_size"):
        try:
            return parse_size(value)
        except ValueError as err:
            raise UsageError(f"{where}: {err}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"{where}: expected a non-negative integer")
    return value
