"""The policy (wasm_bpf_cli.policy) applied at the host functions: whether an
object may be loaded or a program attached, the object size limit, the poll
timeout bound, and each denial reported once."""
import logging
from typing import TYPE_CHECKING, Callable, List, Optional, Set

from wasm_bpf_cli.bpf import BpfObject

if TYPE_CHECKING:
    from wasm_bpf_cli.policy import Policy

policy_log = logging.getLogger("wasm_bpf.policy")


class PolicyGate:
    def __init__(self, policy: Optional["Policy"], max_object_size: Optional[int] = None):
        self.policy = policy
        limits = [n for n in (max_object_size, policy and policy.max_object_size) if n is not None]
        self.max_object_size = min(limits) if limits else None
        self._denials_reported: Set[str] = set()
        self.denials: List[str] = []  # each distinct denial, in order (RunResult.denials)
        # Where a denial is reported instead of the log (the Runner's stderr sink), if set.
        self.on_denial: Optional[Callable[[str], None]] = None

    def deny(self, message: str) -> None:
        """Report a denial on stderr, once per distinct message."""
        if message not in self._denials_reported:
            self._denials_reported.add(message)
            self.denials.append(message)
            if self.on_denial is not None:
                self.on_denial(message)
            else:
                policy_log.warning("policy: %s", message)

    def load_denial(self, obj: BpfObject, live: int, live_maps: int) -> Optional[str]:
        """Why the opened (not yet loaded) object may not be loaded next to
        `live` objects holding `live_maps` maps, or None."""
        policy = self.policy
        if policy is None:
            return None
        if policy.max_objects is not None and live >= policy.max_objects:
            return (f"BPF object denied: {live} loaded already, max_objects is "
                    f"{policy.max_objects} in {policy.source}")
        maps = len(obj.maps)
        if policy.max_maps is not None and live_maps + maps > policy.max_maps:
            return (f"BPF object denied: its {maps} maps and the {live_maps} loaded already "
                    f"exceed max_maps {policy.max_maps} in {policy.source}")
        for prog in obj.programs:
            why = policy.program_denial(prog.section, prog.prog_type_name)
            if why:
                return (f"program '{prog.name}' ({prog.section}, type {prog.prog_type_name}) "
                        f"denied: {why}")
        return None

    def attach_denial(self, prog, links: int) -> Optional[str]:
        """Why `prog` may not be attached next to `links` attached ones, or None."""
        policy = self.policy
        if policy is None:
            return None
        what = f"attach of program '{prog.name}' ({prog.section}, type {prog.prog_type_name})"
        if policy.max_links is not None and links >= policy.max_links:
            return f"{what} denied: {links} attached already, max_links is {policy.max_links} in {policy.source}"
        why = policy.attach_denial(prog.section, prog.prog_type_name)
        return f"{what} denied: {why}" if why else None

    def bounded_poll(self, poll: Callable[..., int]) -> Callable[..., int]:
        """The poll with its last argument, timeout_ms, cut to the policy's
        bound; the poll itself when there is no bound."""
        if self.policy is None or self.policy.max_poll_timeout_ms is None:
            return poll
        bound = self.policy.bound_timeout

        def bounded(*args: int) -> int:
            return poll(*args[:-1], bound(args[-1]))

        return bounded
