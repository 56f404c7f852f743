"""Decoding map keys/values with the object's BTF (MapView.decoded_items)."""
import struct
import subprocess

import pytest

from wasm_bpf_cli.btf_values import MapTypes

SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
enum color { RED = 1, GREEN = 7 };
struct val {
    unsigned int pid;
    char comm[8];
    short neg;
    unsigned char low : 3, high : 5;
    enum color color;
    unsigned long long hist[3];
    struct { int x; } inner;
};
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4);
    __type(key, int);
    __type(value, struct val);
} vals SEC(".maps");
const volatile unsigned int knob = 5;
SEC("tp/syscalls/sys_enter_getppid") int noop(void *ctx) { return knob; }
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def elf(tmp_path_factory):
    d = tmp_path_factory.mktemp("btf")
    (d / "v.bpf.c").write_text(SOURCE)
    arch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True).stdout.strip()
    subprocess.run(["clang-14", "-g", "-O2", "-target", "bpf", f"-I/usr/include/{arch}", "-c",
                    str(d / "v.bpf.c"), "-o", str(d / "v.bpf.o")], check=True)
    return (d / "v.bpf.o").read_bytes()


def test_struct_value_and_int_key_decode(elf):
    types = MapTypes(elf)
    key_type, value_type = types.lookup("vals")
    value = (struct.pack("<I8sh", 42, b"bash\0xyz", -3) + bytes([0b10101_110]) + b"\0"
             + struct.pack("<I", 7) + bytes(4) + struct.pack("<QQQ", 1, 2, 3) + struct.pack("<i", -9))
    value += bytes(-len(value) % 8)
    assert types.decode(key_type, struct.pack("<i", -1)) == -1
    assert types.decode(value_type, value) == {
        "pid": 42, "comm": "bash", "neg": -3, "low": 0b110, "high": 0b10101,
        "color": "GREEN", "hist": [1, 2, 3], "inner": {"x": -9}}


def test_global_data_map_decodes_its_variables(elf):
    types = MapTypes(elf)
    key_type, value_type = types.lookup("v.rodata")
    assert types.decode(key_type, bytes(4)) == 0
    assert types.decode(value_type, struct.pack("<I", 5)) == {"knob": 5}


def test_unknown_map_is_left_raw(elf):
    types = MapTypes(elf)
    assert types.lookup("nope") == (None, None)
    assert types.decode(None, b"\x01") == b"\x01"


def test_python_values_encode_to_what_decodes_back(elf):
    types = MapTypes(elf)
    key_type, value_type = types.lookup("vals")
    assert types.encode(key_type, -1, 4) == struct.pack("<i", -1)
    value = {"pid": 42, "comm": "bash", "neg": -3, "low": 0b110, "high": 0b10101,
             "color": "GREEN", "hist": [1, 2, 3], "inner": {"x": -9}}
    size = types.btf.size(value_type)
    assert size == 56
    assert types.decode(value_type, types.encode(value_type, value, size)) == value
    partial = types.decode(value_type, types.encode(value_type, {"pid": 7}, size))
    assert partial["pid"] == 7 and partial["hist"] == [0, 0, 0]  # members left out are zero


@pytest.mark.parametrize("value,error", [
    ("x", "expected an int, not str"),
    (1 << 40, "1099511627776 does not fit in 4 signed bytes"),
    (b"abc", "3 bytes, the map's size is 4"),
])
def test_a_key_that_does_not_fit_says_why(elf, value, error):
    types = MapTypes(elf)
    with pytest.raises((TypeError, ValueError), match=f"^{error}$"):
        types.encode(types.lookup("vals")[0], value, 4)


def test_a_struct_value_rejects_unknown_members(elf):
    types = MapTypes(elf)
    with pytest.raises(ValueError, match="^no member 'nope' in val$"):
        types.encode(types.lookup("vals")[1], {"nope": 1}, 56)
