"""The wasm section editor: rewritten modules validate and run (wasmtime is the
validator), and every byte outside the edited sections survives."""
import struct

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


# ---------------------------------------------------------------- the poll loop served in wasm

POLL_GUEST = """
(module
  (import "wasm_bpf" "wasm_bpf_buffer_poll"
    (func $poll (param i64 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $log (mut i32) (i32.const 1024))
  (table (export "__indirect_function_table") 4 funcref)
  (elem (i32.const 1) func $on_sample $stop_at_two)
  ;; logs (ctx, first data byte, size) per sample
  (func $on_sample (param i32 i32 i32) (result i32)
    (i32.store (global.get $log) (local.get 0))
    (i32.store offset=4 (global.get $log) (i32.load8_u (local.get 1)))
    (i32.store offset=8 (global.get $log) (local.get 2))
    (global.set $log (i32.add (global.get $log) (i32.const 12)))
    (i32.const 0))
  (func $stop_at_two (param i32 i32 i32) (result i32)
    (drop (call $on_sample (local.get 0) (local.get 1) (local.get 2)))
    (select (i32.const -42) (i32.const 0) (i32.eq (i32.load8_u (local.get 1)) (i32.const 2))))
  (func $helper (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  ;; the poll called inside blocks, with instructions of many immediate kinds around it
  (func (export "run") (param $cb i32) (param $timeout i32) (result i32)
    (local $r i32) (local $v v128)
    (local.set $v (v128.const i32x4 1 2 3 4))
    (drop (i64.const -5))
    (drop (f64.const 1.5))
    (block $out
      (loop $again
        (local.set $r
          (call $poll (i64.const 7) (i32.const 3) (local.get $cb) (i32.const 99)
                      (i32.const 256) (i32.const 64) (local.get $timeout)))
        (br_table $out $again (i32.const 0))))
    (i32.add (local.get $r) (i32.mul (call $helper (i32.const 0)) (i32.const 0)))))
"""


def ring_record(first_byte: int, size: int) -> bytes:
    body = bytes([first_byte]) + bytes(size - 1)
    rec = (size).to_bytes(4, "little") + bytes(4) + body
    return rec + bytes(-len(rec) % 8)


def staged_args(mem, store, slot):
    """The poll's arguments the added function wrote into the slot."""
    raw = bytes(mem.read(store, slot + rewrite.SLOT_ARGS, slot + rewrite.SLOT_ARGS + 32))
    return struct.unpack("<qiiiiii", raw)


def stage_type():
    return wasmtime.FuncType([], [wasmtime.ValType.i32()])  # a fresh one each time: a Func takes it over


class StageHost:
    """What the host's stage import does (_nativepoll.c wb_stage), in Python:
    stages `batches` one after the other, then answers the total delivered."""

    def __init__(self, batches, slot=60000, hdrs=40000, payload=50000):
        self.batches = list(batches)
        self.slot, self.hdrs, self.payload = slot, hdrs, payload
        self.calls = []
        self.total = 0
        self.memory = None
        self.staged = False

    def __call__(self, caller):
        mem = self.memory
        u32 = lambda at: int.from_bytes(bytes(mem.read(caller, at, at + 4)), "little", signed=True)  # noqa: E731
        put = lambda at, v: mem.write(caller, (v & 0xFFFFFFFF).to_bytes(4, "little"), at)  # noqa: E731
        state = u32(self.slot + rewrite.SLOT_STATE)
        self.calls.append(staged_args(mem, caller, self.slot) + (state,))
        if self.staged:
            assert state == rewrite.STATE_COMMIT
            self.staged = False
            put(self.slot + rewrite.SLOT_STATE, 0)
            ret = u32(self.slot + rewrite.SLOT_RET)
            self.total += u32(self.slot + 4)
            if ret < 0:
                return ret
        if not self.batches:
            return self.total
        batch = self.batches.pop(0)
        mem.write(caller, batch, self.hdrs)
        mem.write(caller, batch, self.payload)
        for at, v in ((rewrite.SLOT_HDRS, self.hdrs), (rewrite.SLOT_PAYLOAD, self.payload),
                      (rewrite.SLOT_LEN, len(batch)), (rewrite.SLOT_STATE, rewrite.STATE_STAGED)):
            put(self.slot + at, v)
        self.staged = True
        return rewrite.STAGED


def run_served(batches, cb=1, slot_set=True):
    wasm = rewrite.add_ring_dispatch(wat(POLL_GUEST))[0]
    wasm = rewrite.serve_poll_in_wasm(wasm, stage="stage")
    host = StageHost(batches)
    store = wasmtime.Store()
    module = wasmtime.Module(store.engine, wasm)
    imports = {i.name: i for i in module.imports}
    assert set(imports) == {"stage"}  # renamed in place, nothing else imported
    inst = wasmtime.Instance(store, module, [wasmtime.Func(store, stage_type(), host, access_caller=True)])
    exports = inst.exports(store)
    host.memory = exports["memory"]
    if slot_set:
        exports[rewrite.STAGE_SLOT_EXPORT].set_value(store, wasmtime.Val.i32(host.slot))
    ret = exports["run"](store, cb, 100)
    raw = bytes(host.memory.read(store, 1024, 1024 + 12 * 16))
    log = [tuple(int.from_bytes(raw[i + k:i + k + 4], "little") for k in (0, 4, 8)) for i in range(0, len(raw), 12)]
    return ret, host, [entry for entry in log if entry != (0, 0, 0)]


def test_poll_in_wasm_dispatches_each_staged_batch_in_order_and_commits_it():
    ret, host, log = run_served([ring_record(1, 8) + ring_record(2, 12), ring_record(3, 20)])
    assert ret == 3
    assert log == [(99, 1, 8), (99, 2, 12), (99, 3, 20)]
    # stage, commit + stage, commit + answer; the guest's own arguments each time
    assert [c[:7] for c in host.calls] == [(7, 3, 1, 99, 256, 64, 100)] * 3
    assert [c[7] for c in host.calls] == [0, rewrite.STATE_COMMIT, rewrite.STATE_COMMIT]


def test_poll_in_wasm_a_negative_callback_return_stops_and_is_the_answer():
    ret, host, log = run_served([ring_record(1, 8) + ring_record(2, 8) + ring_record(3, 8)], cb=2)
    assert ret == -42
    assert [entry[1] for entry in log] == [1, 2]  # the third is not delivered
    assert len(host.calls) == 2


def test_poll_in_wasm_a_host_answer_equal_to_staged_is_passed_on_without_a_staged_slot():
    # the Python path returns what a callback returned: STAGED itself is then the answer
    class Plain(StageHost):
        def __call__(self, caller):
            self.calls.append(caller)
            return rewrite.STAGED

    wasm = rewrite.serve_poll_in_wasm(rewrite.add_ring_dispatch(wat(POLL_GUEST))[0], stage="stage")
    for slot_set in (False, True):  # no slot yet; a slot whose state word is not STAGED
        host = Plain([])
        store = wasmtime.Store()
        module = wasmtime.Module(store.engine, wasm)
        inst = wasmtime.Instance(store, module, [wasmtime.Func(store, stage_type(), host, access_caller=True)])
        if slot_set:
            inst.exports(store)[rewrite.STAGE_SLOT_EXPORT].set_value(store, wasmtime.Val.i32(60000))
        assert inst.exports(store)["run"](store, 1, 100) == rewrite.STAGED
        assert len(host.calls) == 1


def test_poll_in_wasm_host_calls_carry_no_arguments():
    # wasmer-python keeps each host call's argument objects until the guest
    # exits: the stage import must stay () -> i32, the arguments in memory
    wasm = rewrite.serve_poll_in_wasm(rewrite.add_ring_dispatch(wat(POLL_GUEST))[0], stage="stage")
    module = wasmtime.Module(wasmtime.Engine(), wasm)
    (imp,) = module.imports
    assert (imp.module, imp.name) == ("wasm_bpf", "stage")
    assert list(imp.type.params) == [] and [str(t) for t in imp.type.results] == ["i32"]


def test_poll_in_wasm_without_a_slot_grows_the_memory_by_a_page_for_one():
    # no slot from the host yet (a perf buffer, no C loop): the arguments go
    # into a fresh page, whose address the host reads from the slot global
    seen = []

    def host(caller):
        exports = caller
        slot = exports[rewrite.STAGE_SLOT_EXPORT].value(caller)
        seen.append((slot, staged_args(exports["memory"], caller, slot),
                     exports["memory"].size(caller)))
        return 5

    wasm = rewrite.serve_poll_in_wasm(rewrite.add_ring_dispatch(wat(POLL_GUEST))[0], stage="stage")
    store = wasmtime.Store()
    inst = wasmtime.Instance(store, wasmtime.Module(store.engine, wasm),
                             [wasmtime.Func(store, stage_type(), host, access_caller=True)])
    run = inst.exports(store)["run"]
    assert run(store, 1, 100) == 5 and run(store, 2, -1) == 5
    assert seen == [(2 * 65536, (7, 3, 1, 99, 256, 64, 100), 3),
                    (2 * 65536, (7, 3, 2, 99, 256, 64, -1), 3)]  # one page, kept


def test_poll_in_wasm_without_a_slot_and_no_memory_to_grow_answers_enomem():
    calls = []
    text = POLL_GUEST.replace('(memory (export "memory") 2)', '(memory (export "memory") 2 2)')
    wasm = rewrite.serve_poll_in_wasm(rewrite.add_ring_dispatch(wat(text))[0], stage="stage")
    store = wasmtime.Store()
    inst = wasmtime.Instance(store, wasmtime.Module(store.engine, wasm),
                             [wasmtime.Func(store, stage_type(), lambda: calls.append(1) or 0)])
    assert inst.exports(store)["run"](store, 1, 100) == -12
    assert calls == []


def _bodies(wasm: bytes):
    sections = split_sections(wasm)
    count, r = rewrite._vec_items(sections[[x.id for x in sections].index(rewrite.CODE)].payload, "code")
    return [r.take(r.leb_u()) for _ in range(count)]


def test_poll_in_wasm_retargets_only_calls_of_the_import():
    wasm = rewrite.add_ring_dispatch(wat(POLL_GUEST))[0]
    bodies = _bodies(rewrite.serve_poll_in_wasm(wasm))
    calls = lambda f: [rewrite._retarget_calls(b, f, 10**6)[1] for b in bodies]  # noqa: E731
    added = len(bodies)  # 1 import: the added function is the last
    assert calls(0) == [0] * (len(bodies) - 1) + [1]  # only the added function calls the import
    assert sum(calls(added)) == 1  # the guest's one call goes to it now
    assert calls(1)[:4] == [0, 1, 0, 0] and calls(3)[:4] == [0, 0, 0, 1]  # other calls unchanged


@pytest.mark.parametrize("text, message", [
    ('(module (func))', "imports no function wasm_bpf.wasm_bpf_buffer_poll"),
    (POLL_GUEST.replace("(elem (i32.const 1) func $on_sample $stop_at_two)",
                        "(elem (i32.const 1) func $on_sample $stop_at_two $poll)"), "element segment"),
    (POLL_GUEST.replace("(drop (i64.const -5))", "(drop (ref.func $poll))")
     .replace("(elem (i32.const 1) func $on_sample $stop_at_two)",
              "(elem (i32.const 1) func $on_sample $stop_at_two) (elem declare func $poll)"), "element segment"),
    (POLL_GUEST.replace('(func $helper', '(export "p" (func $poll)) (func $helper'), "exported"),
    ('(module (import "wasm_bpf" "wasm_bpf_buffer_poll" (func (param i64 i32 i32 i32 i32 i32 i32) (result i32)))'
     ' (memory (export "memory") 1) (table (export "__indirect_function_table") 1 funcref) (func))',
     "never calls"),
    (POLL_GUEST.replace("(param i64 i32 i32 i32 i32 i32 i32) (result i32)", "(param i64 i32 i32 i32 i32 i32) (result i32)")
     .replace("(i32.const 64) (local.get $timeout)", "(i32.const 64)"), "is not imported as"),
])
def test_poll_in_wasm_refuses_what_it_cannot_redirect(text, message):
    wasm = rewrite.add_ring_dispatch(wat(text))[0]
    wasmtime.Module(wasmtime.Engine(), wasm)  # a valid module
    with pytest.raises(RewriteError, match=message):
        rewrite.serve_poll_in_wasm(wasm)


def test_poll_in_wasm_refuses_a_module_without_memory():
    # the arguments go to memory: a module without one keeps its import
    text = ('(module (import "wasm_bpf" "wasm_bpf_buffer_poll" (func $p (param i64 i32 i32 i32 i32 i32 i32)'
            ' (result i32))) (func (export "%s") (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)'
            ' (i32.const 0)) (func (drop (call $p (i64.const 1) (i32.const 2) (i32.const 3) (i32.const 4)'
            ' (i32.const 5) (i32.const 6) (i32.const 7)))))' % rewrite.RING_DISPATCH_TABLE)
    with pytest.raises(RewriteError, match="no memory"):
        rewrite.serve_poll_in_wasm(wat(text))


def test_poll_in_wasm_refuses_unknown_instructions():
    body = b"\x00" + b"\x10\x00" + b"\xd3"  # no locals; call 0; an opcode it does not know
    with pytest.raises(RewriteError, match="unknown instruction 0xd3"):
        rewrite._retarget_calls(body, 0, 5)
    assert rewrite._retarget_calls(b"\x00\x10\x00\x10\x01\x12\x00", 0, 300) == (
        b"\x00\x10\xac\x02\x10\x01\x12\xac\x02", 2)  # call and return_call, a longer LEB


GUESTS = ["examples/bench/bench.wasm", "examples/bootstrap/bootstrap.wasm",
          "examples/rust_bootstrap/rust_bootstrap.wasm", "tests/guests/build/ringbuf.wasm"]


@pytest.mark.parametrize("path", GUESTS)
def test_poll_in_wasm_rewrites_the_built_guests_into_valid_modules(path):
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, path), "rb") as f:  # built by `make build`: missing is a failure
        wasm = rewrite.add_ring_dispatch(f.read())[0]
    out = rewrite.serve_poll_in_wasm(wasm)
    module = wasmtime.Module(wasmtime.Engine(), out)  # validates
    stage = [i.type for i in module.imports if i.name == rewrite.STAGE_IMPORT]
    assert [(list(t.params), [str(r) for r in t.results]) for t in stage] == [([], ["i32"])]
    assert rewrite.export_index(out, rewrite.POLL_IN_WASM, rewrite.KIND_FUNC) is not None


# ---------------------------------------------------------------- fd_write served through the slot

FD_WRITE_GUEST = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "print") (param $fd i32) (param $iovs i32) (param $n i32) (result i32)
    (call $fd_write (local.get $fd) (local.get $iovs) (local.get $n) (i32.const 512))))
"""


def served_fd_write(answer=0):
    """Run the rewritten guest's print with a host stage import that records
    fd_write's arguments from the added globals; (results of two print
    calls, what the host saw, the module's imports, exports, store)."""
    wasm = rewrite.serve_fd_write_in_wasm(wat(FD_WRITE_GUEST))
    store = wasmtime.Store()
    module = wasmtime.Module(store.engine, wasm)
    stages = [(i.module, i.name, i.type) for i in module.imports]
    seen = []
    exports = {}

    def stage(caller):
        seen.append(tuple(exports[name].value(caller) for name in rewrite.FD_WRITE_ARG_EXPORTS))
        return answer

    inst = wasmtime.Instance(store, module, [wasmtime.Func(store, stage_type(), stage, access_caller=True)])
    exports.update(inst.exports(store))
    results = [exports["print"](store, 1, 100, 2), exports["print"](store, 2, -8, 5)]
    return results, seen, stages, exports, store


def test_fd_write_in_wasm_makes_the_import_take_no_arguments_and_passes_them_in_globals():
    results, seen, stages, exports, store = served_fd_write(answer=29)
    assert [(m, n, list(t.params), [str(r) for r in t.results]) for m, n, t in stages] == [
        ("wasi_snapshot_preview1", rewrite.FD_WRITE_STAGE_IMPORT, [], ["i32"])]
    assert results == [29, 29]  # the host's answer is the guest's
    assert seen == [(1, 100, 2, 512), (2, -8, 5, 512)]
    assert exports["memory"].size(store) == 1  # nothing grown: the guest's memory is its own


def test_fd_write_in_wasm_and_the_poll_in_the_same_module():
    guest = POLL_GUEST.replace(
        '(import "wasm_bpf" "wasm_bpf_buffer_poll"',
        '(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))'
        ' (import "wasm_bpf" "wasm_bpf_buffer_poll"').replace(
        '(func $helper (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))',
        '(func $helper (param i32) (result i32) (drop (call $fd_write (i32.const 1) (i32.const 0)'
        ' (i32.const 0) (i32.const 0))) (i32.add (local.get 0) (i32.const 1)))')
    wasm = rewrite.serve_poll_in_wasm(rewrite.add_ring_dispatch(wat(guest))[0], stage="stage")
    out = rewrite.serve_fd_write_in_wasm(wasm)
    module = wasmtime.Module(wasmtime.Engine(), out)
    assert sorted(i.name for i in module.imports) == sorted(["stage", rewrite.FD_WRITE_STAGE_IMPORT])
    globals_ = [e.name for e in module.exports if isinstance(e.type, wasmtime.GlobalType)]
    assert globals_ == [rewrite.STAGE_SLOT_EXPORT, *rewrite.FD_WRITE_ARG_EXPORTS]  # apart from the poll's slot
    with pytest.raises(RewriteError, match="imports no function wasi_snapshot_preview1.fd_write"):
        rewrite.serve_fd_write_in_wasm(out)  # once only


@pytest.mark.parametrize("text, message", [
    ('(module (memory 1) (func))', "imports no function wasi_snapshot_preview1.fd_write"),
    (FD_WRITE_GUEST.replace("(param i32 i32 i32 i32) (result i32)", "(param i32 i32 i32 i64) (result i32)")
     .replace("(i32.const 512)", "(i64.const 512)"), "is not imported as"),
    (FD_WRITE_GUEST.replace('(memory (export "memory") 1)', '(memory (export "memory") 1) (export "w" (func $fd_write))'),
     "exported"),
    (FD_WRITE_GUEST.replace('(memory (export "memory") 1)',
                            '(memory (export "memory") 1) (table 1 funcref) (elem (i32.const 0) func $fd_write)'),
     "element segment"),
])
def test_fd_write_in_wasm_refuses_what_it_cannot_redirect(text, message):
    with pytest.raises(RewriteError, match=message):
        rewrite.serve_fd_write_in_wasm(wat(text))


@pytest.mark.parametrize("path", GUESTS + ["tests/guests/build/plainprint.wasm"])
def test_fd_write_in_wasm_rewrites_the_built_guests_into_valid_modules(path):
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, path), "rb") as f:  # built by `make build`: missing is a failure
        wasm = rewrite.add_ring_dispatch(f.read())[0]
    out = rewrite.serve_fd_write_in_wasm(rewrite.serve_poll_in_wasm(wasm))
    module = wasmtime.Module(wasmtime.Engine(), out)  # validates
    names = {i.name: i.type for i in module.imports if i.module == "wasi_snapshot_preview1"}
    assert "fd_write" not in names
    t = names[rewrite.FD_WRITE_STAGE_IMPORT]
    assert (list(t.params), [str(r) for r in t.results]) == ([], ["i32"])


# ---------------------------------------------------------------- map imports served through a slot in memory

MAP_GUEST = """(module
  (import "wasm_bpf" "wasm_bpf_map_fd_by_name" (func $map_fd (param i64 i32) (result i32)))
  (import "wasm_bpf" "wasm_bpf_map_operate" (func $operate (param i32 i32 i32 i32 i32 i64) (result i32)))
  (memory (export "memory") 1)
  (func (export "operate") (param i32 i32 i32 i32 i32 i64) (result i32)
    (call $operate (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4) (local.get 5)))
  (func (export "lookup") (param $fd i32) (result i32)
    (call $operate (local.get $fd) (i32.const 1) (i32.const 16) (i32.const 32) (i32.const 0) (i64.const 0)))
  (func (export "map_fd") (param i64 i32) (result i32)
    (call $map_fd (local.get 0) (local.get 1))))
"""
I32_MIN, I32_MAX, I64_MIN, I64_MAX = -2**31, 2**31 - 1, -2**63, 2**63 - 1
MAP_CALLS = [(3, 1, 16, 32, 0, 0), (5, 4, -1, I32_MIN, I32_MAX, I64_MIN), (7, 2, -16, 65536, 0, I64_MAX),
             (I32_MAX, -1, 0, 0, -8, -1), (-9, 99, 1 << 30, 12, 4, 1 << 40)]
FD_CALLS = [(1, 64), (I64_MAX, -1), (I64_MIN, I32_MIN), (-1, 0)]


def served_maps(wasm: bytes, answers=(0,), limits=None):
    """Instantiate `wasm` (map imports served by serve_import_in_wasm) with
    stage imports that record the arguments, read as the wasmer engine does
    (from the slot while its global is set, else from the globals), and
    answer `answers` in turn (the last one then on); (exports, store,
    {import name: [args seen]}, module, [where each call's arguments were:
    the slot's address or "globals"]). `limits`: a wasmtime store limit on
    the memory (bytes)."""
    store = wasmtime.Store()
    if limits is not None:
        store.set_limits(memory_size=limits)
    module = wasmtime.Module(store.engine, wasm)  # validates
    exports, seen, where, replies = {}, {}, [], list(answers)
    funcs = []
    for imp in module.imports:
        served = next((s for s in rewrite.HOST_SERVED_IMPORTS if s.stage == imp.name), None)
        if served is None:  # left as it was: not called here
            funcs.append(wasmtime.Func(store, imp.type, lambda *args: 1 // 0))
            continue
        seen[served.name] = []

        def stage(caller, served=served):
            slot = exports[rewrite.ARGS_SLOT_EXPORT].value(caller) & 0xFFFFFFFF
            if slot:
                fmt = rewrite.slot_layout(served.params)[1]
                raw = exports["memory"].read(caller, slot, slot + struct.calcsize(fmt))
                args = struct.unpack(fmt, raw)
            else:
                args = tuple(exports[g].value(caller) for g in served.arg_exports)
            where.append(slot or "globals")
            seen[served.name].append(args)
            return replies.pop(0) if len(replies) > 1 else replies[0]

        funcs.append(wasmtime.Func(store, stage_type(), stage, access_caller=True))
    exports.update(wasmtime.Instance(store, module, funcs).exports(store))
    return exports, store, seen, module, where


SLOT = 65536 + rewrite.ARGS_SLOT_OFFSET  # in the page the first call grows, past the guest's one


def test_map_operate_in_wasm_passes_every_argument_whole_in_a_slot_of_a_page_of_its_own():
    wasm = rewrite.serve_map_operate_in_wasm(wat(MAP_GUEST))
    exports, store, seen, module, where = served_maps(wasm, answers=(-44, 0, -21, 7, 3, 0))
    stage = [(i.module, i.name, list(i.type.params), [str(r) for r in i.type.results])
             for i in module.imports if "operate" in i.name]
    assert stage == [("wasm_bpf", "wasm_bpf_map_operate_stage", [], ["i32"])]
    globals_ = [(e.name, str(e.type.content)) for e in module.exports if isinstance(e.type, wasmtime.GlobalType)]
    assert globals_ == [(name, "i32") for name in rewrite.MAP_OPERATE.arg_exports[:5]] + [
        (rewrite.MAP_OPERATE.arg_exports[5], "i64"), (rewrite.ARGS_SLOT_EXPORT, "i32")]
    assert exports[rewrite.ARGS_SLOT_EXPORT].value(store) == 0  # no slot before the first call
    results = [exports["operate"](store, *args) for args in MAP_CALLS]
    results.append(exports["lookup"](store, 9))  # a call site with constants
    assert results == [-44, 0, -21, 7, 3, 0]  # the host's answers are the guest's
    assert seen["wasm_bpf_map_operate"] == MAP_CALLS + [(9, 1, 16, 32, 0, 0)]
    assert where == [SLOT] * 6
    assert exports["memory"].size(store) == 2  # one page grown, once
    assert [exports[g].value(store) for g in rewrite.MAP_OPERATE.arg_exports] == [0] * 6  # unused


def test_map_fd_by_name_in_wasm_passes_the_whole_i64_handle():
    wasm = rewrite.serve_import_in_wasm(wat(MAP_GUEST), rewrite.MAP_FD_BY_NAME)
    exports, store, seen, module, where = served_maps(wasm, answers=(5, -44, -28, 1))
    assert [exports["map_fd"](store, *args) for args in FD_CALLS] == [5, -44, -28, 1]
    assert seen["wasm_bpf_map_fd_by_name"] == FD_CALLS
    assert where == [SLOT] * 4
    # map_operate was left as it was
    assert [i.name for i in module.imports] == ["wasm_bpf_map_fd_by_name_stage", "wasm_bpf_map_operate"]


def test_slot_layout_puts_each_param_at_its_natural_alignment():
    assert rewrite.slot_layout(rewrite.MAP_OPERATE.params) == ((0, 4, 8, 12, 16, 24), "<iiiii4xq")
    assert rewrite.slot_layout(rewrite.MAP_FD_BY_NAME.params) == ((0, 8), "<qi")
    assert rewrite.slot_layout(("i32", "i64", "i32", "i32", "i64")) == ((0, 8, 16, 20, 24), "<i4xqiiq")


def test_map_imports_share_one_slot_and_one_page():
    wasm = rewrite.serve_import_in_wasm(rewrite.serve_map_operate_in_wasm(wat(MAP_GUEST)), rewrite.MAP_FD_BY_NAME)
    module = wasmtime.Module(wasmtime.Engine(), wasm)
    slots = [e.name for e in module.exports if e.name == rewrite.ARGS_SLOT_EXPORT]
    assert slots == [rewrite.ARGS_SLOT_EXPORT]
    exports, store, seen, _, where = served_maps(wasm, answers=(4,))
    assert exports["map_fd"](store, 2, 8) == 4 and exports["lookup"](store, 3) == 4
    assert exports["operate"](store, *MAP_CALLS[1]) == 4 and exports["map_fd"](store, *FD_CALLS[2]) == 4
    assert seen == {"wasm_bpf_map_fd_by_name": [(2, 8), FD_CALLS[2]],
                    "wasm_bpf_map_operate": [(3, 1, 16, 32, 0, 0), MAP_CALLS[1]]}
    assert where == [SLOT] * 4 and exports["memory"].size(store) == 2


@pytest.mark.parametrize("memory, limits", [("(memory (export \"memory\") 1 1)", None),  # max == initial
                                            ("(memory (export \"memory\") 1)", 65536)])  # a store's limit
def test_map_calls_go_through_the_globals_when_the_memory_cannot_grow(memory, limits):
    # no slot, and no map call lost: the arguments go to the globals, the
    # slot's global stays 0
    text = MAP_GUEST.replace('(memory (export "memory") 1)', memory)
    wasm = rewrite.serve_import_in_wasm(rewrite.serve_map_operate_in_wasm(wat(text)), rewrite.MAP_FD_BY_NAME)
    exports, store, seen, _, where = served_maps(wasm, answers=(-44, 0, -21, 7, 3, 5, 6, 8, 9), limits=limits)
    results = [exports["operate"](store, *args) for args in MAP_CALLS]
    results += [exports["map_fd"](store, *args) for args in FD_CALLS]
    assert results == [-44, 0, -21, 7, 3, 5, 6, 8, 9]
    assert seen == {"wasm_bpf_map_operate": MAP_CALLS, "wasm_bpf_map_fd_by_name": FD_CALLS}
    assert where == ["globals"] * 9
    assert exports["memory"].size(store) == 1 and exports[rewrite.ARGS_SLOT_EXPORT].value(store) == 0


def test_a_failed_grow_is_tried_again_at_the_next_call():
    # the globals path does not stick: once the memory can grow, the next
    # call takes its slot
    wasm = rewrite.serve_map_operate_in_wasm(wat(MAP_GUEST))
    exports, store, seen, _, where = served_maps(wasm, answers=(1,), limits=65536)
    assert exports["operate"](store, *MAP_CALLS[0]) == 1
    store.set_limits(memory_size=2 * 65536)
    assert [exports["operate"](store, *args) for args in MAP_CALLS[1:3]] == [1, 1]
    assert where == ["globals", SLOT, SLOT] and exports["memory"].size(store) == 2
    assert seen["wasm_bpf_map_operate"] == MAP_CALLS[:3]


def test_a_memory_that_had_no_page_never_has_its_slot_at_address_0():
    text = MAP_GUEST.replace('(memory (export "memory") 1)', '(memory (export "memory") 0)')
    wasm = rewrite.serve_map_operate_in_wasm(wat(text))
    exports, store, seen, _, where = served_maps(wasm, answers=(2,))
    assert [exports["operate"](store, *args) for args in MAP_CALLS[:3]] == [2, 2, 2]
    assert where == [rewrite.ARGS_SLOT_OFFSET] * 3 and exports["memory"].size(store) == 1  # one page, once
    assert seen["wasm_bpf_map_operate"] == MAP_CALLS[:3]


@pytest.mark.parametrize("wild", [0xFFFFFFF0, 65536 - 8, -1])
def test_a_wild_slot_address_traps_in_the_guest(wild):
    # the slot's global is the guest's to write: a store out of its memory
    # traps in wasm (the engine's host side checks again, see
    # test_engine_wasmer), nothing reaches the host
    wasm = rewrite.serve_map_operate_in_wasm(wat(MAP_GUEST))
    exports, store, seen, _, where = served_maps(wasm)
    exports[rewrite.ARGS_SLOT_EXPORT].set_value(store, wild)
    with pytest.raises(wasmtime.Trap, match="out of bounds"):
        exports["operate"](store, *MAP_CALLS[1])
    assert where == [] and exports["memory"].size(store) == 1


def test_map_imports_in_a_64_bit_memory_are_refused():
    text = MAP_GUEST.replace('(memory (export "memory") 1)', '(memory (export "memory") i64 1)')
    with pytest.raises(RewriteError, match="64-bit memory"):
        rewrite.serve_map_operate_in_wasm(wat(text))


def test_map_imports_retarget_only_their_own_calls():
    wasm = wat(MAP_GUEST)
    out = rewrite.serve_map_operate_in_wasm(wasm)
    bodies = _bodies(out)
    calls = lambda f: [rewrite._retarget_calls(b, f, 10**6)[1] for b in bodies]  # noqa: E731
    added = 2 + 3  # 2 imports, 3 functions: the added one is index 5, the last body
    assert calls(1) == [0, 0, 0, 2]  # only the added function calls the (renamed) import (slot, globals)
    assert calls(added) == [1, 1, 0, 0]  # the guest's two call sites go to it
    assert calls(0) == [0, 0, 1, 0]  # map_fd_by_name's call unchanged
    both = rewrite.serve_import_in_wasm(out, rewrite.MAP_FD_BY_NAME)
    exports, store, seen, _, _ = served_maps(both, answers=(3,))
    assert exports["map_fd"](store, 2, 8) == 3 and exports["lookup"](store, 3) == 3
    assert seen == {"wasm_bpf_map_fd_by_name": [(2, 8)], "wasm_bpf_map_operate": [(3, 1, 16, 32, 0, 0)]}
    with pytest.raises(RewriteError, match="imports no function wasm_bpf.wasm_bpf_map_operate"):
        rewrite.serve_map_operate_in_wasm(both)  # once only


def test_served_map_imports_have_the_abis_signatures():
    from wasm_bpf_cli.abi.signatures import REFERENCE_FUNCTIONS, WASM_BPF_MODULE
    for served in rewrite.HOST_SERVED_IMPORTS:
        assert served.module == WASM_BPF_MODULE
        assert REFERENCE_FUNCTIONS[served.name] == (served.params, ("i32",))
        assert len(served.arg_exports) == len(served.params)


@pytest.mark.parametrize("text, message", [
    (MAP_GUEST.replace("(param i32 i32 i32 i32 i32 i64) (result i32)))\n  (memory",
                       "(param i32 i32 i32 i32 i32 i32) (result i32)))\n  (memory")
     .replace("(i64.const 0)))", "(i32.const 0)))").replace("(param i32 i32 i32 i32 i32 i64) (result i32)\n",
                                                           "(param i32 i32 i32 i32 i32 i32) (result i32)\n"),
     "is not imported as"),
    (MAP_GUEST.replace('(memory (export "memory") 1)', '(memory (export "memory") 1) (export "o" (func $operate))'),
     "exported"),
    (MAP_GUEST.replace('(memory (export "memory") 1)',
                       '(memory (export "memory") 1) (export "__wasm_bpf_map_operate_flags" (memory 0))'),
     "already exports"),
])
def test_map_operate_in_wasm_refuses_what_it_cannot_redirect(text, message):
    with pytest.raises(RewriteError, match=message):
        rewrite.serve_map_operate_in_wasm(wat(text))


MAP_GUESTS = ["tests/guests/build/maps.wasm", "tests/guests/build/mapwalk.wasm",
              "tests/guests/build/upstream.wasm", "examples/bench/bench.wasm"]


@pytest.mark.parametrize("path", MAP_GUESTS)
def test_map_imports_in_wasm_rewrite_the_built_guests_into_valid_modules(path):
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, path), "rb") as f:  # built by `make build`: missing is a failure
        wasm = rewrite.serve_fd_write_in_wasm(f.read())
    for served in rewrite.HOST_SERVED_IMPORTS:
        wasm = rewrite.serve_import_in_wasm(wasm, served)
    module = wasmtime.Module(wasmtime.Engine(), wasm)  # validates
    names = {i.name: i.type for i in module.imports if i.module == "wasm_bpf"}
    assert "wasm_bpf_map_operate" not in names and "wasm_bpf_map_fd_by_name" not in names
    for served in rewrite.HOST_SERVED_IMPORTS:
        t = names[served.stage]
        assert (list(t.params), [str(r) for r in t.results]) == ([], ["i32"])


@pytest.mark.parametrize("path", GUESTS + MAP_GUESTS + ["tests/guests/build/plainprint.wasm"])
def test_skipping_bodies_that_cannot_reference_the_import_changes_nothing(path, monkeypatch):
    # _serve_import_in_wasm decodes only the bodies that contain the bytes of
    # a call of the import (in any LEB128 form): the same module as decoding all
    import os
    from wasm_bpf_cli.engines import wasmer_engine
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, path), "rb") as f:
        wasm = f.read()
    fast = wasmer_engine.prepare(wasm)
    monkeypatch.setattr(rewrite, "_references_to", lambda index: [b""])  # every body
    assert wasmer_engine.prepare(wasm) == fast


def test_references_to_lists_every_leb128_form_of_the_index():
    assert rewrite._references_to(0)[:3] == [b"\x10\x00", b"\x12\x00", b"\xd2\x00"]
    assert b"\x10\x85\x80\x80\x80\x00" in rewrite._references_to(5)  # wasm-ld's padded form
    for index in (0, 127, 128, 300, 2**21, 2**32 - 1):
        forms = rewrite._references_to(index)
        assert len(forms) == 3 * (6 - len(rewrite.encode_u32(index)))
        for form in forms:
            r = rewrite._Reader(form, 1)
            assert r.leb_u() == index and r.at_end()
