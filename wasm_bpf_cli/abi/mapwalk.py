"""Serve a guest's map walk from BPF_MAP_LOOKUP_BATCH.

A guest walks a map with get-next-key + lookup: two host calls and two bpf
syscalls per entry. When a walk starts (get-next-key from NULL) on a map type
with batch ops, one bpf_map_lookup_batch fetches the next keys and values;
the walk's get-next-key calls are answered from that batch, and so is the
first lookup of each key handed out, while the batch is fresh.

What the guest sees (README, "Map walks"):
- each key it is handed and each value it looks up as they were at most
  FRESH_S earlier: a stale batch is fetched again before it is used;
- its own writes: an update or delete on the map drops the batch;
- a second lookup of the same key, or of a key the walk did not just hand
  out, reads the kernel.
Anything else (a get-next-key from another key, a batch error) falls back to
the per-call syscalls, which behave exactly as they do without this module.
"""
import ctypes
import time
from typing import Dict, Optional

from wasm_bpf_cli.abi import errno as werr

# BPF_MAP_TYPE_HASH, ARRAY, PERCPU_HASH, PERCPU_ARRAY, LRU_HASH, LRU_PERCPU_HASH
BATCH_MAP_TYPES = frozenset((1, 2, 5, 6, 9, 10))
# The first batch of a walk is small: a guest that only peeks at the first key
# pays for a few entries, not a full batch.
FIRST_BATCH = 16
MAX_BATCH = 128
MIN_BATCH = 4  # fewer entries fit the budget: not worth a batch
BUDGET_BYTES = 64 * 1024  # keys + values held for one map
FRESH_S = 0.001
_ENOENT, _ENOSPC = 2, 28  # Linux, as libbpf returns them

_string_at = ctypes.string_at
_monotonic = time.monotonic


class _Walk:
    """One map's batch buffers and the position of the guest's walk in them."""

    __slots__ = ("owner", "key_size", "value_size", "capacity", "keys", "values", "key_at", "value_at",
                 "token_out", "batch_in", "next_batch", "count", "at_end", "fetched_keys",
                 "index", "current", "value_unread", "fresh_until", "restarting")

    def __init__(self, owner, key_size: int, value_size: int, capacity: int):
        self.owner = owner
        self.key_size = key_size
        self.value_size = value_size
        self.capacity = capacity
        self.keys = ctypes.create_string_buffer(capacity * key_size)
        self.values = ctypes.create_string_buffer(capacity * value_size)
        # Guest memory as byte arrays: reading and writing their `raw` costs a
        # third of a ctypes.string_at or ctypes.memmove call.
        self.key_at = (ctypes.c_char * key_size).from_address
        self.value_at = (ctypes.c_char * value_size).from_address
        # A hash map's token is a u32 bucket index, an array's is a key.
        self.token_out = ctypes.create_string_buffer(max(key_size, 8))
        self.batch_in: Optional[bytes] = None  # the token the current batch was fetched with
        self.next_batch = b""
        self.count = 0
        self.at_end = False  # the current batch is the map's last
        self.fetched_keys = b""
        self.index = 0
        self.current: Optional[bytes] = None  # the key handed out last; None: no walk
        self.value_unread = False  # its cached value was not looked up yet
        self.fresh_until = 0.0
        # The guest wrote to the map at the first key of a walk: it may empty the
        # map by restarting from NULL after each delete, where a batch per
        # restart costs more than it saves. Its walks from NULL go to the kernel
        # until it walks past a first key again.
        self.restarting = False


class MapWalks:
    """The batch walks of one guest's maps, by map fd."""

    def __init__(self):
        self._walks: Dict[int, _Walk] = {}
        self._no_batch: Dict[int, object] = {}  # fd -> owner whose map refused a batch
        self._lib = None

    # -- what HostAbi.map_operate calls -----------------------------------
    def next_key(self, fd: int, owner, key: Optional[int], next_key: int,
                 key_size: int, value_size: int) -> Optional[int]:
        """Get-next-key from the batch: 0 or -ENOENT (WASI) at the end of the
        map; None when the caller must make the syscall. `key`, `next_key`:
        host addresses, bounds-checked (`key` None: from the start)."""
        if key is None:
            return self._start(fd, owner, next_key, key_size, value_size)
        walk = self._walks.get(fd)
        if walk is None:
            return None
        if walk.current is None:
            walk.restarting = False
            return None
        if walk.owner is not owner or walk.key_at(key).raw != walk.current:
            walk.current = None
            return None
        if _monotonic() >= walk.fresh_until and not self._refetch(fd, walk):
            return None
        index = walk.index + 1
        if index >= walk.count:
            return self._hand_out(fd, walk, index, next_key)
        # _hand_out's common case, inline: one call less per entry
        size = walk.key_size
        start = index * size
        current = walk.current = walk.fetched_keys[start:start + size]
        walk.key_at(next_key).raw = current
        walk.index = index
        walk.value_unread = True
        return 0

    def lookup(self, fd: int, owner, key: int, value: int) -> bool:
        """Copy the cached value of the key just handed out, on its first
        lookup while the batch is fresh; False: the caller makes the syscall."""
        walk = self._walks.get(fd)
        if walk is None or not walk.value_unread or walk.owner is not owner:
            return False
        if walk.key_at(key).raw != walk.current:
            return False
        walk.value_unread = False
        if _monotonic() >= walk.fresh_until:
            return False
        start = walk.index * walk.value_size
        walk.value_at(value).raw = walk.values[start:start + walk.value_size]
        return True

    def forget(self, fd: int) -> None:
        """The guest writes to map `fd`: its next reads must see the write."""
        walk = self._walks.get(fd)
        if walk is not None:
            if walk.current is not None and walk.index == 0 and walk.batch_in is None:
                walk.restarting = True
            walk.current = None
            walk.value_unread = False

    def drop(self, fds) -> None:
        """Maps `fds` are closed: free their buffers."""
        for fd in fds:
            self._walks.pop(fd, None)
            self._no_batch.pop(fd, None)

    # -- batches ----------------------------------------------------------
    def _start(self, fd: int, owner, next_key: int, key_size: int, value_size: int) -> Optional[int]:
        walk = self._walks.get(fd)
        if walk is None or walk.owner is not owner:
            walk = self._new_walk(fd, owner, key_size, value_size)
            if walk is None:
                return None
        walk.current = None
        walk.value_unread = False
        if walk.restarting:
            return None
        if not self._fetch(fd, walk, None, FIRST_BATCH):
            return None
        return self._hand_out(fd, walk, 0, next_key)

    def _new_walk(self, fd: int, owner, key_size: int, value_size: int) -> Optional[_Walk]:
        if self._no_batch.get(fd) is owner:
            return None
        info = owner.maps.get(fd)
        entry_size = key_size + value_size
        capacity = min(MAX_BATCH, BUDGET_BYTES // max(entry_size, 1))
        if info is None or info.type not in BATCH_MAP_TYPES or capacity < MIN_BATCH or key_size <= 0:
            self._no_batch[fd] = owner
            return None
        if self._lib is None:
            from wasm_bpf_cli.bpf import libbpf

            self._lib = libbpf()
        walk = self._walks[fd] = _Walk(owner, key_size, value_size, capacity)
        return walk

    def _fetch(self, fd: int, walk: _Walk, batch_in: Optional[bytes], want: int) -> bool:
        """Fetch up to `want` entries from token `batch_in` (None: the map's
        start) into the walk's buffers. False: batches do not work on this
        map; the walk is dropped and the map is not batched again."""
        want = min(want, walk.capacity)
        count = ctypes.c_uint(want)
        ret = self._lib.bpf_map_lookup_batch(fd, batch_in, walk.token_out, walk.keys, walk.values,
                                             ctypes.byref(count), None)
        if ret < 0 and -ret == _ENOSPC and want < walk.capacity:
            # One hash bucket holds more entries than `want`: the full batch may fit it.
            return self._fetch(fd, walk, batch_in, walk.capacity)
        if (ret < 0 and -ret != _ENOENT) or (ret == 0 and count.value == 0):
            self._walks.pop(fd, None)
            self._no_batch[fd] = walk.owner
            return False
        walk.count = count.value
        walk.at_end = ret < 0
        walk.fetched_keys = _string_at(walk.keys, walk.count * walk.key_size)
        walk.batch_in = batch_in
        walk.next_batch = walk.token_out.raw
        walk.fresh_until = _monotonic() + FRESH_S
        return True

    def _refetch(self, fd: int, walk: _Walk) -> bool:
        """Fetch the current batch again (it is stale) and find the key handed
        out last in it. False if that key is gone: the caller asks the kernel."""
        current = walk.current
        if not self._fetch(fd, walk, walk.batch_in, walk.capacity):
            return False
        size = walk.key_size
        keys = walk.fetched_keys
        for index in range(walk.count):
            if keys[index * size:(index + 1) * size] == current:
                walk.index = index
                return True
        walk.current = None
        walk.value_unread = False
        return False

    def _hand_out(self, fd: int, walk: _Walk, index: int, next_key: int) -> Optional[int]:
        """Write the walk's key number `index` to the guest's `next_key`,
        fetching the next batch first when this one is used up."""
        if index >= walk.count:
            if walk.at_end:
                walk.current = None
                walk.value_unread = False
                return werr.ENOENT
            if not self._fetch(fd, walk, walk.next_batch, walk.capacity):
                return None
            if walk.count == 0:
                walk.current = None
                walk.value_unread = False
                return werr.ENOENT
            index = 0
        size = walk.key_size
        current = walk.current = walk.fetched_keys[index * size:(index + 1) * size]
        walk.key_at(next_key).raw = current
        walk.index = index
        walk.value_unread = True
        return 0
