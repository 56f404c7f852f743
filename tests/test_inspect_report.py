"""inspect_bytes / inspect_path on real inputs: a clang-built BPF object,
wasm modules embedding it, the ABI verdict, and the project's examples."""
import glob
import json
import os
import struct
import subprocess

import pytest

from conftest import ROOT, skip_or_fail
from test_inspect_helpers import (WASI_IMPORTS, bpf_object, make_wasm,
                                  wasm_bpf_imports)
from wasm_bpf_cli.inspect import InspectError, inspect_bytes, inspect_path
from wasm_bpf_cli.inspect.elf_reader import find_bpf_objects

EXPECTED_PROGRAMS = [
    ("handle_exec", "tp/sched/sched_process_exec", "tracepoint", None, "sched/sched_process_exec"),
    ("on_unlink", "kprobe/do_unlinkat", "kprobe", None, "do_unlinkat"),
    ("xdp_pass", "xdp", "xdp", "xdp", None),
]
EXPECTED_MAPS = [
    {"name": "rb", "type": "ringbuf", "key_size": 0, "value_size": 0, "max_entries": 262144,
     "flags": 0, "key_type": None, "value_type": None, "internal": False},
    {"name": "exec_start", "type": "hash", "key_size": 4, "value_size": 8, "max_entries": 8192,
     "flags": 1, "key_type": "int", "value_type": "unsigned long long", "internal": False},
    {"name": ".rodata", "type": "array", "key_size": 4, "value_size": 12, "max_entries": 1,
     "flags": 0x480, "key_type": None, "value_type": None, "internal": True},
    {"name": ".data", "type": "array", "key_size": 4, "value_size": 4, "max_entries": 1,
     "flags": 0x400, "key_type": None, "value_type": None, "internal": True},
    {"name": ".bss", "type": "array", "key_size": 4, "value_size": 8, "max_entries": 1,
     "flags": 0x400, "key_type": None, "value_type": None, "internal": True},
]
# (section, name, type, offset, size, read_only, initial)
EXPECTED_GLOBALS = [
    (".bss", "dropped", "unsigned long long", 0, 8, False, None),
    (".data", "counter", "int", 0, 4, False, "07000000"),
    (".rodata", "min_duration_ns", "const volatile unsigned long long", 0, 8, True, "0000000000000000"),
    (".rodata", "target_pid", "const volatile int", 8, 4, True, "2a000000"),
]


def check_object(obj: dict, raw: bytes) -> None:
    """`obj` describes the test's BPF object, whose bytes are `raw`."""
    assert obj["error"] is None
    assert obj["size"] == len(raw)
    assert obj["license"] == "GPL"
    assert [(p["name"], p["section"], p["prog_type"], p["expected_attach_type"], p["attach_target"])
            for p in obj["programs"]] == EXPECTED_PROGRAMS
    assert all(p["instructions"] > 0 for p in obj["programs"])
    assert obj["maps"] == EXPECTED_MAPS
    assert obj["has_btf"] is True and obj["has_btf_ext"] is True
    assert obj["core_relocations"] == 1
    assert [(g["section"], g["name"], g["type"], g["offset"], g["size"], g["read_only"], g["initial"])
            for g in obj["globals"]] == EXPECTED_GLOBALS
    for g in obj["globals"]:
        if g["initial"] is not None:  # file_offset really points at the value
            assert raw[g["file_offset"]:g["file_offset"] + g["size"]].hex() == g["initial"]
        else:
            assert g["file_offset"] is None  # .bss has no bytes in the file


def test_plain_bpf_object(tmp_path):
    raw = bpf_object()
    path = tmp_path / "probe.bpf.o"
    path.write_bytes(raw)
    report = inspect_path(str(path))
    assert report["kind"] == "bpf" and report["size"] == len(raw) and report["path"] == str(path)
    assert report["imports"] == {} and report["exports"] == [] and report["memory"] is None
    assert report["verdict"] == {"applicable": False, "runnable": None, "callback_route": None,
                                 "problems": [], "warnings": []}
    assert len(report["objects"]) == 1
    obj = report["objects"][0]
    assert (obj["offset"], obj["address"], obj["segment"]) == (0, None, None)
    check_object(obj, raw)
    json.dumps(report)  # JSON-able


def test_wasm_embedding_the_object():
    raw = bpf_object()
    wasm = make_wasm([raw])
    report = inspect_bytes(wasm, "guest.wasm")
    assert report["kind"] == "wasm" and report["size"] == len(wasm)
    assert report["imports"] == {
        "wasi_snapshot_preview1": [
            {"name": "fd_write", "kind": "func", "params": ["i32"] * 4, "results": ["i32"]},
            {"name": "proc_exit", "kind": "func", "params": ["i32"], "results": []}],
        "wasm_bpf": [{"name": n, "kind": "func", "params": list(p), "results": list(r)}
                     for _, n, p, r in wasm_bpf_imports()],
    }
    assert report["exports"] == [
        {"name": "memory", "kind": "memory", "index": 0, "params": None, "results": None},
        {"name": "__indirect_function_table", "kind": "table", "index": 0, "params": None,
         "results": None},
        {"name": "_start", "kind": "func", "index": 8, "params": [], "results": []},
    ]
    assert report["memory"] == {"min_pages": 2, "max_pages": None, "imported": False,
                                "shared": False, "memory64": False}
    assert report["table_exported"] is True
    [seg] = report["data_segments"]
    assert (seg["mode"], seg["address"], seg["size"]) == ("active", 1024, len(raw))
    assert wasm[seg["file_offset"]:seg["file_offset"] + seg["size"]] == raw
    assert report["verdict"] == {"applicable": True, "runnable": True, "callback_route": "table",
                                 "problems": [], "warnings": []}
    [obj] = report["objects"]
    assert (obj["offset"], obj["address"], obj["segment"]) == (seg["file_offset"], 1024, 0)
    check_object(obj, raw)
    json.dumps(report)


def test_two_objects_in_one_segment_and_in_two_segments():
    raw = bpf_object()
    pad = b"\0" * 13
    report = inspect_bytes(make_wasm([raw + pad + raw, raw]))
    objs = report["objects"]
    assert len(objs) == 3
    segs = report["data_segments"]
    assert [(o["segment"], o["offset"], o["address"]) for o in objs] == [
        (0, segs[0]["file_offset"], 1024),
        (0, segs[0]["file_offset"] + len(raw) + len(pad), 1024 + len(raw) + len(pad)),
        (1, segs[1]["file_offset"], segs[1]["address"]),
    ]
    for o in objs:
        check_object(o, raw)
    assert find_bpf_objects(raw + pad + raw) == [(0, len(raw)), (len(raw) + len(pad), len(raw))]


def test_zero_length_and_passive_segments():
    report = inspect_bytes(make_wasm([b"", None]))
    assert [(s["mode"], s["address"], s["size"]) for s in report["data_segments"]] == [
        ("active", 1024, 0), ("passive", None, 0)]
    assert report["objects"] == []
    assert report["verdict"]["runnable"] is True


def test_truncated_embedded_object_is_a_warning_not_a_failure():
    raw = bpf_object()
    report = inspect_bytes(make_wasm([raw[:300]]))
    [obj] = report["objects"]
    assert obj["error"].startswith(f"BPF object at offset 0x{obj['offset']:x}: section header table")
    assert "past the end of the object (300 bytes)" in obj["error"]
    assert report["verdict"]["warnings"] == [obj["error"]]
    assert report["verdict"]["runnable"] is True


def test_embedded_object_of_another_machine_is_not_listed():
    raw = bytearray(bpf_object())
    raw[18:20] = struct.pack("<H", 62)  # EM_X86_64
    assert inspect_bytes(make_wasm([bytes(raw)]))["objects"] == []


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:200], "section header table (offset 0x"),
    (lambda b: b[:40], "truncated ELF header (40 of 64 bytes)"),
    (lambda b: b[:18] + struct.pack("<H", 62) + b[20:], "not a BPF object (e_machine 62, expected 247 EM_BPF)"),
    (lambda b: b[:40] + struct.pack("<Q", 1 << 40) + b[48:], "section header table (offset 0x10000000000"),
    (lambda b: b[:60] + struct.pack("<H", 40000) + b[62:], "section header table (offset 0x"),
    (lambda b: b[:4] + b"\x01" + b[5:], "not a 64-bit ELF object (class 1)"),
    (lambda b: b[:5] + b"\x02" + b[6:], "not a little-endian ELF object"),
])
def test_corrupt_plain_objects(mutate, message):
    with pytest.raises(InspectError) as err:
        inspect_bytes(mutate(bpf_object()), "probe.bpf.o")
    assert message in str(err.value)
    assert str(err.value).startswith("probe.bpf.o: ")


def test_section_contents_out_of_range():
    raw = bytearray(bpf_object())
    shoff = struct.unpack_from("<Q", raw, 40)[0]
    struct.pack_into("<Q", raw, shoff + 3 * 64 + 24, len(raw))  # section 3's sh_offset
    with pytest.raises(InspectError, match=r"probe.bpf.o: section 3 \(offset 0x[0-9a-f]+, size \d+\) "
                                           r"extends past the end of the object"):
        inspect_bytes(bytes(raw), "probe.bpf.o")


def test_unknown_input_and_missing_file(tmp_path):
    with pytest.raises(InspectError, match=r"^x: not a wasm module or BPF object \(bad magic\)$"):
        inspect_bytes(b"hello world", "x")
    with pytest.raises(InspectError, match=r"cannot read .*nope.wasm: No such file or directory"):
        inspect_path(str(tmp_path / "nope.wasm"))


# ---- the verdict ----

def problems(**kw):
    return inspect_bytes(make_wasm(**kw))["verdict"]["problems"]


def test_verdict_reports_each_bad_import():
    imports = WASI_IMPORTS + [
        ("wasi_snapshot_preview1", "fd_frobnicate", (), ()),
        ("wasm_bpf", "wasm_load_bpf_object", ("i32", "i32"), ("i32",)),
        ("wasm_bpf", "wasm_bpf_teleport", (), ()),
        ("env", "abort", (), ()),
        ("callback-wrapper", "something_else", (), ()),
    ]
    assert problems(imports=imports) == [
        "import wasi_snapshot_preview1.fd_frobnicate: not a WASI preview1 function",
        "import wasm_bpf.wasm_load_bpf_object: signature (i32, i32) -> (i32) does not match "
        "the expected (i32, i32) -> (i64)",
        "import wasm_bpf.wasm_bpf_teleport: not a wasm_bpf host function",
        "import env.abort: module 'env' is not provided by this runner",
        "import callback-wrapper.something_else: the callback-wrapper module provides only "
        "wasm_bpf_buffer_poll",
    ]


def test_verdict_missing_exports():
    assert problems(memory=False, table=False, start=False) == [
        "export memory: missing (host functions read and write guest memory)",
        "export _start: missing (the runner starts a WASI command)",
        "export __indirect_function_table: missing (wasm_bpf.wasm_bpf_buffer_poll calls "
        "samples back through it): link the guest with -Wl,--export-table (`wasm-bpf sdk "
        "--cflags` includes it)",
    ]


def test_table_is_not_needed_without_buffer_poll():
    imports = WASI_IMPORTS + wasm_bpf_imports(["wasm_load_bpf_object", "wasm_attach_bpf_program"])
    report = inspect_bytes(make_wasm(imports=imports, table=False))
    assert report["verdict"]["runnable"] is True
    assert report["verdict"]["callback_route"] is None
    assert report["table_exported"] is False


WRAPPER_POLL = ("i64", "i32", "i32", "i32", "i32", "i32")
WRAPPER_IMPORTS = WASI_IMPORTS + wasm_bpf_imports(["wasm_load_bpf_object"])


def test_wrapper_route():
    imports = WRAPPER_IMPORTS + [("callback-wrapper", "wasm_bpf_buffer_poll", WRAPPER_POLL, ("i32",))]
    ok = inspect_bytes(make_wasm(imports=imports, table=False,
                                 exports=[("go-callback", ("i32",) * 3, ("i32",))]))
    assert ok["verdict"]["runnable"] is True and ok["verdict"]["callback_route"] == "wrapper"
    assert problems(imports=imports, table=False) == [
        "export go-callback: missing (callback-wrapper.wasm_bpf_buffer_poll delivers samples to it)"]
    assert problems(imports=imports, exports=[("go-callback", ("i32",) * 3, ())]) == [
        "export go-callback: signature (i32, i32, i32) -> () does not match the expected "
        "(i32, i32, i32) -> (i32) (callback-wrapper.wasm_bpf_buffer_poll delivers samples to it)"]
    bad = WRAPPER_IMPORTS + [("callback-wrapper", "wasm_bpf_buffer_poll", WRAPPER_POLL[1:], ("i32",))]
    assert problems(imports=bad, exports=[("go-callback", ("i32",) * 3, ("i32",))]) == [
        "import callback-wrapper.wasm_bpf_buffer_poll: signature (i32, i32, i32, i32, i32) -> (i32) "
        "does not match the expected (i64, i32, i32, i32, i32, i32) -> (i32)"]


def test_wrapper_names_are_configurable():
    imports = WRAPPER_IMPORTS + [("cbw", "wasm_bpf_buffer_poll", WRAPPER_POLL, ("i32",))]
    wasm = make_wasm(imports=imports, exports=[("on_sample", ("i32",) * 3, ("i32",))])
    assert inspect_bytes(wasm, wrapper_module="cbw", callback_export="on_sample")["verdict"][
        "runnable"] is True
    assert inspect_bytes(wasm)["verdict"]["problems"] == [
        "import cbw.wasm_bpf_buffer_poll: module 'cbw' is not provided by this runner"]


def test_start_with_wrong_signature():
    wasm = make_wasm(start=False, exports=[("_start", ("i32",), ())])
    assert inspect_bytes(wasm)["verdict"]["problems"] == [
        "export _start: signature (i32) -> () does not match the expected () -> () "
        "(the runner starts a WASI command)"]


# ---- the project's own examples ----

def _example_modules():
    if os.path.exists(os.path.join(ROOT, "examples", "Makefile")):
        build = subprocess.run(["make", "-C", os.path.join(ROOT, "examples")],
                               capture_output=True, text=True, timeout=600)
        if build.returncode != 0:
            skip_or_fail(f"make -C examples failed: {build.stderr[-500:]}")
    return sorted(glob.glob(os.path.join(ROOT, "examples", "*", "*.wasm")))


def test_project_examples():
    modules = _example_modules()
    if not modules:
        skip_or_fail("no examples/*/*.wasm (examples not built yet)")
    for path in modules:
        report = inspect_path(path)
        if report["kind"] == "component":  # a processor of examples/compose
            assert report["world"]["fits"] == "wasm-bpf:processor@0.1.0/processor", path
            continue
        assert report["kind"] == "wasm", path
        assert report["verdict"]["runnable"] is True, (path, report["verdict"]["problems"])
        assert report["verdict"]["warnings"] == [], path
        assert report["objects"], f"{path}: no embedded BPF object"
        for obj in report["objects"]:
            assert obj["error"] is None and obj["license"], path
            assert obj["programs"] and all(p["prog_type"] for p in obj["programs"]), path


def _memory_packed(raw: bytes, min_zeros: int = 16):
    """(offset, bytes) pieces of `raw` with every run of `min_zeros` or more
    zero bytes left out, as `wasm-opt --memory-packing` (and so TinyGo's
    output) splits a byte array into data segments."""
    import re

    pieces, pos = [], 0
    for run in re.finditer(rb"\0{%d,}" % min_zeros, raw):
        if run.start() > pos:
            pieces.append((pos, raw[pos:run.start()]))
        pos = run.end()
    if pos < len(raw):
        pieces.append((pos, raw[pos:]))
    return pieces


def _split_object_module(raw: bytes, base: int = 4096, min_zeros: int = 16) -> bytes:
    from test_inspect_helpers import _wat_bytes

    pieces = _memory_packed(raw, min_zeros)
    assert len(pieces) > 3  # the object really is split
    extra = "\n".join(f'  (data (i32.const {base + off}) "{_wat_bytes(chunk)}")' for off, chunk in pieces)
    return make_wasm(extra=extra)


def test_an_object_split_across_data_segments_is_found():
    """TinyGo-style: no one segment holds the ELF; linear memory, laid out
    from the active segments, does."""
    raw = bpf_object()
    wasm = _split_object_module(raw)
    assert find_bpf_objects(wasm) == []  # not in the file's bytes as one piece
    report = inspect_bytes(wasm)
    assert len(report["objects"]) == 1 and report["verdict"]["warnings"] == []
    obj = report["objects"][0]
    check_object(obj, raw)
    assert obj["address"] == 4096
    first = next(s for s in report["data_segments"] if s["address"] == 4096)
    assert (obj["segment"], obj["offset"]) == (first["index"], first["file_offset"])


@pytest.mark.parametrize("min_zeros", [16, 8])  # 8: the ELF header itself split (stock Go's linker does it)
def test_the_preload_takes_an_object_split_across_data_segments(min_zeros):
    from wasm_bpf_cli.abi.preload import embedded_images

    raw = bpf_object()
    wasm = _split_object_module(raw, min_zeros=min_zeros)
    assert embedded_images(wasm) == [raw]
    assert inspect_bytes(wasm)["objects"][0]["size"] == len(raw)
    assert embedded_images(make_wasm(segments=[raw])) == [raw]  # the common case is unchanged


def test_a_split_object_with_a_gap_it_needs_is_reported_unreadable():
    """A piece missing from memory (not zeros there) makes the object
    unreadable: one warning naming it, no crash."""
    from test_inspect_helpers import _wat_bytes

    raw = bpf_object()
    pieces = _memory_packed(raw)
    extra = "\n".join(f'  (data (i32.const {4096 + off}) "{_wat_bytes(chunk)}")' for off, chunk in pieces[:2])
    report = inspect_bytes(make_wasm(extra=extra))
    assert [o["error"] is not None for o in report["objects"]] == [True]
    assert report["verdict"]["warnings"] == [report["objects"][0]["error"]]
