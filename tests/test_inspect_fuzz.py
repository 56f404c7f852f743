"""Property-based fuzzing of the inspect parsers: on random bytes and on
mutations / truncations of valid inputs, only InspectError may escape and
each call finishes within the hypothesis deadline."""
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_inspect_helpers import bpf_object, make_wasm
from wasm_bpf_cli.inspect import InspectError, inspect_bytes
from wasm_bpf_cli.inspect.bpf_object import describe_object
from wasm_bpf_cli.inspect.btf_reader import Btf, core_relocation_count
from wasm_bpf_cli.inspect.elf_reader import read_elf, scan_bpf_objects
from wasm_bpf_cli.inspect.wasm_reader import read_wasm

FUZZ = settings(max_examples=400, deadline=1000,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _valid_inputs():
    obj = bpf_object()
    elf = read_elf(obj)
    btf = elf.section_bytes(elf.section(".BTF"))
    ext = elf.section_bytes(elf.section(".BTF.ext"))
    return {"obj": obj, "btf": btf, "ext": ext, "wasm": make_wasm([obj])}


VALID = _valid_inputs()


@st.composite
def mutated(draw, key):
    """A valid input with some bytes overwritten (biased towards the header
    and length fields, where the interesting checks are), maybe truncated."""
    data = bytearray(VALID[key])
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.booleans()):
            pos = draw(st.integers(0, min(len(data) - 1, 256)))
        else:
            pos = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["byte", "u32", "u64"]))
        if kind == "byte":
            data[pos] = draw(st.integers(0, 255))
        elif pos + 8 <= len(data):
            value = draw(st.sampled_from([0, 1, 0x7F, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF,
                                          len(data), len(data) + 1, 2 ** 63]))
            fmt = "<I" if kind == "u32" else "<Q"
            struct.pack_into(fmt, data, pos, value & (0xFFFFFFFF if kind == "u32" else 2 ** 64 - 1))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data)


def only_inspect_errors(fn, data):
    try:
        fn(data)
    except InspectError:
        pass


def _elf_and_objects(data):
    only_inspect_errors(lambda d: describe_object(d), data)
    for off, _length, err in scan_bpf_objects(data):
        if err is None:
            only_inspect_errors(lambda d: describe_object(d, off), data)


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_every_parser(data):
    for fn in (read_wasm, read_elf, Btf, core_relocation_count, inspect_bytes, describe_object):
        only_inspect_errors(fn, data)
    only_inspect_errors(read_wasm, b"\0asm\x01\0\0\0" + data)
    only_inspect_errors(inspect_bytes, b"\x7fELF\x02\x01\x01\0" + data)
    only_inspect_errors(Btf, b"\x9f\xeb\x01\x00\x18\0\0\0" + data)


@FUZZ
@given(mutated("wasm"))
def test_mutated_wasm(data):
    only_inspect_errors(inspect_bytes, data)


@FUZZ
@given(mutated("obj"))
def test_mutated_bpf_object(data):
    only_inspect_errors(inspect_bytes, data)
    only_inspect_errors(_elf_and_objects, data)


@FUZZ
@given(mutated("btf"))
def test_mutated_btf(data):
    def everything(d):
        btf = Btf(d)
        btf.map_definitions()
        for sec in btf.datasecs():
            btf.variables(sec)
        for t in btf.types[1:]:
            btf.c_name(t.id)
            btf.size(t.id)
    only_inspect_errors(everything, data)


@FUZZ
@given(mutated("ext"))
def test_mutated_btf_ext(data):
    only_inspect_errors(core_relocation_count, data)


@FUZZ
@given(st.binary(min_size=1, max_size=64), st.integers(0, 8))
def test_wasm_embedding_random_elf_like_bytes(tail, copies):
    # ELF headers claiming EM_BPF followed by garbage, many times over
    blob = (b"\x7fELF\x02\x01\x01" + b"\0" * 11 + b"\xf7\x00" + tail) * (copies + 1)
    report = inspect_bytes(make_wasm([blob]))
    assert all(o["error"] for o in report["objects"]) or report["objects"]


def _elf(sections, strtab: bytes, symbols: bytes = b"") -> bytes:
    """A minimal ELF64 LE EM_BPF object: `sections` [(name_off, type, offset, size, link)]
    after a section 1 = .shstrtab/.strtab holding `strtab`."""
    body = strtab + symbols
    shoff = 64 + len(body)
    shdrs = [struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
             struct.pack("<IIQQQQIIQQ", 0, 3, 0, 0, 64, len(strtab), 0, 0, 1, 0)]
    for name_off, sh_type, off, size, link in sections:
        shdrs.append(struct.pack("<IIQQQQIIQQ", name_off, sh_type, 0, 0, off, size, link, 0, 8, 24))
    ehdr = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + b"\0" * 9, 1, 247, 1, 0,
                       0, shoff, 0, 64, 0, 0, 64, len(shdrs), 1)
    return ehdr + body + b"".join(shdrs)


@settings(max_examples=1, deadline=5000)
@given(st.just(None))
def test_adversarial_sizes_stay_fast(_):
    # 20k sections all named by one 1 MB string without a NUL nearby
    big = b"A" * (1 << 20) + b"\0"
    try:
        describe_object(_elf([(0, 1, 64, 0, 0)] * 20000, big))
    except InspectError as exc:
        assert "longer than 4096 bytes" in str(exc)
    # 20k `.data.x` sections (each its own global-data map) and 40k symbols
    names = b"\0.data.x\0"
    syms = b"".join(struct.pack("<IBBHQQ", 1, 1, 0, 2 + i % 20000, 0, 4) for i in range(40000))
    sections = [(1, 1, 64, len(names), 0)] * 20000 + [(1, 2, 64 + len(names), len(syms), 1)]
    desc = describe_object(_elf(sections, names, syms))
    assert len(desc["maps"]) == 20000 and len(desc["globals"]) == 40000
    # a data segment packed with EM_BPF headers
    header = b"\x7fELF\x02\x01\x01" + b"\0" * 11 + b"\xf7\x00" + b"\0" * 44
    report = inspect_bytes(make_wasm([header * 2000]))
    assert len(report["objects"]) == 2000
