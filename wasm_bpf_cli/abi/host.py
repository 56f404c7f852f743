"""The wasm_bpf host functions (ABI.md), engine-neutral.

Each function takes the guest's raw wasm integers, validates every pointer
and size against the guest memory as it is at that moment, and answers with
0/a count/a handle or a negative WASI errno. No exception crosses back into
the guest, except the ones that must end it: GuestExit / GuestTrap raised by
the guest's own callback, and BaseExceptions such as KeyboardInterrupt.
"""
import ctypes
import logging
import os
import threading
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

from wasm_bpf_cli.abi import errno as werr
from wasm_bpf_cli.abi import nativepoll
from wasm_bpf_cli.abi.calls import wasm_bpf_call
from wasm_bpf_cli.abi.delivery import BufferDelivery
from wasm_bpf_cli.abi.guest_object import GuestObject
from wasm_bpf_cli.abi.map_ops import MapOperations
from wasm_bpf_cli.abi.poller import BUFFER_MAP_TYPES
from wasm_bpf_cli.abi.policy_gate import PolicyGate
from wasm_bpf_cli.abi.preload import Preloader
from wasm_bpf_cli.abi.signatures import (STAGE_POLL, STAGE_POLL_NAME, WASM_BPF_FUNCTIONS, WASM_BPF_MODULE,
                                         WRAPPER_POLL, WRAPPER_POLL_NAME)
from wasm_bpf_cli.bpf import BpfError, BpfObject, map_info
from wasm_bpf_cli.bpf.attach import attach_program
from wasm_bpf_cli.engines.base import GuestExit, GuestTrap, HostFunction, Instance

if TYPE_CHECKING:
    from wasm_bpf_cli.policy import Policy

__all__ = ["HostAbi", "GuestObject"]

log = logging.getLogger("wasm_bpf.host")

U32 = 0xFFFFFFFF
MAX_NAME = 4096


class HostAbi:
    """The host functions for one guest: wires them (host_functions), loads,
    attaches and closes its BPF objects and keeps them, and stops its polls.
    The policy, map operations and buffer delivery are their own classes
    (policy_gate.py, map_ops.py, delivery.py)."""

    def __init__(self, object_name: str = "guest", wrapper_module: str = "callback-wrapper",
                 callback_export: str = "go-callback", max_object_size: Optional[int] = None,
                 policy: Optional["Policy"] = None, max_delivery_delay: float = 0.0):
        self.object_name = object_name
        self.wrapper_module = wrapper_module
        self.callback_export = callback_export
        self.policy = policy
        self.gate = PolicyGate(policy, max_object_size)
        self.max_object_size = self.gate.max_object_size
        self.denials = self.gate.denials  # each distinct denial, in order (RunResult.denials)
        self._preloader: Optional[Preloader] = None
        self.instance: Optional[Instance] = None
        self.objects: Dict[int, GuestObject] = {}
        self._next_handle = 1
        self._lock = threading.RLock()  # objects may be read from other threads
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._fd_owner: Dict[int, GuestObject] = {}
        self.map_ops = MapOperations(self._fd_owner)
        # The C poll loop (nativepoll.py), where it is built: None otherwise.
        lib = nativepoll.library()
        self._native = None if lib is None else nativepoll.NativePolls(
            lib, self._wake_r, max_delivery_delay, policy.max_poll_timeout_ms if policy else None)
        self.delivery = BufferDelivery(self._object, self._stop, self._wake_r, callback_export,
                                       self._native, max_delivery_delay)
        self.buffers = self.delivery.buffers
        # The host functions the parts serve, bound once: no extra call on the hot paths.
        self.map_operate = self.map_ops.map_operate
        self.buffer_poll = self.delivery.buffer_poll
        self.wrapper_buffer_poll = self.delivery.wrapper_buffer_poll

    # -- wiring ---------------------------------------------------------
    def host_functions(self) -> List[HostFunction]:
        bounded = self.gate.bounded_poll
        impl = {
            "wasm_load_bpf_object": self.load_bpf_object,
            "wasm_attach_bpf_program": self.attach_bpf_program,
            "wasm_bpf_buffer_poll": bounded(self.buffer_poll),
            "wasm_bpf_map_fd_by_name": self.map_fd_by_name,
            "wasm_bpf_map_operate": self.map_operate,
            "wasm_close_bpf_object": self.close_bpf_object,
            "wasm_bpf_call": self.call_processor,
        }
        funcs = [HostFunction(WASM_BPF_MODULE, name, sig, self._guarded(name, impl[name], sig))
                 for name, sig in WASM_BPF_FUNCTIONS.items()]
        funcs.append(HostFunction(self.wrapper_module, WRAPPER_POLL_NAME, WRAPPER_POLL,
                                  self._guarded("wrapper poll", bounded(self.wrapper_buffer_poll),
                                                WRAPPER_POLL)))
        # The poll import renamed, where the engine made the guest dispatch itself
        # (rewrite.serve_poll_in_wasm); an unused definition elsewhere. It takes
        # the poll's arguments from guest memory.
        stage = self._guarded(STAGE_POLL_NAME, self.delivery.buffer_stage(bounded), STAGE_POLL)
        if self._native is not None:  # the C loop first (it applies the policy's bound itself)
            stage = self._native.stage_function(stage)
        funcs.append(HostFunction(WASM_BPF_MODULE, STAGE_POLL_NAME, STAGE_POLL, stage))
        if self._native is not None:  # the engine may serve this import in C (nativepoll.py)
            next(f for f in funcs if f.name == "wasm_bpf_buffer_poll").func.native_poll = self._native
        return funcs

    def bind(self, instance: Instance) -> None:
        self.instance = self.map_ops.instance = self.delivery.instance = instance

    @staticmethod
    def _guarded(name: str, func: Callable[..., int], sig) -> Callable[..., int]:
        """Whatever goes wrong inside host code becomes an error return, never
        an exception into the engine (which would kill the guest)."""
        failure = 0 if sig.results == ("i64",) else werr.EIO_NEG

        def guarded(*args: int) -> int:
            try:
                return func(*args)
            except (GuestExit, GuestTrap):
                raise  # the guest ended inside its own callback
            except Exception:  # noqa: BLE001 - a host bug must not crash the guest
                log.exception("host function %s failed", name)
                return failure

        guarded.__name__ = name
        return guarded

    # -- stopping -------------------------------------------------------
    def request_stop(self) -> None:
        """From any thread: pending and later polls return -EINTR."""
        self._stop.set()
        if self._native is not None:
            self._native.request_stop()
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # the pipe is already full: a wakeup is pending anyway

    def request_abort(self) -> None:
        """From any thread, for a guest that did not stop by itself: its poll
        in progress or next poll ends it (GuestTrap, interrupted) instead of
        returning -EINTR again. On an engine that cannot interrupt wasm code
        this still ends a guest that loops on polls ignoring -EINTR (as
        upstream's opensnoop does); only one spinning in pure wasm cannot."""
        self.delivery.abort_when_stopped()
        if self._native is not None:
            self._native.request_abort()  # before the wake-up: a woken C loop hands the poll to Python
        self.request_stop()

    @property
    def processors(self):
        """wasm_bpf_call's and --filter's processors (abi/calls.py), set by the runner."""
        return self.delivery.processors

    @processors.setter
    def processors(self, processors) -> None:
        self.delivery.processors = processors

    @property
    def on_denial(self) -> Optional[Callable[[str], None]]:
        """Where a denial is reported instead of the log (the Runner's stderr sink), if set."""
        return self.gate.on_denial

    @on_denial.setter
    def on_denial(self, report: Optional[Callable[[str], None]]) -> None:
        self.gate.on_denial = report

    @property
    def links_attached(self) -> int:
        with self._lock:
            return sum(g.attached for g in self.objects.values())

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def loaded_objects(self) -> List[GuestObject]:
        """From any thread: the objects loaded now (a snapshot)."""
        with self._lock:
            return list(self.objects.values())

    def close_all(self) -> None:
        """Destroy every link, poller and object the guest left open."""
        with self._lock:
            objects, self.objects = list(self.objects.values()), {}
            self._fd_owner.clear()
        self.map_ops.forget_all()
        if self._native is not None:
            self._native.drop_all()
        for gobj in objects:
            try:
                gobj.close()
            except Exception:  # noqa: BLE001 - keep closing the others
                log.exception("closing BPF object %d failed", gobj.handle)

    def preload(self, images: List[bytes]) -> None:
        """Start loading these BPF object images in the background (see
        abi/preload.py); the guest's loads of identical images take them."""
        if images and self._preloader is None:
            def denial(obj: BpfObject) -> Optional[str]:
                return self._load_denial(obj) if self.policy is not None else None

            self._preloader = Preloader(images, self.object_name, denial)

    def close(self) -> None:
        if self._preloader is not None:
            self._preloader.close()
        self.close_all()
        if self._native is not None:
            self._native.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    # -- helpers --------------------------------------------------------
    def _addr(self, ptr: int, size: int) -> Optional[int]:
        return self.instance.memory.host_address(ptr & U32, size)

    def _string(self, ptr: int) -> Optional[str]:
        return self.instance.memory.read_cstring(ptr & U32, MAX_NAME)

    def _object(self, handle: int) -> Optional[GuestObject]:
        with self._lock:
            return self.objects.get(handle)

    # -- loading, attaching, closing --------------------------------------
    def load_bpf_object(self, buf: int, size: int) -> int:
        if size <= 0:
            return 0
        if self.max_object_size is not None and size > self.max_object_size:
            log.warning("refused to load a %d-byte BPF object: the limit is %d bytes", size, self.max_object_size)
            return 0
        address = self._addr(buf, size)
        if address is None:
            return 0
        handle = self._next_handle
        image = ctypes.string_at(address, size)
        obj = self._preloader.take(image) if self._preloader is not None else None
        preloaded = obj is not None
        if obj is None:
            try:
                obj = BpfObject.open_mem(address, size, name=self.object_name)
            except BpfError as err:
                werr.reported(err, log)
                return 0
        try:
            denial = self._load_denial(obj) if self.policy is not None else None
        except Exception:
            obj.close()
            raise
        if denial:
            obj.close()
            self._deny(denial)
            return 0
        try:
            if not preloaded:
                obj.load()
            gobj = GuestObject(handle, obj)
            gobj.elf = image
            for m in obj.maps:
                gobj.maps[m.fd] = map_info(m.fd)
        except BpfError as err:
            obj.close()
            werr.reported(err, log)
            return 0
        with self._lock:
            self._next_handle += 1
            self.objects[handle] = gobj
            for fd in gobj.maps:
                self._fd_owner[fd] = gobj
        log.debug("loaded BPF object %d: programs %s", handle, [p.name for p in obj.programs])
        return handle

    def _object_and_name(self, handle: int, name_ptr: int):
        """(object, name) for a guest's handle and name pointer, or the
        negative errno to return: -EINVAL for a bad handle, -EFAULT for a bad name."""
        gobj = self._object(handle)
        if gobj is None:
            return werr.EINVAL
        name = self._string(name_ptr)
        if name is None:
            return werr.EFAULT
        return gobj, name

    def attach_bpf_program(self, handle: int, name_ptr: int, target_ptr: int) -> int:
        found = self._object_and_name(handle, name_ptr)
        if isinstance(found, int):
            return found
        gobj, name = found
        target = ""
        if target_ptr & U32:
            target = self._string(target_ptr)
            if target is None:
                return werr.EFAULT
        prog = gobj.obj.find_program(name)
        if prog is None:
            log.warning("attach: object %d has no program named %r", handle, name)
            return werr.ENOENT
        denial = self._attach_denial(prog) if self.policy is not None else None
        if denial:
            self._deny(denial)
            return werr.EPERM
        try:
            attach_program(prog, target)
        except BpfError as err:
            return werr.reported(err, log)
        gobj.attached += 1
        log.debug("attached %s (%s)%s", name, prog.section, f" to {target}" if target else "")
        return 0

    # -- policy (policy_gate.py) -----------------------------------------
    def _deny(self, message: str) -> None:
        self.gate.deny(message)

    def _load_denial(self, obj: BpfObject) -> Optional[str]:
        """Why the opened (not yet loaded) object may not be loaded, or None."""
        with self._lock:
            live = len(self.objects)
            live_maps = sum(len(g.maps) for g in self.objects.values())
        return self.gate.load_denial(obj, live, live_maps)

    def _attach_denial(self, prog) -> Optional[str]:
        return self.gate.attach_denial(prog, self.links_attached)

    # -- maps -------------------------------------------------------------
    def map_fd_by_name(self, handle: int, name_ptr: int) -> int:
        found = self._object_and_name(handle, name_ptr)
        if isinstance(found, int):
            return found
        gobj, name = found
        m = gobj.obj.find_map(name)
        if m is None:
            return werr.ENOENT
        info = gobj.maps.get(m.fd)
        if info is not None and info.type in BUFFER_MAP_TYPES:
            self.delivery.buffer_opened(gobj, m.fd, info)
        return m.fd

    def close_bpf_object(self, handle: int) -> int:
        with self._lock:
            gobj = self.objects.pop(handle, None)
            if gobj is None:
                return werr.EINVAL
            for fd in gobj.maps:
                self._fd_owner.pop(fd, None)
        if self._native is not None:
            self._native.drop(handle)
        self.map_ops.forget(gobj)
        gobj.close()
        return 0

    def call_processor(self, name: int, data: int, length: int, out: int, out_len: int) -> int:
        return wasm_bpf_call(self.processors, self.instance.memory, name, data, length, out, out_len)
