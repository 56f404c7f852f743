"""Check a metrics config against the module's BPF objects and compile it.

Before anything is loaded, the BTF of the objects embedded in the module
says, for every metric, where each label's key member and the value lie in
the map's bytes and whether the decoders fit their types. What comes out
(a Plan per metric) is all the scrape needs: offsets and sizes, no BTF walk
per entry. A config that does not fit is one UsageError line.
"""
import struct
from dataclasses import dataclass
from functools import cached_property
from typing import Dict, List, Optional, Sequence, Tuple

from wasm_bpf_cli.btf_values import U32_KEY, MapTypes
from wasm_bpf_cli.errors import UsageError
from wasm_bpf_cli.inspect import btf_reader as B
from wasm_bpf_cli.inspect.elf_reader import read_elf
from wasm_bpf_cli.metrics.config import LabelSpec, MetricsConfig, MetricSpec

# Map types whose entries a metric can read, by the kernel's number.
READABLE_MAP_TYPES = {1: "hash", 2: "array", 5: "percpu_hash", 6: "percpu_array",
                      9: "lru_hash", 10: "lru_percpu_hash"}
PER_CPU_MAP_TYPES = {5, 6, 10}
ARRAY_MAP_TYPES = {2, 6}
_INT_DECODERS = {"integer", "errno", "syscall", "ifname", "static_map", "cgroup", "ksym"}
_INT_FORMATS = {(1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h",
                (4, False): "I", (4, True): "i", (8, False): "Q", (8, True): "q"}


@dataclass(frozen=True)
class Field:
    """Where a number (or a char array, or an array of numbers) lies in a key or value."""

    offset: int
    size: int  # of one element
    kind: str  # "int" | "chars" | "slots"
    signed: bool = False
    count: int = 1  # elements of "chars" / "slots"

    @cached_property
    def _unpack(self):
        return struct.Struct("<" + _INT_FORMATS[(self.size, self.signed)]).unpack_from

    def number(self, data: bytes) -> int:
        return self._unpack(data, self.offset)[0]

    def column(self, records: bytes, stride: int) -> List[int]:
        """The number of each record of `records` (laid end to end, `stride`
        bytes each): one struct pass over them all."""
        layout = self.__dict__.setdefault("_columns", {}).get(stride)
        if layout is None:
            tail = stride - self.offset - self.size
            layout = struct.Struct("<" + (f"{self.offset}x" if self.offset else "")
                                   + _INT_FORMATS[(self.size, self.signed)] + (f"{tail}x" if tail else ""))
            self.__dict__["_columns"][stride] = layout
        return [v for (v,) in layout.iter_unpack(records)]

    def chars(self, data: bytes) -> str:
        raw = data[self.offset:self.offset + self.count]
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

    @cached_property
    def _unpack_slots(self):
        return struct.Struct(f"<{self.count}{_INT_FORMATS[(self.size, self.signed)]}").unpack_from

    def slots(self, data: bytes) -> Tuple[int, ...]:
        return self._unpack_slots(data, self.offset)


@dataclass(frozen=True)
class MapShape:
    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int

    @property
    def per_cpu(self) -> bool:
        return self.type in PER_CPU_MAP_TYPES

    @property
    def is_array(self) -> bool:
        return self.type in ARRAY_MAP_TYPES


@dataclass(frozen=True)
class Plan:
    """One metric, compiled: what to read from which bytes."""

    spec: MetricSpec
    shape: MapShape
    labels: Tuple[Tuple[LabelSpec, Field], ...]
    value: Field
    bucket: Optional[Field]  # histograms with the slot/bound in the key; None: slots in the value


def compile_config(config: MetricsConfig, images: Sequence[bytes]) -> List[Plan]:
    """A Plan per metric; UsageError for the first one that does not fit."""
    objects = []
    for image in images:
        try:
            objects.append(_ObjectMaps(image))
        except Exception:  # noqa: BLE001 - an object without usable BTF describes no map
            continue
    available = sorted({name for obj in objects for name in obj.shapes})
    plans = []
    for spec in config.metrics:
        found = next(((obj, shape) for obj in objects for shape in [obj.shape(spec.map)] if shape), None)
        where = f"{config.source}: {spec.where()}"
        if found is None:
            raise UsageError(f"{where}: map {spec.map!r} is in none of the module's BPF objects "
                             f"(maps: {', '.join(available) or 'none with BTF'})")
        plans.append(_Compiler(found[0], found[1], spec, where).plan())
    return plans


class _ObjectMaps:
    """The map shapes and key/value types of one embedded object."""

    def __init__(self, elf: bytes):
        self.types = MapTypes(elf)
        self.btf = self.types.btf
        self.shapes: Dict[str, MapShape] = {}
        for d in self.btf.map_definitions():
            self.shapes[d["name"]] = MapShape(d["name"], d["type"] or 0, d["key_size"] or 0,
                                              d["value_size"] or 0, d["max_entries"] or 0)
        elf_sections = read_elf(elf)
        for sec in self.btf.datasecs():  # global data: an array of one entry keyed by u32 0
            if sec.name.startswith(".") and sec.name != ".maps":  # not "license"
                # clang leaves a DATASEC's size 0 in the object (libbpf sets it
                # from the ELF section at load): the section's own size.
                size = sec.size_or_type or getattr(elf_sections.section(sec.name), "size", 0)
                self.shapes.setdefault(sec.name, MapShape(sec.name, 2, 4, size, 1))

    def shape(self, name: str) -> Optional[MapShape]:
        return self.shapes.get(name)


class _Compiler:
    def __init__(self, obj: _ObjectMaps, shape: MapShape, spec: MetricSpec, where: str):
        self.btf = obj.btf
        self.key_type, self.value_type = obj.types.lookup(shape.name)
        self.shape = shape
        self.spec = spec
        self.where = where

    def fail(self, message: str) -> UsageError:
        return UsageError(f"{self.where}: {message}")

    def plan(self) -> Plan:
        spec, shape = self.spec, self.shape
        if shape.type not in READABLE_MAP_TYPES:
            raise self.fail(f"map {spec.map!r} (type {shape.type}) holds no entries a metric can read "
                            f"(readable: {', '.join(sorted(set(READABLE_MAP_TYPES.values())))})")
        if spec.per_cpu == "cpu" and not shape.per_cpu:
            raise self.fail(f"per_cpu = \"cpu\" but map {spec.map!r} is not a per-CPU map")
        if self.value_type is None:
            raise self.fail(f"map {spec.map!r} has no BTF value type (declare it with __type(value, ...))")
        labels = tuple((label, self._label(label)) for label in spec.labels)
        value = self._field(self.value_type, spec.value, "value", "value")
        bucket = None
        if spec.kind == "histogram":
            if value.kind == "slots":
                if spec.buckets == "keyed":
                    raise self.fail("buckets = \"keyed\" needs the bound in the key, but the value "
                                    "is an array of slots (use log2 or linear)")
                if spec.bucket_member:
                    raise self.fail("bucket_member is set, but the value is an array of slots: "
                                    "leave bucket_member out")
            else:
                bucket = self._key_field(spec.bucket_member, "bucket_member")
                if bucket.kind != "int":
                    raise self.fail(f"the bucket ({spec.bucket_member or 'the key'}) must be an integer, "
                                    f"not {self._describe(bucket)}")
        if value.kind == "chars" or (value.kind == "slots" and spec.kind != "histogram"):
            raise self.fail(f"the value ({spec.value or 'the whole value'}) is {self._describe(value)}, "
                            "not a number" + (": name a member with value = \"...\", or use a histogram"
                                              if value.kind == "slots" else ""))
        return Plan(spec, shape, labels, value, bucket)

    def _label(self, label: LabelSpec) -> Field:
        f = self._key_field(label.member, f"label {label.name!r}")
        what = f"label {label.name!r}: decoder {label.decoder!r}"
        if label.decoder == "string":
            if f.kind != "chars":
                raise self.fail(f"{what} needs a char array, but {label.member or 'the key'} is "
                                f"{self._describe(f)}")
        elif label.decoder in _INT_DECODERS:
            if f.kind != "int":
                raise self.fail(f"{what} needs an integer, but {label.member or 'the key'} is "
                                f"{self._describe(f)}")
            if label.decoder in ("cgroup", "ksym") and f.size != 8:
                raise self.fail(f"{what} needs a 64-bit integer, but {label.member or 'the key'} "
                                f"has {f.size} bytes")
        return f

    def _key_field(self, path: str, what: str) -> Field:
        if self.key_type is None:
            raise self.fail(f"map {self.spec.map!r} has no BTF key type (declare it with __type(key, ...))")
        if self.key_type == U32_KEY:
            if path:
                raise self.fail(f"{what}: the key of {self.spec.map!r} is a plain u32 index, it has "
                                f"no member {path!r}")
            return Field(0, 4, "int")
        return self._field(self.key_type, path, "key", what)

    def _describe(self, f: Field) -> str:
        return {"int": f"a {f.size * 8}-bit integer", "chars": f"char[{f.count}]",
                "slots": f"an array of {f.count} integers"}[f.kind]

    def _field(self, type_id: int, path: str, side: str, what: str) -> Field:
        offset = 0
        walked = []
        for part in (path.split(".") if path else []):
            t = self.btf.resolve(type_id)
            found = self._member(t, part) if t is not None else None
            if found is None:
                members = self._member_names(t) if t is not None else []
                where = f"{side} member {'.'.join(walked + [part])!r}"
                raise self.fail(f"{what}: no {where} in map {self.spec.map!r}"
                                + (f" (members: {', '.join(members)})" if members else
                                   f" (its {side} is {self.btf.c_name(type_id)}, not a struct)"))
            member_type, bit_offset, bits = found
            if bits or bit_offset % 8:
                raise self.fail(f"{what}: {side} member {part!r} is a bitfield (not supported)")
            offset += bit_offset // 8
            type_id = member_type
            walked.append(part)
        return self._leaf(type_id, offset, what, path or f"the whole {side}")

    def _member(self, t: B.BtfType, name: str, depth: int = 0):
        """(type id, bit offset, bitfield size) of member `name`, looking into anonymous members."""
        if depth > B.MAX_DEPTH:
            return None
        if t.kind == B.DATASEC:
            for var_id, offset, _size in t.members:
                var = self.btf.get(var_id)
                if var is not None and var.kind == B.VAR and var.name == name:
                    return var.size_or_type, offset * 8, 0
            return None
        if t.kind not in (B.STRUCT, B.UNION):
            return None
        for mname, mtype, moffset in t.members:
            bits, bit_off = (moffset >> 24, moffset & 0xFFFFFF) if t.kind_flag else (0, moffset)
            if mname == name:
                return mtype, bit_off, bits
            if not mname:
                inner = self.btf.resolve(mtype)
                found = self._member(inner, name, depth + 1) if inner is not None else None
                if found is not None:
                    return found[0], found[1] + bit_off, found[2]
        return None

    def _member_names(self, t: B.BtfType) -> List[str]:
        if t.kind == B.DATASEC:
            return [v.name for v in (self.btf.get(i) for i, _o, _s in t.members) if v is not None]
        if t.kind in (B.STRUCT, B.UNION):
            return [name or "<anon>" for name, _t, _o in t.members]
        return []

    def _leaf(self, type_id: int, offset: int, what: str, name: str) -> Field:
        t = self.btf.resolve(type_id)
        if t is not None and t.kind in (B.INT, B.ENUM, B.ENUM64, B.PTR):
            size = 8 if t.kind == B.PTR else t.size_or_type
            signed = t.kind == B.INT and bool((t.extra[0] >> 24) & 1)
            if (size, signed) in _INT_FORMATS:
                return Field(offset, size, "int", signed)
        if t is not None and t.kind == B.ARRAY:
            elem_id, _index, count = t.extra
            elem = self.btf.resolve(elem_id)
            if elem is not None and elem.kind == B.INT:
                size = elem.size_or_type
                if size == 1 and ((elem.extra[0] >> 24) & 2 or elem.name == "char"):
                    return Field(offset, 1, "chars", count=count)
                signed = bool((elem.extra[0] >> 24) & 1)
                if (size, signed) in _INT_FORMATS:
                    return Field(offset, size, "slots", signed, count)
        described = self.btf.c_name(type_id) if t is not None else "void"
        raise self.fail(f"{what}: {name} is {described}: not a number, a char array or an array "
                        "of numbers (name one of its members)")
