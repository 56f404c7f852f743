"""The low-level readers on hand-made inputs: wasm structure and its errors,
ELF length and scanning, BTF names, libbpf section classification."""
import struct

import pytest

from test_inspect_helpers import bpf_object, make_wasm
from wasm_bpf_cli.inspect import InspectError
from wasm_bpf_cli.inspect.btf_reader import Btf, core_relocation_count
from wasm_bpf_cli.inspect.elf_reader import (find_bpf_objects, read_elf,
                                             scan_bpf_objects)
from wasm_bpf_cli.inspect.sec_defs import classify_section, map_type_name
from wasm_bpf_cli.inspect.wasm_reader import read_wasm

HEADER = b"\0asm\x01\0\0\0"


def test_wasm_sections_keep_raw_boundaries():
    wasm = make_wasm([b"abc"], extra='(@custom "note" "hi")')
    mod = read_wasm(wasm)
    assert [sid for sid, _, _ in mod.sections] == [1, 2, 3, 4, 5, 7, 10, 11, 0]
    assert mod.sections[0][1] == 8 and mod.sections[-1][2] == len(wasm)
    for (_, _, end), (_, start, _) in zip(mod.sections, mod.sections[1:]):
        assert end == start  # contiguous: a rewriter can splice sections
    assert mod.custom_sections == ["note"]
    [seg] = mod.data_segments
    assert mod.segment_bytes(seg) == b"abc" and seg.offset == 1024


def test_wasm_limits_and_tables():
    mod = read_wasm(make_wasm(memory=False, table=False,
                              extra='(memory (export "memory") 3 7) (table 4 8 funcref)'))
    assert mod.memories == [(3, 7, False, False)]
    assert mod.tables == [(4, 8, False, False)]
    assert mod.memory(0) == ((3, 7, False, False), False)


@pytest.mark.parametrize("data, message", [
    (b"", "not a wasm module (bad magic)"),
    (b"\0asn\x01\0\0\0", "not a wasm module (bad magic)"),
    (b"\0asm\x0d\0\x01\0", "unsupported wasm binary version 0x1000d"),
    # section size past the end of the file
    (HEADER + b"\x01\x64\x00", "type section at offset 0x8 has size 100, past the end of the file"),
    # truncated LEB128 (the size runs off the end)
    (HEADER + b"\x01\x80\x80", "truncated module at offset 0xb"),
    # LEB128 longer than 5 bytes
    (HEADER + b"\x01\x80\x80\x80\x80\x80\x00", "LEB128 longer than 5 bytes in module at offset 0x9"),
    # u32 LEB128 that does not fit in 32 bits
    (HEADER + b"\x01\xff\xff\xff\xff\x7f", "LEB128 value does not fit 32 bits in module at offset 0x9"),
    # an import section whose entry is cut short
    (HEADER + b"\x02\x05\x01\x03abc", "truncated import section at offset 0xf"),
    # import count larger than the section could hold
    (HEADER + b"\x02\x02\x7f\x00", "count 127 exceeds the remaining 1 bytes in import section at offset 0xa"),
    # import of an undefined type
    (HEADER + b"\x02\x06\x01\x01m\x01f\x00", "truncated import section at offset 0x10"),
    (HEADER + b"\x02\x07\x01\x01m\x01f\x00\x05", "import m.f uses undefined type 5"),
    (HEADER + b"\x01\x04\x01\x61\x00\x00", "unsupported type form 0x61 in type section at offset 0xb"),
    (HEADER + b"\x01\x05\x01\x60\x01\x55\x00", "unsupported value type 0x55 in type section"),
    (HEADER + b"\x0e\x00", "unknown section id 14 at offset 0x8"),
    (HEADER + b"\x01\x01\x00\x01\x01\x00", "duplicate type section at offset 0xb"),
    (HEADER + b"\x01\x02\x00\x00", "type section at offset 0x8 has 1 unread bytes"),
    # zero-length data segment claiming more bytes than exist
    (HEADER + b"\x0b\x06\x01\x00\x41\x00\x0b\x05", "count 5 exceeds the remaining 0 bytes in data section"),
    (HEADER + b"\x0b\x03\x01\x07\x00", "data segment 0 has bad flags 7 in data section"),
    (HEADER + b"\x0b\x05\x01\x00\x28\x0b\x00", "unsupported opcode 0x28 in constant expression"),
    (HEADER + b"\x00\x03\x05ab", "count 5 exceeds the remaining 2 bytes in custom section at offset 0xa"),
    (HEADER + b"\x05\x03\x01\x09\x00", "bad limits flags 0x09 in memory section at offset 0xb"),
])
def test_wasm_errors(data, message):
    with pytest.raises(InspectError) as err:
        read_wasm(data)
    assert message in str(err.value)


def test_wasm_empty_data_segments_and_const_forms():
    # data count section, an active segment at i32.const -1 (wraps), a segment
    # placed by global.get (address unknown), a passive one; all zero-length
    body = (b"\x0c\x01\x03"
            + b"\x0b\x0d\x03" + b"\x00\x41\x7f\x0b\x00" + b"\x00\x23\x00\x0b\x00" + b"\x01\x00")
    mod = read_wasm(HEADER + body)
    assert mod.data_count == 3
    assert [(s.mode, s.offset, s.size) for s in mod.data_segments] == [
        ("active", 0xFFFFFFFF, 0), ("active", None, 0), ("passive", None, 0)]


def test_elf_length_and_scan():
    raw = bpf_object()
    elf = read_elf(raw)
    assert elf.length == len(raw)
    assert elf.license == "GPL"
    names = [s.name for s in elf.sections]
    assert {"tp/sched/sched_process_exec", "kprobe/do_unlinkat", "xdp", ".maps", ".rodata",
            ".data", ".bss", "license", ".BTF", ".BTF.ext", ".symtab"} <= set(names)
    blob = b"junk\x7fELF" + raw + b"\x7fELF\x02\x01" + b"\0" * 100 + raw[:100]
    assert find_bpf_objects(blob) == [(8, len(raw))]
    scanned = scan_bpf_objects(blob, origin=0x1000)
    assert [(o, e is None) for o, _, e in scanned] == [(8, True), (len(blob) - 100, False)]
    assert scanned[1][2].startswith(f"BPF object at offset 0x{0x1000 + len(blob) - 100:x}: ")


def test_elf_extended_section_numbering_out_of_range():
    raw = bytearray(bpf_object())
    struct.pack_into("<H", raw, 60, 0)  # e_shnum = 0: count comes from section 0's sh_size
    shoff = struct.unpack_from("<Q", raw, 40)[0]
    struct.pack_into("<Q", raw, shoff + 32, 10 ** 6)
    with pytest.raises(InspectError, match="implausible section count 1000000|past the end"):
        read_elf(bytes(raw))


def test_elf_bad_section_name_table():
    raw = bytearray(bpf_object())
    struct.pack_into("<H", raw, 62, 999)  # e_shstrndx
    with pytest.raises(InspectError, match="section name table index 999 out of range"):
        read_elf(bytes(raw))


def _btf_of_object():
    elf = read_elf(bpf_object())
    return elf.section_bytes(elf.section(".BTF")), elf.section_bytes(elf.section(".BTF.ext"))


def test_btf_names_and_maps():
    btf_raw, ext_raw = _btf_of_object()
    btf = Btf(btf_raw)
    maps = {m["name"]: m for m in btf.map_definitions()}
    assert maps["exec_start"]["key_type"] == "int"
    assert maps["exec_start"]["value_type"] == "unsigned long long"
    assert maps["rb"]["type"] == 27 and maps["rb"]["max_entries"] == 262144
    names = {v["name"]: v["type"] for s in btf.datasecs() for v in btf.variables(s)}
    assert names["LICENSE"] == "char[4]"
    assert names["target_pid"] == "const volatile int"
    assert core_relocation_count(ext_raw) == 1


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:10], "truncated header (10 bytes)"),
    (lambda b: b"\x9f\xeb\x02" + b[3:], "unsupported version 2"),
    (lambda b: b"\x00\x00" + b[2:], "bad magic 0x0000"),
    (lambda b: b[:12] + struct.pack("<I", 1 << 30) + b[16:], "type section (offset 0x0, length 1073741824)"),
])
def test_btf_errors(mutate, message):
    btf_raw, _ = _btf_of_object()
    with pytest.raises(InspectError) as err:
        Btf(mutate(btf_raw), ".BTF")
    assert message in str(err.value)


def test_btf_cyclic_typedefs_end():
    # types: 1 = typedef a -> 2, 2 = typedef b -> 1 (a cycle)
    strings = b"\0a\0b\0"
    types = struct.pack("<III", 1, 8 << 24, 2) + struct.pack("<III", 3, 8 << 24, 1)
    raw = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    btf = Btf(raw + types + strings)
    with pytest.raises(InspectError, match="type chain deeper than 32"):
        btf.resolve(1)
    with pytest.raises(InspectError, match="type chain deeper than 32"):
        btf.size(1)
    assert btf.c_name(1) == "a"


@pytest.mark.parametrize("section, expected", [
    ("tp/sched/sched_process_exec", ("tracepoint", None, "sched/sched_process_exec")),
    ("tracepoint/syscalls/sys_enter_openat", ("tracepoint", None, "syscalls/sys_enter_openat")),
    ("tp_btf/sched_switch", ("tracing", "trace_raw_tp", "sched_switch")),
    ("raw_tp/sched_switch", ("raw_tracepoint", None, "sched_switch")),
    ("kprobe/do_unlinkat", ("kprobe", None, "do_unlinkat")),
    ("kretprobe/do_unlinkat", ("kprobe", None, "do_unlinkat")),
    ("kprobe", ("kprobe", None, None)),
    ("kprobe.multi/tcp_*", ("kprobe", "trace_kprobe_multi", "tcp_*")),
    ("uprobe//bin/bash:readline", ("kprobe", None, "/bin/bash:readline")),
    ("uretprobe//bin/bash:readline", ("kprobe", None, "/bin/bash:readline")),
    ("usdt/libc.so.6:libc:setjmp", ("kprobe", None, "libc.so.6:libc:setjmp")),
    ("fentry/do_unlinkat", ("tracing", "trace_fentry", "do_unlinkat")),
    ("fexit/do_unlinkat", ("tracing", "trace_fexit", "do_unlinkat")),
    ("fmod_ret/security_x", ("tracing", "modify_return", "security_x")),
    ("lsm/file_open", ("lsm", "lsm_mac", "file_open")),
    ("lsm.s/bprm_committed_creds", ("lsm", "lsm_mac", "bprm_committed_creds")),
    ("iter/task", ("tracing", "trace_iter", "task")),
    ("xdp", ("xdp", "xdp", None)),
    ("xdp/devmap", ("xdp", "xdp_devmap", None)),
    ("tc", ("sched_cls", None, None)),
    ("classifier", ("sched_cls", None, None)),
    ("action", ("sched_act", None, None)),
    ("socket", ("socket_filter", None, None)),
    ("sockops", ("sock_ops", "cgroup_sock_ops", None)),
    ("sk_skb/stream_verdict", ("sk_skb", "sk_skb_stream_verdict", None)),
    ("cgroup_skb/ingress", ("cgroup_skb", "cgroup_inet_ingress", None)),
    ("cgroup_skb/egress", ("cgroup_skb", "cgroup_inet_egress", None)),
    ("cgroup/connect4", ("cgroup_sock_addr", "cgroup_inet4_connect", None)),
    ("cgroup/sysctl", ("cgroup_sysctl", "cgroup_sysctl", None)),
    ("perf_event", ("perf_event", None, None)),
    ("struct_ops/tcp_ca_init", ("struct_ops", None, "tcp_ca_init")),
    ("syscall", ("syscall", None, None)),
    ("xdp_foo", (None, None, None)),      # libbpf 1.x: no sloppy prefix match
    ("tpx/a", (None, None, None)),
    (".text", (None, None, None)),
])
def test_section_classification(section, expected):
    assert tuple(classify_section(section)) == expected


def test_map_type_names():
    assert (map_type_name(1), map_type_name(27), map_type_name(4)) == ("hash", "ringbuf", "perf_event_array")
    assert map_type_name(999) == "unknown(999)"
