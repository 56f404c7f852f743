"""Load the BPF objects embedded in a guest while its engine starts.

Starting a guest is mostly waiting: the engine is imported and the module
instantiated (CPU work that holds the GIL), then the guest asks the host to
load its embedded object and libbpf parses the kernel's BTF and loads the
programs (work that releases the GIL). The two can overlap: a background
thread opens and loads each BPF object found in the module's bytes, and the
guest's `wasm_load_bpf_object` takes a loaded one whose image is
byte-for-byte what it passed. A guest that patched its image first (a
`.rodata` knob set from its arguments) does not match and loads its own, as
if nothing had been preloaded.

Nothing of this is visible to the guest or the user: a preloaded object is
never attached, the policy is applied to it as to a guest's own load, its
libbpf messages are logged only if the guest takes it, and whatever is not
taken is closed when the guest ends.
"""
import ctypes
import logging
import threading
from typing import Callable, List, Optional, Tuple

from wasm_bpf_cli.bpf import BpfError, BpfObject
from wasm_bpf_cli.bpf import log as libbpf_log
from wasm_bpf_cli.inspect.elf_reader import ELF_MAGIC, scan_bpf_objects
from wasm_bpf_cli.inspect.embedded import embedded_objects
from wasm_bpf_cli.inspect.errors import InspectError
from wasm_bpf_cli.inspect.wasm_reader import WasmModule, read_wasm

log = logging.getLogger("wasm_bpf.preload")

# (object, libbpf messages to log if it is taken)
Loaded = Tuple[BpfObject, List[Tuple[int, str]]]


# A module with more data segments than this (stock Go: ~29,000) takes longer
# to lay out than the preload of its object saves (measured on go_bootstrap):
# its guest loads its object itself, as without a preload.
MAX_SEGMENTS_TO_LAY_OUT = 4096


def embedded_images(wasm: bytes, max_size: Optional[int] = None,
                    module: Optional[WasmModule] = None) -> List[bytes]:
    """The BPF ELF objects a module embeds, at most `max_size` bytes each.
    A C guest's data segments hold them verbatim (a search of the raw bytes
    finds them); one split across segments (TinyGo, wasm-opt) is read from
    the module's initial memory (inspect/embedded.py), from `module` (the
    parsed `wasm`) when the caller has it."""
    found = scan_bpf_objects(wasm)
    images = [wasm[off:off + n] for off, n, error in found if error is None]
    if wasm.count(ELF_MAGIC) > len(images):  # a header that does not hold together: perhaps split
        try:
            module = module or read_wasm(wasm)
            if len(module.data_segments) <= MAX_SEGMENTS_TO_LAY_OUT:
                images = [o.image for o in embedded_objects(module) if o.error is None]
        except InspectError:
            pass  # the guest's own loads will say what is wrong
    return [image for image in images if max_size is None or len(image) <= max_size]


class Preloader:
    def __init__(self, images: List[bytes], name: str,
                 denial: Callable[[BpfObject], Optional[str]]):
        """Start loading `images` (named `name`, like the guest's own loads);
        `denial` is the policy check a guest's load gets (a reason, or None)."""
        self._pending = list(images)
        self._name = name
        self._denial = denial
        # Written by the preload thread only; read after joining it.
        self._loaded: List[Tuple[bytes, Loaded]] = []
        self._thread = threading.Thread(target=self._run, name="wasm-bpf-preload", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for image in self._pending:
            loaded = self._load(image)
            if loaded is not None:
                self._loaded.append((image, loaded))

    def _load(self, image: bytes) -> Optional[Loaded]:
        buf = ctypes.create_string_buffer(image, len(image))
        obj = None
        with libbpf_log.held() as messages:
            try:
                obj = BpfObject.open_mem(ctypes.addressof(buf), len(image), name=self._name)
                # Not loaded ahead: what the policy denies (the guest's own load
                # reports it), and maps pinned in bpffs (a load would pin them
                # even if the guest never asked for the object).
                if self._denial(obj) or any(m.pin_path for m in obj.maps):
                    obj.close()
                    return None
                obj.load()
                return obj, messages
            except BpfError as err:  # the guest's own load reports it
                log.debug("preload of a %d-byte object failed: %s", len(image), err)
            except Exception:  # noqa: BLE001 - speculative work must never break a run
                log.debug("preload failed", exc_info=True)
        if obj is not None:
            obj.close()
        return None

    def take(self, image: bytes) -> Optional[BpfObject]:
        """A loaded object made from exactly `image` (waiting for the loads
        in progress), or None; its libbpf messages are logged now."""
        self._thread.join()
        for i, (candidate, (obj, messages)) in enumerate(self._loaded):
            if candidate == image:
                del self._loaded[i]
                break
        else:
            return None
        libbpf_log.replay(messages)
        return obj

    def close(self) -> None:
        """Close every object nobody took (waits for the loads in progress)."""
        self._thread.join()
        loaded, self._loaded = self._loaded, []
        for _, (obj, _messages) in loaded:
            obj.close()
