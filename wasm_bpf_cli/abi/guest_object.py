"""One BPF object a guest loaded, and everything hanging off it."""
from typing import Dict

from wasm_bpf_cli.abi.poller import BufferPoller
from wasm_bpf_cli.bpf import BpfObject, MapInfo


class GuestObject:
    """One BPF object a guest loaded, and everything hanging off it."""

    def __init__(self, handle: int, obj: BpfObject):
        self.handle = handle
        self.obj = obj
        self.maps: Dict[int, MapInfo] = {}  # fd -> info; the only fds this guest may use
        self.pollers: Dict[int, BufferPoller] = {}
        self.attached = 0  # programs attached
        self.elf = b""  # the ELF image it was loaded from (for BTF-typed host reads)
        self._map_types = None

    @property
    def map_types(self):
        """Key/value BTF types of this object's maps (parsed on first use)."""
        if self._map_types is None:
            from wasm_bpf_cli.btf_values import MapTypes

            self._map_types = MapTypes(self.elf)
        return self._map_types

    def close(self) -> None:
        pollers, self.pollers = self.pollers, {}
        for poller in pollers.values():
            poller.close()
        self.obj.close()  # destroys links first
