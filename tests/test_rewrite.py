"""The wasm section editor: rewritten modules validate and run (wasmtime is the
validator), and every byte outside the edited sections survives."""
import wasmtime
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from wasm_bpf_cli.engines import rewrite
from wasm_bpf_cli.engines.rewrite import (RewriteError, add_function, add_table_trampoline,
                                          ensure_type, split_sections)
from wasm_bpf_cli.errors import ModuleError

TRAMP = "__wasm_bpf_call_table"
I32 = wasmtime.ValType.i32()
EDITED = {rewrite.TYPE, rewrite.FUNCTION, rewrite.EXPORT, rewrite.CODE}


def wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


def instantiate(wasm: bytes, imports=()):
    store = wasmtime.Store()
    module = wasmtime.Module(store.engine, wasm)  # validates
    return store, wasmtime.Instance(store, module, list(imports))


def custom(name: str, data: bytes) -> bytes:
    payload = rewrite.encode_name(name) + data
    return b"\x00" + rewrite.encode_u32(len(payload)) + payload


def with_customs(wasm: bytes, where: dict) -> bytes:
    """Insert custom sections: {position among sections: [raw custom section bytes]}."""
    sections = split_sections(wasm)
    out = bytearray(wasm[:8])
    for i in range(len(sections) + 1):
        for raw in where.get(i, []):
            out += raw
        if i < len(sections):
            out += sections[i].raw
    return bytes(out)


def untouched(before: bytes, after: bytes):
    """Sections other than type/function/export/code are the same bytes, in the same order."""
    keep = lambda w: [s.raw for s in split_sections(w) if s.id not in EDITED]  # noqa: E731
    assert keep(before) == keep(after)


CALLBACKS = """
  (table (export "__indirect_function_table") 4 funcref)
  (elem (i32.const 1) func $sum $mix)
  (func $sum (param i32 i32 i32) (result i32)
    (i32.add (i32.add (local.get 0) (local.get 1)) (local.get 2)))
  (func $mix (param i32 i32 i32) (result i32)
    (i32.sub (i32.mul (local.get 0) (i32.const 100)) (i32.add (local.get 1) (local.get 2))))
"""


def test_trampoline_calls_the_right_entry_with_the_right_args():
    before = wat(f"(module {CALLBACKS})")
    after = add_table_trampoline(before)
    store, inst = instantiate(after)
    call = inst.exports(store)[TRAMP]
    assert call(store, 1, 1, 2, 3) == 6
    assert call(store, 2, 7, 5, 6) == 689
    assert str(call.type(store).params) == str([I32] * 4)
    untouched(before, after)


@pytest.mark.parametrize("index", [0, 3, 4, 1000, -1])
def test_null_or_missing_entry_traps(index):
    store, inst = instantiate(add_table_trampoline(wat(f"(module {CALLBACKS})")))
    with pytest.raises(wasmtime.Trap):
        inst.exports(store)[TRAMP](store, index, 1, 2, 3)


def test_entry_of_another_type_traps():
    before = wat("""(module
      (table (export "__indirect_function_table") 2 funcref)
      (elem (i32.const 0) func $other)
      (func $other (param i64) (result i32) (i32.const 1)))""")
    after = add_table_trampoline(before)
    # No (i32 i32 i32) -> i32 type existed: both needed types were appended.
    assert len(rewrite._types(split_sections(after))) == 3
    store, inst = instantiate(after)
    with pytest.raises(wasmtime.Trap):
        inst.exports(store)[TRAMP](store, 0, 1, 2, 3)


def test_existing_types_are_reused_never_renumbered():
    before = wat("""(module
      (type $cb (func (param i32 i32 i32) (result i32)))
      (type $tr (func (param i32 i32 i32 i32) (result i32)))
      (table (export "__indirect_function_table") 1 funcref)
      (elem (i32.const 0) func $f)
      (func $f (type $cb) (local.get 2)))""")
    after = add_table_trampoline(before)
    assert rewrite._types(split_sections(after)) == rewrite._types(split_sections(before))
    store, inst = instantiate(after)
    assert inst.exports(store)[TRAMP](store, 0, 1, 2, 3) == 3


def test_types_are_appended_after_existing_ones():
    before = wat("""(module
      (type (func (param i64)))
      (type (func (result f64)))
      (table (export "__indirect_function_table") 1 funcref)
      (func (export "keep") (type 0) (nop))
      (func (type 1) (f64.const 1.5)))""")
    after = add_table_trampoline(before)
    old, new = rewrite._types(split_sections(before)), rewrite._types(split_sections(after))
    assert new[:len(old)] == old and len(new) == len(old) + 2
    store, inst = instantiate(after)
    assert set(inst.exports(store)) >= {"keep", TRAMP, "__indirect_function_table"}


def test_imported_functions_keep_their_indices():
    before = wat("""(module
      (import "env" "a" (func $a (param i32 i32 i32) (result i32)))
      (import "env" "b" (func $b (param i32) (result i32)))
      (table (export "__indirect_function_table") 3 funcref)
      (elem (i32.const 0) func $a $own)
      (func $own (param i32 i32 i32) (result i32)
        (call $b (i32.add (local.get 0) (local.get 2))))
      (func (export "direct") (result i32) (call $own (i32.const 1) (i32.const 2) (i32.const 3)))
      (start $init)
      (func $init))""")
    after = add_table_trampoline(before)
    untouched(before, after)
    ty3 = wasmtime.FuncType([I32] * 3, [I32])
    store = wasmtime.Store()
    a = wasmtime.Func(store, ty3, lambda x, y, z: x * 1000 + y * 10 + z)
    b = wasmtime.Func(store, wasmtime.FuncType([I32], [I32]), lambda x: -x)
    inst = wasmtime.Instance(store, wasmtime.Module(store.engine, after), [a, b])
    call = inst.exports(store)[TRAMP]
    assert call(store, 0, 4, 5, 6) == 4056
    assert call(store, 1, 4, 5, 6) == -10
    assert inst.exports(store)["direct"](store) == -4


def test_custom_and_other_sections_survive_byte_identical():
    base = wat("""(module
      (import "env" "g" (global i32))
      (memory (export "memory") 1)
      (global $x (mut i32) (i32.const 7))
      (table (export "__indirect_function_table") 2 funcref)
      (elem (i32.const 0) func $f)
      (func $f (param i32 i32 i32) (result i32) (global.get $x))
      (func $copy (memory.init 0 (i32.const 0) (i32.const 0) (i32.const 2)))
      (data "passive")
      (data (i32.const 16) "active"))""")
    ids = [s.id for s in split_sections(base)]
    assert rewrite.DATACOUNT in ids
    customs = {0: [custom("first", b"\x01\x02")],
               ids.index(rewrite.FUNCTION): [custom("mid", b"zz" * 50)],
               ids.index(rewrite.CODE) + 1: [custom("name", b"\x00\x03abc"), custom("", b"")],
               len(ids): [custom("producers", b"\xff" * 3)]}
    before = with_customs(base, customs)
    after = add_table_trampoline(before)
    untouched(before, after)
    raws = [s.raw for s in split_sections(after) if s.id == rewrite.CUSTOM]
    assert raws == [s.raw for s in split_sections(before) if s.id == rewrite.CUSTOM]
    mine = [raw for pos in sorted(customs) for raw in customs[pos]]
    assert [r for r in raws if r in mine] == mine
    # Same sections in the same places: customs stay between the same neighbours.
    assert [s.id for s in split_sections(after)] == [s.id for s in split_sections(before)]
    store = wasmtime.Store()
    g = wasmtime.Global(store, wasmtime.GlobalType(I32, False), wasmtime.Val.i32(0))
    inst = wasmtime.Instance(store, wasmtime.Module(store.engine, after), [g])
    assert inst.exports(store)[TRAMP](store, 0, 0, 0, 0) == 7


def test_module_without_functions_gets_function_export_and_code_sections():
    before = wat('(module (table (export "__indirect_function_table") 1 funcref))')
    assert {s.id for s in split_sections(before)} == {rewrite.TABLE, rewrite.EXPORT}
    after = add_table_trampoline(with_customs(before, {2: [custom("tail", b"x")]}))
    assert [s.id for s in split_sections(after)] == [rewrite.TYPE, rewrite.FUNCTION, rewrite.TABLE,
                                                    rewrite.EXPORT, rewrite.CODE, rewrite.CUSTOM]
    store, inst = instantiate(after)
    with pytest.raises(wasmtime.Trap):
        inst.exports(store)[TRAMP](store, 0, 1, 2, 3)


def test_imported_table_that_is_exported():
    before = wat("""(module
      (import "env" "t" (table 2 funcref))
      (export "__indirect_function_table" (table 0)))""")
    after = add_table_trampoline(before)
    store = wasmtime.Store()
    ty3 = wasmtime.FuncType([I32] * 3, [I32])
    table = wasmtime.Table(store, wasmtime.TableType(wasmtime.ValType.funcref(), wasmtime.Limits(2, None)), None)
    table.set(store, 1, wasmtime.Func(store, ty3, lambda a, b, c: a + b + c + 1))
    inst = wasmtime.Instance(store, wasmtime.Module(store.engine, after), [table])
    assert inst.exports(store)[TRAMP](store, 1, 1, 1, 1) == 4


def test_uses_the_exported_table_not_just_table_zero():
    before = wat("""(module
      (table $other 1 funcref)
      (table $cbs (export "__indirect_function_table") 1 funcref)
      (elem (table $cbs) (i32.const 0) func $f)
      (func $f (param i32 i32 i32) (result i32) (i32.const 42)))""")
    store, inst = instantiate(add_table_trampoline(before))
    assert inst.exports(store)[TRAMP](store, 0, 0, 0, 0) == 42


@pytest.mark.parametrize("text", [
    "(module (func (export \"f\")))",
    "(module (table 1 funcref))",
    "(module (table (export \"other_name\") 1 funcref))",
    "(module (memory (export \"__indirect_function_table\") 1))",
])
def test_missing_table_export_is_a_clear_error(text):
    with pytest.raises(RewriteError) as err:
        add_table_trampoline(wat(text))
    assert str(err.value) == ("module exports no function table `__indirect_function_table`: "
                              "cannot call sample callbacks by table index")
    assert isinstance(err.value, ModuleError)


def test_export_name_taken():
    module = wat(f'(module {CALLBACKS} (func (export "{TRAMP}")))')
    with pytest.raises(RewriteError, match="already exports `__wasm_bpf_call_table`"):
        add_table_trampoline(module)
    with pytest.raises(RewriteError, match="already exports `__indirect_function_table`"):
        add_table_trampoline(module, export_name="__indirect_function_table")


@pytest.mark.parametrize("data,message", [
    (b"", "not a wasm module"),
    (b"\x7fELF\x02\x01\x01\x00", "not a wasm module"),
    (b"\0asm\x02\0\0\0", "unsupported wasm version"),
    (b"\0asm\x01\0\0", "not a wasm module"),
    (b"\0asm\x01\0\0\0\x01\x05\x01", "truncated"),
    (b"\0asm\x01\0\0\0\x01", "truncated"),
    (b"\0asm\x01\0\0\0\x01\xff\xff\xff\xff\xff\x01", "malformed LEB128|too large"),
    (b"\0asm\x01\0\0\0\x0e\x00", "unknown wasm section id 14"),
    (b"\0asm\x01\0\0\0\x03\x01\x00\x01\x01\x00", "out of order"),
])
def test_malformed_input(data, message):
    with pytest.raises(RewriteError, match=message):
        add_table_trampoline(data)


def test_every_truncation_inside_a_section_is_an_error():
    module = with_customs(wat(f"(module {CALLBACKS})"), {1: [custom("c", b"abc")]})
    boundaries = {8}
    pos = 8
    for s in split_sections(module):
        pos += len(s.raw)
        boundaries.add(pos)
    for cut in range(len(module)):
        if cut in boundaries:
            continue
        with pytest.raises(RewriteError):
            add_table_trampoline(module[:cut])


def test_add_function_generic_with_locals_and_i64():
    before = wat(f"(module {CALLBACKS})")
    mod, ty = ensure_type(before, ("i64", "i32"), ("i64",))
    assert ensure_type(mod, ("i64", "i32"), ("i64",)) == (mod, ty)
    # local 2 (i64) = p0 * 2; local 3 (i64) unused; result = local2 + extend(p1)
    body = bytes.fromhex("20004202 7e 2102 2002 2001 ad 7c".replace(" ", ""))
    mod, index = add_function(mod, ty, ("i64", "i64", "i32"), body, "twice_plus")
    assert index == 2  # two defined functions before it, no imports
    store, inst = instantiate(mod)
    assert inst.exports(store)["twice_plus"](store, 1 << 40, 5) == (1 << 41) + 5
    with pytest.raises(RewriteError, match="type index 99"):
        add_function(before, 99, (), b"", "x")
    with pytest.raises(ValueError, match="unknown wasm value type"):
        ensure_type(before, ("i128",), ())


@pytest.mark.parametrize("limits,cap,want_max", [
    ("1", 3 * 65536 + 5, 3), ("1 10", 3 * 65536, 3), ("2 2", 5 * 65536, 2), ("1", 65536, 1)])
def test_set_memory_max(limits, cap, want_max):
    before = with_customs(wat(f'(module (memory (export "memory") {limits}) (data (i32.const 0) "x")'
                              ' (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))'),
                          {1: [custom("c", b"1")]})
    after = rewrite.set_memory_max(before, cap)
    keep = lambda w: [s.raw for s in split_sections(w) if s.id != rewrite.MEMORY]  # noqa: E731
    assert keep(before) == keep(after)
    store, inst = instantiate(after)
    grow, mem = inst.exports(store)["grow"], inst.exports(store)["memory"]
    have = mem.size(store)
    assert grow(store, want_max - have + 1) == -1
    assert grow(store, want_max - have) == have
    assert mem.size(store) == want_max


def test_set_memory_max_edges():
    assert rewrite.set_memory_max(wat("(module)"), 0) == wat("(module)")
    imported = wat('(module (import "env" "m" (memory 1)))')
    assert rewrite.set_memory_max(imported, 0) == imported
    with pytest.raises(RewriteError, match="starts with 4 pages"):
        rewrite.set_memory_max(wat("(module (memory 4))"), 3 * 65536)


def test_leb_encoding_round_trip():
    for value in [0, 1, 63, 64, 127, 128, 300, 16383, 16384, 2**31, 2**32 - 1]:
        raw = rewrite.encode_u32(value)
        assert rewrite._Reader(raw).leb_u() == value
    with pytest.raises(ValueError):
        rewrite.encode_u32(2**32)


# ---------------------------------------------------------------- property tests

SIGS = [("i32 i32 i32", "i32"), ("i32", "i32"), ("i64 i32", "i64"), ("", ""), ("i32 i32", "")]
MASK = 0xFFFFFFFF


@st.composite
def modules(draw):
    """A random module: imported and defined functions of random types (the
    callback type among them or not), a random table, custom sections in
    random places. Returns (wasm, imports as python callables, table model)."""
    n_imports = draw(st.integers(0, 4))
    n_defined = draw(st.integers(0, 6))
    declare_types = draw(st.permutations(range(len(SIGS))))[:draw(st.integers(0, len(SIGS)))]
    funcs = []  # (sig index, constant k) per function index
    for _ in range(n_imports + n_defined):
        funcs.append((draw(st.integers(0, len(SIGS) - 1)), draw(st.integers(0, 1000))))
    table_size = draw(st.integers(1, 8))
    entries = [draw(st.one_of(st.none(), st.integers(0, len(funcs) - 1))) if funcs else None
               for _ in range(table_size)]
    lines = [f"(type (func (param {SIGS[i][0]}) (result {SIGS[i][1]})))" for i in declare_types]
    for f, (sig, _) in enumerate(funcs[:n_imports]):
        lines.append(f'(import "env" "f{f}" (func $f{f} (param {SIGS[sig][0]}) (result {SIGS[sig][1]})))')
    for f, (sig, k) in enumerate(funcs[n_imports:], start=n_imports):
        params, result = SIGS[sig]
        if sig == 0:  # the callback type: k*a + 3*b - c, wrapping
            body = (f"(i32.sub (i32.add (i32.mul (i32.const {k}) (local.get 0))"
                    " (i32.mul (i32.const 3) (local.get 1))) (local.get 2))")
        else:
            body = {"i32": f"(i32.const {k})", "i64": f"(i64.const {k})", "": ""}[result]
        lines.append(f"(func $f{f} (param {params}) (result {result}) {body})")
    lines.append(f'(table (export "__indirect_function_table") {table_size} funcref)')
    for slot, f in enumerate(entries):
        if f is not None:
            lines.append(f"(elem (i32.const {slot}) func $f{f})")
    base = wat("(module " + "\n".join(lines) + ")")
    n_sections = len(split_sections(base))
    customs = draw(st.dictionaries(
        st.integers(0, n_sections),
        st.lists(st.builds(custom, st.text(max_size=5), st.binary(max_size=20)), max_size=2),
        max_size=3))
    return with_customs(base, customs), funcs, n_imports, entries


def expected(funcs, n_imports, entries, idx, a, b, c, imported):
    f = entries[idx] if 0 <= idx < len(entries) else None
    if f is None or funcs[f][0] != 0:
        return "trap"
    k = funcs[f][1]
    if f < n_imports:
        return imported(k, a, b, c)
    return (k * a + 3 * b - c) & MASK


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(modules(), st.lists(st.tuples(st.integers(-2, 9), st.integers(0, MASK),
                                     st.integers(0, MASK), st.integers(0, MASK)),
                           min_size=1, max_size=6))
def test_trampoline_property(module, calls):
    wasm, funcs, n_imports, entries = module
    after = add_table_trampoline(wasm)
    untouched(wasm, after)
    old_customs = [s.raw for s in split_sections(wasm) if s.id == rewrite.CUSTOM]
    assert [s.raw for s in split_sections(after) if s.id == rewrite.CUSTOM] == old_customs

    def imported(k, a, b, c):
        return (a ^ b ^ c ^ k) & MASK

    store = wasmtime.Store()
    module_ = wasmtime.Module(store.engine, after)
    externs = []
    for f, (sig, k) in enumerate(funcs[:n_imports]):
        ty = module_.imports[f].type
        if sig == 0:
            fn = (lambda k: lambda a, b, c: imported(k, a & MASK, b & MASK, c & MASK))(k)
        else:
            fn = lambda *args: None if not SIGS[sig][1] else 0  # noqa: E731
        externs.append(wasmtime.Func(store, ty, fn))
    inst = wasmtime.Instance(store, module_, externs)
    call = inst.exports(store)[TRAMP]
    for idx, a, b, c in calls:
        want = expected(funcs, n_imports, entries, idx, a, b, c, imported)
        if want == "trap":
            with pytest.raises(wasmtime.Trap):
                call(store, idx, a, b, c)
        else:
            assert call(store, idx, a, b, c) & MASK == want
