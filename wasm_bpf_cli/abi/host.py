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
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Set

from wasm_bpf_cli.abi import errno as werr
from wasm_bpf_cli.abi import nativepoll
from wasm_bpf_cli.abi.calls import Filtered, wasm_bpf_call
from wasm_bpf_cli.abi.mapwalk import MapWalks
from wasm_bpf_cli.abi.poller import BUFFER_MAP_TYPES, BufferPoller, BufferStats, Staging
from wasm_bpf_cli.abi.preload import Preloader
from wasm_bpf_cli.abi.signatures import (SAMPLE_CALLBACK, WASM_BPF_FUNCTIONS, WASM_BPF_MODULE,
                                         WRAPPER_POLL, WRAPPER_POLL_NAME)
from wasm_bpf_cli.bpf import BpfError, BpfObject, MapInfo, map_info
from wasm_bpf_cli.bpf.attach import attach_program
from wasm_bpf_cli.engines.base import GuestExit, GuestTrap, HostFunction, Instance
from wasm_bpf_cli.engines.rewrite import (PERF_DISPATCH_EXPORT_PREFIX, PERF_DISPATCH_TABLE,
                                          RING_DISPATCH_EXPORT_PREFIX, RING_DISPATCH_TABLE)

if TYPE_CHECKING:
    from wasm_bpf_cli.policy import Policy

log = logging.getLogger("wasm_bpf.host")
policy_log = logging.getLogger("wasm_bpf.policy")

U32 = 0xFFFFFFFF
MAX_NAME = 4096
BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM, BPF_MAP_GET_NEXT_KEY = 1, 2, 3, 4
PERCPU_MAP_TYPES = {5, 6, 10, 21}  # PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE


def _possible_cpus() -> int:
    from wasm_bpf_cli.bpf import libbpf

    return max(1, libbpf().libbpf_num_possible_cpus())


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


class HostAbi:
    """State and implementation of the host functions for one guest."""

    def __init__(self, object_name: str = "guest", wrapper_module: str = "callback-wrapper",
                 callback_export: str = "go-callback", max_object_size: Optional[int] = None,
                 policy: Optional["Policy"] = None, max_delivery_delay: float = 0.0):
        self.object_name = object_name
        self.max_delivery_delay = max_delivery_delay  # seconds; see BufferPoller.poll
        self.wrapper_module = wrapper_module
        self.callback_export = callback_export
        self.policy = policy
        limits = [n for n in (max_object_size, policy and policy.max_object_size) if n is not None]
        self.max_object_size = min(limits) if limits else None
        self._denials_reported: Set[str] = set()
        self.denials: List[str] = []  # each distinct denial, in order (RunResult.denials)
        # Where a denial is reported instead of the log (the Runner's stderr sink), if set.
        self.on_denial: Optional[Callable[[str], None]] = None
        self._preloader: Optional[Preloader] = None
        self.instance: Optional[Instance] = None
        self.objects: Dict[int, GuestObject] = {}
        self.buffers: List[BufferStats] = []
        self._next_handle = 1
        self._lock = threading.RLock()  # objects may be read from other threads
        self._stop = threading.Event()
        self._abort = False  # request_abort(): a poll ends the guest instead of returning -EINTR
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._fd_owner: Dict[int, GuestObject] = {}
        self._cpus: Optional[int] = None
        self._staging = None  # poller.Staging once made; False if the memory cannot grow
        self._wrapper_guest: Optional[bool] = None  # see _polls_through_wrapper
        self._ring_calls: Dict[str, Optional[Callable[..., int]]] = {}
        self._map_cache: Dict[int, tuple] = {}  # fd -> (owner, key size, value size)
        self._walks = MapWalks()
        self._libbpf = None
        self.processors = None  # wasm_bpf_call's and --filter's (abi/calls.py), set by the runner
        lib = nativepoll.library()
        self._native = None if lib is None else nativepoll.NativePolls(
            lib, self._wake_r, max_delivery_delay, policy.max_poll_timeout_ms if policy else None)

    # -- wiring ---------------------------------------------------------
    def host_functions(self) -> List[HostFunction]:
        impl = {
            "wasm_load_bpf_object": self.load_bpf_object,
            "wasm_attach_bpf_program": self.attach_bpf_program,
            "wasm_bpf_buffer_poll": self.buffer_poll,
            "wasm_bpf_map_fd_by_name": self.map_fd_by_name,
            "wasm_bpf_map_operate": self.map_operate,
            "wasm_close_bpf_object": self.close_bpf_object,
            "wasm_bpf_call": self.call_processor,
        }
        wrapper_poll = self.wrapper_buffer_poll
        if self.policy is not None and self.policy.max_poll_timeout_ms is not None:
            impl["wasm_bpf_buffer_poll"] = self._bounded_poll(self.buffer_poll)
            wrapper_poll = self._bounded_poll(wrapper_poll)
        funcs = [HostFunction(WASM_BPF_MODULE, name, sig, self._guarded(name, impl[name], sig))
                 for name, sig in WASM_BPF_FUNCTIONS.items()]
        funcs.append(HostFunction(self.wrapper_module, WRAPPER_POLL_NAME, WRAPPER_POLL,
                                  self._guarded("wrapper poll", wrapper_poll, WRAPPER_POLL)))
        if self._native is not None:  # the engine may serve this import in C (nativepoll.py)
            next(f for f in funcs if f.name == "wasm_bpf_buffer_poll").func.native_poll = self._native
        return funcs

    def _bounded_poll(self, poll: Callable[..., int]) -> Callable[..., int]:
        """The poll with its last argument, timeout_ms, cut to the policy's bound."""
        bound = self.policy.bound_timeout

        def bounded(*args: int) -> int:
            return poll(*args[:-1], bound(args[-1]))

        return bounded

    def bind(self, instance: Instance) -> None:
        self.instance = instance

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
        self._abort = True
        if self._native is not None:
            self._native.request_abort()  # before the wake-up: a woken C loop hands the poll to _stopped()
        self.request_stop()

    def _stopped(self) -> int:
        """What a poll returns once a stop was requested."""
        if self._abort:
            raise GuestTrap("the guest did not stop by itself", interrupted=True)
        return werr.EINTR

    @property
    def links_attached(self) -> int:
        with self._lock:
            return sum(g.attached for g in self.objects.values())

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def close_all(self) -> None:
        """Destroy every link, poller and object the guest left open."""
        with self._lock:
            objects, self.objects = list(self.objects.values()), {}
            self._fd_owner.clear()
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

    @staticmethod
    def _fail(err: BpfError) -> int:
        log.warning("%s", err)
        if getattr(err, "details", ""):
            log.info("%s", err.details)
        return werr.neg(err.errno) if err.errno else werr.EIO_NEG

    # -- the six functions ------------------------------------------------
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
                self._fail(err)
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
            self._fail(err)
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
            return self._fail(err)
        gobj.attached += 1
        log.debug("attached %s (%s)%s", name, prog.section, f" to {target}" if target else "")
        return 0

    # -- policy (wasm_bpf_cli.policy) -------------------------------------
    def _deny(self, message: str) -> None:
        """Report a denial on stderr, once per distinct message."""
        if message not in self._denials_reported:
            self._denials_reported.add(message)
            self.denials.append(message)
            if self.on_denial is not None:
                self.on_denial(message)
            else:
                policy_log.warning("policy: %s", message)

    def _load_denial(self, obj: BpfObject) -> Optional[str]:
        """Why the opened (not yet loaded) object may not be loaded, or None."""
        policy = self.policy
        with self._lock:
            live = len(self.objects)
            live_maps = sum(len(g.maps) for g in self.objects.values())
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

    def _attach_denial(self, prog) -> Optional[str]:
        policy = self.policy
        what = f"attach of program '{prog.name}' ({prog.section}, type {prog.prog_type_name})"
        links = self.links_attached
        if policy.max_links is not None and links >= policy.max_links:
            return f"{what} denied: {links} attached already, max_links is {policy.max_links} in {policy.source}"
        why = policy.attach_denial(prog.section, prog.prog_type_name)
        return f"{what} denied: {why}" if why else None

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
            # Guests ask for a buffer's fd right before their first poll. Set
            # the buffer up now: a perf buffer only receives samples emitted
            # after it exists, and the staging pages' setup cost (~1 ms) is
            # better paid here than by the first burst of samples.
            try:
                poller = self._poller(gobj, m.fd, info)
            except BpfError as err:
                log.warning("%s", err)  # the guest's poll will report it
            else:
                if poller.can_batch and not self._polls_through_wrapper():
                    staging = self._staging_pages()
                    # a --filter sees each sample in Python: that buffer stays on the Python path
                    filtered = self.processors is not None and self.processors.filter_for(info.name) is not None
                    if (staging is not None and self._native is not None and poller.ring is not None
                            and not filtered):
                        self._native.offer(self.instance, staging, handle, m.fd, poller, RING_DISPATCH_TABLE)
        return m.fd

    def _polls_through_wrapper(self) -> bool:
        """Whether the guest exports the callback-wrapper callback, as Go and
        TinyGo guests do. Their runtimes take the pages memory.grow adds as
        following their own heap end, so pages the host grew for itself
        would be handed out again (and the host's records would overwrite
        the heap): their samples are never staged, only delivered one by
        one through `data`."""
        if self._wrapper_guest is None:
            self._wrapper_guest = self.instance.export_caller(self.callback_export,
                                                              SAMPLE_CALLBACK) is not None
        return self._wrapper_guest

    def _poller(self, gobj: GuestObject, fd: int, info: MapInfo) -> BufferPoller:
        """The poller of buffer map `fd`, created on first use (raises BpfError)."""
        poller = gobj.pollers.get(fd)
        if poller is None:
            poller = BufferPoller(fd, info.type, info.name, self._wake_r, info.max_entries)
            gobj.pollers[fd] = poller
            self.buffers.append(poller.stats)
        return poller

    def close_bpf_object(self, handle: int) -> int:
        with self._lock:
            gobj = self.objects.pop(handle, None)
            if gobj is None:
                return werr.EINVAL
            for fd in gobj.maps:
                self._fd_owner.pop(fd, None)
        if self._native is not None:
            self._native.drop(handle)
        self._walks.drop(gobj.maps)
        gobj.close()
        return 0

    def call_processor(self, name: int, data: int, length: int, out: int, out_len: int) -> int:
        return wasm_bpf_call(self.processors, self.instance.memory, name, data, length, out, out_len)

    def _map_sizes(self, fd: int, gobj: GuestObject):
        """(owner, key size, value size as the kernel copies it), cached per fd."""
        info = gobj.maps[fd]
        value_size = info.value_size
        if info.type in PERCPU_MAP_TYPES:
            if self._cpus is None:
                self._cpus = _possible_cpus()
            value_size = ((value_size + 7) & ~7) * self._cpus
        entry = self._map_cache[fd] = (gobj, info.key_size, value_size)
        return entry

    def map_operate(self, fd: int, cmd: int, key: int, value: int, next_key: int, flags: int) -> int:
        # Hot (a map walk is two calls per entry): no lock (dict.get is atomic),
        # sizes cached per fd, libbpf's functions called directly.
        gobj = self._fd_owner.get(fd)
        if gobj is None:
            return werr.EBADF
        entry = self._map_cache.get(fd)
        if entry is None or entry[0] is not gobj:
            entry = self._map_sizes(fd, gobj)
        _, key_size, value_size = entry
        lib = self._libbpf
        if lib is None:
            from wasm_bpf_cli.bpf import libbpf

            lib = self._libbpf = libbpf()
        # One bounds check per call: both ranges lie inside [0, end), so
        # host_address(0, end) is the memory's base if they are valid.
        host_address = self.instance.memory.host_address
        key &= U32
        key_end = key + key_size
        try:
            if cmd == BPF_MAP_GET_NEXT_KEY:
                next_key &= U32
                end = next_key + key_size
                base = host_address(0, key_end if key_end > end else end) if next_key else None
                if base is None:
                    return werr.EFAULT
                k = base + key if key else None
                nk = base + next_key
                served = self._walks.next_key(fd, gobj, k, nk, key_size, value_size)
                if served is not None:
                    return served
                ret = lib.bpf_map_get_next_key(fd, k, nk)
            elif cmd == BPF_MAP_LOOKUP_ELEM or cmd == BPF_MAP_UPDATE_ELEM:
                value &= U32
                end = value + value_size
                base = host_address(0, key_end if key_end > end else end) if value else None
                if base is None or not (key or key_size == 0):
                    return werr.EFAULT
                k, v = base + key, base + value
                if cmd == BPF_MAP_LOOKUP_ELEM:
                    if self._walks.lookup(fd, gobj, k, v):
                        return 0
                    ret = lib.bpf_map_lookup_elem(fd, k, v)
                else:
                    self._walks.forget(fd)
                    ret = lib.bpf_map_update_elem(fd, k, v, flags & 0xFFFFFFFFFFFFFFFF)
            elif cmd == BPF_MAP_DELETE_ELEM:
                k = host_address(key, key_size) if (key or key_size == 0) else None
                if k is None:
                    return werr.EFAULT
                self._walks.forget(fd)
                ret = lib.bpf_map_delete_elem(fd, k)
            else:
                return werr.EINVAL
        except (ctypes.ArgumentError, TypeError, OverflowError):
            return werr.EINVAL
        return werr.neg(ret) if ret < 0 else 0

    def buffer_poll(self, handle: int, fd: int, sample_func: int, ctx: int, data: int,
                    max_size: int, timeout_ms: int) -> int:
        native = self._native
        if native is not None and native.driven:  # the C loop, entered from here (nativepoll.py)
            got = native.poll(handle, fd, sample_func & U32, ctx, data, max_size, timeout_ms)
            if got is not None:
                return got
        caller = self.instance.table_caller(sample_func & U32, SAMPLE_CALLBACK)
        if caller is None:
            log.warning("poll: table entry %d is not a (i32, i32, i32) -> i32 function", sample_func & U32)
            return werr.EINVAL
        if self._native is not None:  # checked: the C loop may call it from now on
            self._native.allow_callback(handle, fd, sample_func & U32)
        return self._poll(handle, fd, caller, ctx, data, max_size, timeout_ms,
                          (None, sample_func & U32))

    def wrapper_buffer_poll(self, handle: int, fd: int, ctx: int, data: int,
                            max_size: int, timeout_ms: int) -> int:
        caller = self.instance.export_caller(self.callback_export, SAMPLE_CALLBACK)
        if caller is None:
            log.warning("poll: the module exports no function %r of type (i32, i32, i32) -> i32",
                        self.callback_export)
            return werr.EINVAL
        # no batch: staging pages would be grown behind the guest's allocator
        # (see _polls_through_wrapper)
        return self._poll(handle, fd, caller, ctx, data, max_size, timeout_ms)

    def _staging_pages(self) -> Optional[Staging]:
        """The staging pages for batched delivery, grown once; None if the
        guest's memory cannot grow (samples are then delivered one by one)."""
        if self._staging is None:
            try:
                self._staging = Staging(self.instance.memory)
            except Exception as err:  # noqa: BLE001 - the per-sample path still works
                log.debug("buffers are delivered per sample: %s", err)
                self._staging = False
        return self._staging or None

    def _ring_dispatch(self, name: str):
        """The engine's batch dispatch loop `name` and the staging pages, or
        None (per-sample delivery) if either is missing."""
        staging = self._staging_pages()
        if staging is None or staging.busy:
            return None
        if name not in self._ring_calls:
            self._ring_calls[name] = self.instance.ring_dispatcher(name)
        call = self._ring_calls[name]
        return None if call is None else (call, self._staging)

    def _poll(self, handle: int, fd: int, caller, ctx: int, data: int, max_size: int,
              timeout_ms: int, batch=None) -> int:
        gobj = self._object(handle)
        if gobj is None:
            return werr.EINVAL
        info = gobj.maps.get(fd)
        if info is None:
            return werr.EBADF
        if info.type not in BUFFER_MAP_TYPES:
            return werr.EINVAL
        data &= U32
        if max_size <= 0 or self._addr(data, max_size) is None:
            return werr.EFAULT
        if self._stop.is_set():
            return self._stopped()
        try:
            poller = self._poller(gobj, fd, info)
        except BpfError as err:
            return self._fail(err)
        if poller.in_batch:
            # A callback polls the buffer whose batch it is part of: the rest of
            # that batch is not consumed yet and must not be delivered twice.
            return 0
        stats = poller.stats
        memory = self.instance.memory
        memmove = ctypes.memmove
        guest_stop = []  # a negative value of the guest's own, passed back unchanged

        def dispatch(address: int, size: int) -> int:
            n = size if size < max_size else max_size
            dst = memory.host_address(data, n)  # re-checked: the callback may grow memory
            if dst is None:
                guest_stop.append(werr.EFAULT)
                return werr.EFAULT
            memmove(dst, address, n)
            stats.delivered += 1
            ret = caller(ctx, data, n)
            if ret < 0:
                guest_stop.append(ret)
            return ret

        drain = None
        found = None
        process = self.processors.filter_for(info.name) if self.processors is not None else None
        if process is not None:  # each sample goes through the filter: no batches
            dispatch = Filtered.for_buffer(dispatch, process, stats, info.type)
        elif batch is not None and poller.can_batch:
            # batch: (None: the table entry batch[1] | the exported callback's name, table index)
            if poller.ring is not None:
                name = RING_DISPATCH_TABLE if batch[0] is None else RING_DISPATCH_EXPORT_PREFIX + batch[0]
                drainer = poller.drain_batches
            else:
                name = PERF_DISPATCH_TABLE if batch[0] is None else PERF_DISPATCH_EXPORT_PREFIX + batch[0]
                drainer = poller.drain_perf_batches
            found = self._ring_dispatch(name)
        if found is not None:
            call, staging = found
            cb = batch[1]

            def drain() -> int:
                staging.busy = poller.in_batch = True
                try:
                    got = drainer(staging, call, cb, ctx, data, max_size)
                finally:
                    staging.busy = poller.in_batch = False
                if got < 0 and not guest_stop:
                    guest_stop.append(got)
                return got

        got = poller.poll(dispatch, timeout_ms, self._stop.is_set, drain, self.max_delivery_delay)
        if process is not None and dispatch.paused and not guest_stop:
            return dispatch.handled  # the filter's time is up: the rest at the next poll
        if got is None:
            return self._stopped()
        if got < 0:
            return guest_stop[-1] if guest_stop else werr.neg(got)  # else libbpf's Linux errno
        return got
