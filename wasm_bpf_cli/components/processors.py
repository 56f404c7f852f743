"""The processors of one run, by name, and the buffers they filter."""
import re
from typing import TYPE_CHECKING, Callable, Dict, Mapping, Optional, Sequence

from wasm_bpf_cli.errors import UsageError

from . import require_component_api

if TYPE_CHECKING:
    from .processor import Processor

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


class Processors:
    """Checks the names (constructor), then `load()`s every processor before
    the guest starts (so a bad one stops the run before anything is loaded
    into the kernel), serves the guest's wasm_bpf_call by name and the
    `--filter`ed buffers, and interrupts them all at once (also an `init`
    that does not return, while loading)."""

    def __init__(self, specs: Mapping[str, str], args: Mapping[str, Sequence[str]],
                 filters: Mapping[str, str], cache: bool = True, max_memory: Optional[int] = None,
                 stderr: Optional[Callable[[bytes], None]] = None):
        for name in specs:
            if not NAME.match(name):
                raise UsageError(f"processor name {name!r}: letters, digits, '_', '.', '-' only")
        for name in args:
            if name not in specs:
                raise UsageError(f"arguments for processor {name!r}, which is not given (--with {name}=FILE)")
        for map_name, name in filters.items():
            if name not in specs:
                raise UsageError(f"filter on {map_name!r}: no processor named {name!r} (--with {name}=FILE)")
        self.filters: Dict[str, str] = dict(filters)  # buffer map name -> processor name
        require_component_api()
        from .processor import new_engine

        self._specs, self._args, self._cache, self._max_memory = dict(specs), args, cache, max_memory
        self._stderr = stderr  # where each processor's stderr lines go (the guest's stderr)
        self._engine = new_engine()
        self._interrupted = False
        self.by_name: Dict[str, "Processor"] = {}

    def load(self) -> None:
        """Compile (or take from the cache), instantiate and init each one;
        ProcessorError for the first that cannot be used."""
        from .processor import Processor, ProcessorError

        for name, path in self._specs.items():
            if self._interrupted:
                raise ProcessorError(f"processor {name}: interrupted while starting")
            try:
                processor = Processor(name, str(path), list(self._args.get(name, ())), self._engine,
                                      self._cache, self._max_memory, self._stderr)
            except ProcessorError:
                if self._interrupted:  # its init was interrupted: say so, not its trap
                    raise ProcessorError(f"processor {name}: interrupted while starting") from None
                raise
            self.by_name[name] = processor

    def call(self, name: str, event: bytes) -> Optional[bytes]:
        """KeyError if no processor has that name; ProcessorTrap if it trapped."""
        return self.by_name[name].process(event)

    def filter_for(self, map_name: str):
        """The process function filtering buffer `map_name`, or None."""
        name = self.filters.get(map_name)
        return None if name is None else self.by_name[name].process

    def interrupt(self) -> None:
        """From any thread: a call in progress (or the next), or an init
        while loading, traps; the run ends as interrupted."""
        self._interrupted = True
        for processor in list(self.by_name.values()):
            processor.interrupted = True
        self._engine.increment_epoch()

    def close(self) -> None:
        """Drop the stores, and pass the last of their stderr on."""
        processors, self.by_name = list(self.by_name.values()), {}
        for processor in processors:
            processor.close()
