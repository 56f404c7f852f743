"""The wasmer adapter against the engine contract, with tiny WAT guests.

Runs under CPython <= 3.10 with `wasm-bpf[wasmer]`. Without wasmer these
tests skip; under CI=true they fail instead, unless this Python is 3.11+
(where wasmer cannot be installed at all, so skipping is right)."""
import os
import sys
import threading

import pytest
import wasmtime

from conftest import skip_or_fail
from wasm_bpf_cli.abi.signatures import SAMPLE_CALLBACK, Signature
from wasm_bpf_cli.engines.base import GuestExit, GuestTrap, HostFunction, WasiOptions
from wasm_bpf_cli.errors import EngineError, ModuleError

try:
    import wasmer  # noqa: F401
    import wasmer_compiler_cranelift  # noqa: F401
    HAVE_WASMER = True
except ImportError:
    HAVE_WASMER = False

from wasm_bpf_cli.engines.wasmer_engine import WasmerEngine  # must import on any Python

CB = SAMPLE_CALLBACK
NO_WASI = WasiOptions(argv=["guest.wasm"])


@pytest.fixture
def engine():
    if not HAVE_WASMER:
        reason = "wasmer is not importable (needs CPython <= 3.10 and `pip install '.[wasmer]'`)"
        if sys.version_info >= (3, 11):
            pytest.skip(reason + ": it cannot exist on this Python")
        skip_or_fail(reason)
    return WasmerEngine()


def wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


def run(engine, text, host=(), wasi=NO_WASI):
    inst = engine.instantiate(engine.compile(wat(text)), wasi, list(host))
    return inst, inst.run_main()


def test_missing_wasmer_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "wasmer", None)  # import now raises ImportError
    with pytest.raises(EngineError) as err:
        WasmerEngine()
    v = sys.version_info
    assert str(err.value) == ("engine wasmer needs CPython <= 3.10 with `pip install 'wasm-bpf[wasmer]'` "
                              f"(this is Python {v.major}.{v.minor}); use --engine wasmtime")
    with pytest.raises(EngineError):
        WasmerEngine.version()


def test_name_version_interrupt(engine):
    assert engine.name == "wasmer"
    assert engine.version() == "1.1.0"
    assert engine.interrupt() is False


WASI_GUEST = r"""(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $env_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 2048) "no newline")
  ;; write [ptr, ptr+len) to fd, as two iovecs split in the middle
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (i32.div_u (local.get $len) (i32.const 2)))
    (i32.store (i32.const 8) (i32.add (local.get $ptr) (i32.div_u (local.get $len) (i32.const 2))))
    (i32.store (i32.const 12) (i32.sub (local.get $len) (i32.div_u (local.get $len) (i32.const 2))))
    (if (call $fd_write (local.get $fd) (i32.const 0) (i32.const 2) (i32.const 16)) (then unreachable))
    (if (i32.ne (i32.load (i32.const 16)) (local.get $len)) (then unreachable)))
  (func (export "_start")
    (drop (call $args_sizes (i32.const 32) (i32.const 36)))
    (drop (call $args_get (i32.const 64) (i32.const 1024)))
    (call $write (i32.const 1) (i32.const 1024) (i32.load (i32.const 36)))
    (drop (call $env_sizes (i32.const 32) (i32.const 36)))
    (drop (call $env_get (i32.const 64) (i32.const 4096)))
    (call $write (i32.const 2) (i32.const 4096) (i32.load (i32.const 36)))
    (call $write (i32.const 1) (i32.const 2048) (i32.const 10))
    (call $proc_exit (i32.add (i32.load (i32.const 32)) (i32.const 40)))
    unreachable))"""


def test_wasi_argv_env_exit_code_and_sinks(engine, monkeypatch):
    monkeypatch.setenv("WASM_BPF_SHOULD_NOT_LEAK", "1")
    out, err = [], []
    wasi = WasiOptions(argv=["guest.wasm", "a1", "a 2"], env=[("K", "v"), ("EMPTY", "")],
                       stdout=out.append, stderr=err.append)
    inst, code = run(engine, WASI_GUEST, wasi=wasi)
    assert code == 42  # 2 environment variables + 40
    assert out == [b"guest.wasm\0a1\0a 2\0", b"no newline"]  # one delivery per fd_write, as written
    assert err == [b"K=v\0EMPTY=\0"]


def test_wasi_stdout_none_writes_to_fd_1_byte_for_byte(engine, capfd):
    _, code = run(engine, WASI_GUEST, wasi=WasiOptions(argv=["g"]))
    os.write(1, b"|after")
    captured = capfd.readouterr()
    assert code == 40
    assert captured.out == "g\0no newline|after"
    assert captured.err == ""


def test_wasi_stdin_empty_or_file_and_preopened_files(engine, tmp_path):
    (tmp_path / "in.txt").write_bytes(b"hello from stdin")
    guest = r"""(module
      (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_open" (func $path_open
        (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 200) "out.txt")
      (func (export "_start") (local $fd i32) (local $n i32)
        ;; read stdin into 1024.., n at 16
        (i32.store (i32.const 0) (i32.const 1024)) (i32.store (i32.const 4) (i32.const 100))
        (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16)) (then unreachable))
        (local.set $n (i32.load (i32.const 16)))
        ;; create /data/out.txt and write what was read; wasmer keeps fd 3 for a
        ;; virtual root, so the first preopen is fd 4 (wasi-libc finds preopens
        ;; with fd_prestat_get, so real guests do not care)
        (if (call $path_open (i32.const 4) (i32.const 0) (i32.const 200) (i32.const 7)
              (i32.const 9) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 20))
          (then unreachable))
        (local.set $fd (i32.load (i32.const 20)))
        (i32.store (i32.const 4) (i32.add (local.get $n) (i32.const 1)))
        (i32.store8 (i32.add (i32.const 1024) (local.get $n)) (i32.const 33))
        (if (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 16)) (then unreachable))
        (drop (call $fd_close (local.get $fd)))))"""
    for stdin, want in [(None, b"!"), (str(tmp_path / "in.txt"), b"hello from stdin!")]:
        wasi = WasiOptions(argv=["g"], preopens=[(str(tmp_path), "/data")], stdin_path=stdin)
        _, code = run(engine, guest, wasi=wasi)
        assert code == 0
        assert (tmp_path / "out.txt").read_bytes() == want


def test_missing_preopen_dir_is_an_engine_error(engine, tmp_path):
    with pytest.raises(EngineError, match="cannot preopen"):
        run(engine, "(module (memory (export \"memory\") 1) (func (export \"_start\")))",
            wasi=WasiOptions(preopens=[(str(tmp_path / "nope"), "/x")]))


def test_host_functions_with_i64_and_exit_from_host(engine):
    seen = []

    def load(ptr, size):
        seen.append(("load", ptr, size))
        return (1 << 40) + ptr

    def close(handle):
        seen.append(("close", handle))
        raise GuestExit(7)

    guest = """(module
      (import "wasm_bpf" "wasm_load_bpf_object" (func $load (param i32 i32) (result i64)))
      (import "wasm_bpf" "wasm_close_bpf_object" (func $close (param i64) (result i32)))
      (import "wasm_bpf" "neg" (func $neg (param i64) (result i64)))
      (memory (export "memory") 1)
      (func (export "_start")
        (if (i64.ne (call $neg (i64.const -9000000000)) (i64.const 9000000000)) (then unreachable))
        (drop (call $close (call $load (i32.const 16) (i32.const -1))))
        unreachable))"""
    host = [HostFunction("wasm_bpf", "wasm_load_bpf_object", Signature(("i32", "i32"), ("i64",)), load),
            HostFunction("wasm_bpf", "wasm_close_bpf_object", Signature(("i64",), ("i32",)), close),
            HostFunction("wasm_bpf", "neg", Signature(("i64",), ("i64",)), lambda x: -x)]
    _, code = run(engine, guest, host)
    assert code == 7
    assert seen == [("load", 16, -1), ("close", (1 << 40) + 16)]


def test_return_from_start_is_exit_0_and_trap_is_guest_trap(engine):
    assert run(engine, '(module (memory (export "memory") 1) (func (export "_start")))')[1] == 0
    with pytest.raises(GuestTrap, match="unreachable") as trap:
        run(engine, '(module (memory (export "memory") 1) (func (export "_start") unreachable))')
    assert "\n" not in str(trap.value) and not trap.value.interrupted


class Custom(Exception):
    pass


@pytest.mark.parametrize("exc", [Custom("mine"), RuntimeError("also mine"), KeyboardInterrupt()])
def test_host_exception_comes_out_of_run_main_unchanged(engine, exc):
    def boom():
        raise exc

    guest = """(module (import "env" "boom" (func $boom))
      (memory (export "memory") 1) (func (export "_start") (call $boom)))"""
    with pytest.raises(type(exc)) as raised:
        run(engine, guest, [HostFunction("env", "boom", Signature((), ()), boom)])
    assert raised.value is exc


TABLE_GUEST = """(module
  (import "wasm_bpf" "poll" (func $poll (param i32) (result i32)))
  (import "wasm_bpf" "inner" (func $inner (param i32) (result i32)))
  (memory (export "memory") 1)
  (table (export "__indirect_function_table") 4 funcref)
  (elem (i32.const 1) func $cb $deep $other)
  (func $cb (param i32 i32 i32) (result i32)
    (i32.add (i32.mul (local.get 0) (i32.const 100)) (i32.sub (local.get 1) (local.get 2))))
  (func $deep (param i32 i32 i32) (result i32) (call $inner (local.get 0)))
  (func $other (param i64) (result i32) (i32.const 0))
  (func (export "_start") (drop (call $poll (i32.const 2))) unreachable))"""


def test_table_caller_and_guest_exit_nested_inside_a_table_call(engine):
    calls = []
    inst = None

    def poll(index):
        cb = inst.table_caller(1, CB)
        calls.append(cb(3, 10, 4))
        inst.table_caller(index, CB)(55, 0, 0)  # -> $deep -> inner -> GuestExit
        calls.append("not reached")
        return 0

    def inner(x):
        calls.append(("inner", x))
        raise GuestExit(x)

    host = [HostFunction("wasm_bpf", "poll", Signature(("i32",), ("i32",)), poll),
            HostFunction("wasm_bpf", "inner", Signature(("i32",), ("i32",)), inner)]
    inst = engine.instantiate(engine.compile(wat(TABLE_GUEST)), NO_WASI, host)
    assert inst.run_main() == 55
    assert calls == [306, ("inner", 55)]


def test_trap_in_a_callback_called_from_a_host_function_is_a_guest_trap(engine):
    inst = None

    def poll(index):
        return inst.table_caller(0, CB)(1, 2, 3)  # null entry: traps inside the trampoline

    host = [HostFunction("wasm_bpf", "poll", Signature(("i32",), ("i32",)), poll),
            HostFunction("wasm_bpf", "inner", Signature(("i32",), ("i32",)), lambda x: x)]
    inst = engine.instantiate(engine.compile(wat(TABLE_GUEST)), NO_WASI, host)
    with pytest.raises(GuestTrap):
        inst.run_main()


def test_table_caller_edges(engine):
    host = [HostFunction("wasm_bpf", n, Signature(("i32",), ("i32",)), lambda x: x) for n in ("poll", "inner")]
    inst = engine.instantiate(engine.compile(wat(TABLE_GUEST)), NO_WASI, host)
    assert inst.table_caller(1, CB)(-1, 0, 0) == -100
    assert inst.table_caller(4, CB) is None  # past the table
    assert inst.table_caller(-1, CB) is None
    assert inst.table_caller(1, Signature(("i32",), ("i32",))) is None  # no trampoline for it
    with pytest.raises(GuestTrap):
        inst.table_caller(0, CB)(1, 2, 3)  # null entry
    with pytest.raises(GuestTrap):
        inst.table_caller(3, CB)(1, 2, 3)  # entry of another type
    assert inst.table_caller(2, CB)(9, 0, 0) == 9  # still usable after a trap


def test_without_table_export_the_module_is_unchanged_and_has_no_table_caller(engine):
    inst, code = run(engine, '(module (memory (export "memory") 1) (func (export "_start")))')
    assert code == 0 and inst.table_caller(0, CB) is None


def test_export_caller(engine):
    guest = """(module (memory (export "memory") 1) (func (export "_start"))
      (func (export "go-callback") (param i32 i32 i32) (result i32) (i32.sub (local.get 1) (local.get 2)))
      (func (export "void") (param i64))
      (func (export "trap") (param i32 i32 i32) (result i32) unreachable))"""
    inst, _ = run(engine, guest)
    assert inst.export_caller("go-callback", CB)(0, 5, 7) == -2
    assert inst.export_caller("void", Signature(("i64",), ()))(1 << 50) == 0
    assert inst.export_caller("go-callback", Signature(("i32",), ("i32",))) is None
    assert inst.export_caller("missing", CB) is None
    assert inst.export_caller("memory", CB) is None
    with pytest.raises(GuestTrap, match="unreachable"):
        inst.export_caller("trap", CB)(1, 2, 3)


def test_memory_bounds_base_and_grow(engine):
    import ctypes

    guest = """(module (memory (export "memory") 1 10)
      (data (i32.const 100) "abc\\00")
      (func (export "_start"))
      (func (export "grow") (param i32 i32 i32) (result i32) (memory.grow (local.get 0)))
      (func (export "peek") (param i32 i32 i32) (result i32) (i32.load8_u (local.get 0))))"""
    inst, _ = run(engine, guest)
    mem = inst.memory
    page = 65536
    assert mem.size() == page
    assert mem.host_address(0, page) == mem.base_address()
    assert mem.host_address(page - 4, 4) == mem.base_address() + page - 4
    for ptr, size in [(page - 3, 4), (page, 1), (-1, 1), (0, -1), (page + 1, 0)]:
        assert mem.host_address(ptr, size) is None
    assert mem.host_address(page, 0) is not None
    assert mem.read_cstring(100) == "abc"
    assert mem.read(page - 1, 2) is None
    assert inst.export_caller("grow", CB)(2, 0, 0) == 1
    assert mem.size() == 3 * page
    addr = mem.host_address(3 * page - 1, 1)
    assert addr is not None and mem.host_address(3 * page, 1) is None
    ctypes.memmove(addr, b"\x7f", 1)  # the host writes where the guest reads
    assert inst.export_caller("peek", CB)(3 * page - 1, 0, 0) == 0x7F


def test_max_memory_caps_growth(engine):
    guest = """(module (memory (export "memory") 1)
      (func (export "_start"))
      (func (export "grow") (param i32 i32 i32) (result i32) (memory.grow (local.get 0))))"""
    module = engine.compile(wat(guest))
    inst = engine.instantiate(module, NO_WASI, [], max_memory=3 * 65536 + 100)
    grow = inst.export_caller("grow", CB)
    assert grow(3, 0, 0) == -1 and grow(2, 0, 0) == 1 and grow(1, 0, 0) == -1
    assert inst.memory.size() == 3 * 65536
    uncapped = engine.instantiate(module, NO_WASI, [])
    assert uncapped.export_caller("grow", CB)(10, 0, 0) == 1
    with pytest.raises(ModuleError, match="starts with 1 pages"):
        engine.instantiate(module, NO_WASI, [], max_memory=100)


def test_bad_modules_are_one_line_module_errors(engine):
    with pytest.raises(ModuleError, match="not a wasm module"):
        engine.compile(b"\x7fELF")
    with pytest.raises(ModuleError) as err:
        engine.compile(b"\0asm\x01\0\0\0\x01\x04\x01\x60\x00")
    assert "\n" not in str(err.value)
    with pytest.raises(ModuleError, match="truncated"):
        engine.compile(wat('(module (table (export "__indirect_function_table") 1 funcref))')[:-2])
    with pytest.raises(ModuleError, match="memory"):
        run(engine, "(module (func (export \"_start\")))")
    with pytest.raises(ModuleError, match="_start"):
        run(engine, '(module (memory (export "memory") 1))')
    with pytest.raises(ModuleError, match="cannot instantiate"):
        run(engine, '(module (import "nope" "f" (func)) (memory (export "memory") 1))')


def test_compile_cache_and_thread_binding(engine):
    wasm = wat('(module (memory (export "memory") 1) (func (export "_start")))')
    module = engine.compile(wasm)
    assert engine.compile(wasm) is module
    assert engine.compile(wasm, cache=False) is not module
    errors = []

    def other_thread():
        try:
            engine.instantiate(module, NO_WASI, [])
        except EngineError as err:
            errors.append(str(err))
        inst = engine.instantiate(engine.compile(wasm), NO_WASI, [])  # its own store
        errors.append(inst.run_main())

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert len(errors) == 2 and "one thread" in errors[0] and errors[1] == 0


def _fd_write_imports(engine, text):
    """(name, params, results) of the compiled module's WASI fd_write imports."""
    module = engine.compile(wat(text), cache=False).module
    return [(i.name, len(i.type.params), len(i.type.results)) for i in module.imports
            if i.module == "wasi_snapshot_preview1" and "fd_write" in i.name]


def test_fd_write_reaches_the_host_without_arguments_unless_switched_off(engine, monkeypatch):
    # wasmer-python keeps each host call's argument objects until _start
    # returns: the guest's fd_write calls pass theirs in the staging slot
    # (rewrite.serve_fd_write_in_wasm), one host call of () -> i32 each
    assert _fd_write_imports(engine, WASI_GUEST) == [("wasm_bpf_fd_write_stage", 0, 1)]
    monkeypatch.setenv("WASM_BPF_FD_WRITE_IN_WASM", "0")
    assert _fd_write_imports(engine, WASI_GUEST) == [("fd_write", 4, 1)]


def test_fd_write_of_a_go_wrapper_guest_keeps_its_arguments(engine):
    # Go's allocator would hand out the page the slot is grown on
    go_guest = WASI_GUEST.replace(
        '(memory (export "memory") 1)',
        '(memory (export "memory") 1) (func (export "go-callback") (param i32 i32 i32) (result i32) (i32.const 0))')
    assert _fd_write_imports(engine, go_guest) == [("fd_write", 4, 1)]


EFAULT_GUEST = r"""(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "\00\00\f0\00\05\00\00\00ok\n")  ;; 0xf00000: past any page grown for the slot
  (func (export "_start")
    (local $r i32)
    ;; a wild iovec array pointer, then an iovec whose bytes lie past the memory
    (local.set $r (call $fd_write (i32.const 1) (i32.const -16) (i32.const 1) (i32.const 32)))
    (local.set $r (i32.add (i32.mul (local.get $r) (i32.const 100))
                           (call $fd_write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 32))))
    (call $proc_exit (i32.rem_u (local.get $r) (i32.const 256)))
    unreachable))"""


def test_fd_write_with_a_wild_iovec_pointer_is_efault_in_the_guest(engine):
    out = []
    _, code = run(engine, EFAULT_GUEST, wasi=WasiOptions(argv=["g"], stdout=out.append))
    assert _fd_write_imports(engine, EFAULT_GUEST) == [("wasm_bpf_fd_write_stage", 0, 1)]
    assert code == (21 * 100 + 21) % 256  # WASI EFAULT, both times
    assert out == []


MAP_GUEST = r"""(module
  (import "wasm_bpf" "wasm_bpf_map_fd_by_name" (func $map_fd (param i64 i32) (result i32)))
  (import "wasm_bpf" "wasm_bpf_map_operate" (func $operate (param i32 i32 i32 i32 i32 i64) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start"))
  (func (export "operate") (param i32 i32 i32 i32 i32 i64) (result i32)
    (call $operate (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4) (local.get 5)))
  (func (export "map_fd") (param i64 i32) (result i32)
    (call $map_fd (local.get 0) (local.get 1))))"""
OPERATE = Signature(("i32", "i32", "i32", "i32", "i32", "i64"), ("i32",))
MAP_FD = Signature(("i64", "i32"), ("i32",))


def _wasm_bpf_imports(engine, text):
    """(name, params) of the compiled module's wasm_bpf imports."""
    module = engine.compile(wat(text), cache=False).module
    return sorted((i.name, len(i.type.params)) for i in module.imports if i.module == "wasm_bpf")


def test_map_imports_reach_the_host_without_arguments_unless_switched_off(engine, monkeypatch):
    # wasmer-python keeps each host call's argument objects until _start
    # returns (~300 B per map_operate call): the guest leaves them in globals
    # (rewrite.serve_import_in_wasm), one host call of () -> i32 each
    assert _wasm_bpf_imports(engine, MAP_GUEST) == [("wasm_bpf_map_fd_by_name_stage", 0),
                                                    ("wasm_bpf_map_operate_stage", 0)]
    monkeypatch.setenv("WASM_BPF_MAP_OPERATE_IN_WASM", "0")
    assert _wasm_bpf_imports(engine, MAP_GUEST) == [("wasm_bpf_map_fd_by_name_stage", 0),
                                                    ("wasm_bpf_map_operate", 6)]
    monkeypatch.setenv("WASM_BPF_MAP_FD_BY_NAME_IN_WASM", "0")
    assert _wasm_bpf_imports(engine, MAP_GUEST) == [("wasm_bpf_map_fd_by_name", 2), ("wasm_bpf_map_operate", 6)]


def test_map_imports_of_a_go_wrapper_guest_keep_their_arguments(engine):
    go_guest = MAP_GUEST.replace(
        '(func (export "_start"))',
        '(func (export "_start")) (func (export "go-callback") (param i32 i32 i32) (result i32) (i32.const 0))')
    assert _wasm_bpf_imports(engine, go_guest) == [("wasm_bpf_map_fd_by_name", 2), ("wasm_bpf_map_operate", 6)]


I32_MIN, I32_MAX, I64_MIN, I64_MAX = -2**31, 2**31 - 1, -2**63, 2**63 - 1
MAP_CALLS = [(3, 1, 16, 32, 0, 0), (5, 4, -1, I32_MIN, I32_MAX, I64_MIN), (7, 2, -16, 65536, 0, I64_MAX),
             (I32_MAX, -1, 0, 0, -8, -1), (-9, 99, 1 << 30, 12, 4, 1 << 40)]
FD_CALLS = [(1, 64), (I64_MAX, -1), (I64_MIN, I32_MIN), (-1, 0)]


def _map_calls(engine):
    """What the host functions see and the guest gets back for MAP_CALLS and FD_CALLS."""
    seen = []

    def operate(*args):
        seen.append(("operate",) + args)
        return -len(seen)

    def map_fd(*args):
        seen.append(("map_fd",) + args)
        return len(seen)

    host = [HostFunction("wasm_bpf", "wasm_bpf_map_operate", OPERATE, operate),
            HostFunction("wasm_bpf", "wasm_bpf_map_fd_by_name", MAP_FD, map_fd)]
    inst, _ = run(engine, MAP_GUEST, host)
    got = [inst.export_caller("operate", OPERATE)(*args) for args in MAP_CALLS]
    got += [inst.export_caller("map_fd", MAP_FD)(*args) for args in FD_CALLS]
    return seen, got


def test_map_calls_bring_the_same_arguments_and_answers_with_the_switches_on_and_off(engine, monkeypatch):
    on = _map_calls(engine)
    monkeypatch.setenv("WASM_BPF_MAP_OPERATE_IN_WASM", "0")
    monkeypatch.setenv("WASM_BPF_MAP_FD_BY_NAME_IN_WASM", "0")
    assert _map_calls(engine) == on
    seen, got = on
    assert seen == [("operate",) + c for c in MAP_CALLS] + [("map_fd",) + c for c in FD_CALLS]
    assert got == [-1, -2, -3, -4, -5, 6, 7, 8, 9]


def test_a_guest_that_imports_a_stage_by_its_name_gets_eio(engine):
    # the stage reads globals only the rewriter adds: without them, EIO
    guest = """(module
      (import "wasm_bpf" "wasm_bpf_map_operate_stage" (func $stage (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start") (call $proc_exit (i32.sub (i32.const 0) (call $stage))) unreachable))"""
    host = [HostFunction("wasm_bpf", "wasm_bpf_map_operate", OPERATE, lambda *args: 0)]
    assert run(engine, guest, host)[1] == 29  # WASI EIO


def test_map_calls_take_one_page_for_their_arguments_slot(engine):
    from wasm_bpf_cli.engines import rewrite
    host = [HostFunction("wasm_bpf", "wasm_bpf_map_operate", OPERATE, lambda *args: 0),
            HostFunction("wasm_bpf", "wasm_bpf_map_fd_by_name", MAP_FD, lambda *args: 0)]
    inst, _ = run(engine, MAP_GUEST, host)
    assert inst.memory.size() == 65536
    operate = inst.export_caller("operate", OPERATE)
    assert [operate(*args) for args in MAP_CALLS] == [0] * len(MAP_CALLS)
    assert inst.memory.size() == 2 * 65536  # grown once
    assert inst._export(rewrite.ARGS_SLOT_EXPORT).value == 65536 + rewrite.ARGS_SLOT_OFFSET


def test_map_calls_in_a_memory_that_cannot_grow_bring_the_same_arguments(engine, monkeypatch):
    # no page for a slot (maximum == initial): the arguments go through the
    # globals, every call still served
    guest = MAP_GUEST.replace('(memory (export "memory") 1)', '(memory (export "memory") 1 1)')
    monkeypatch.setitem(globals(), "MAP_GUEST", guest)
    seen, got = _map_calls(engine)
    assert seen == [("operate",) + c for c in MAP_CALLS] + [("map_fd",) + c for c in FD_CALLS]
    assert got == [-1, -2, -3, -4, -5, 6, 7, 8, 9]


STAGED_GUEST = r"""(module
  (import "wasm_bpf" "wasm_bpf_map_operate_stage" (func $stage (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "\07\00\00\00\01\00\00\00\10\00\00\00\20\00\00\00\00\00\00\00\00\00\00\00\ff\ff\ff\ff\ff\ff\ff\ff")
  (global (export "__wasm_bpf_map_operate_fd") (mut i32) (i32.const 0))
  (global (export "__wasm_bpf_map_operate_cmd") (mut i32) (i32.const 0))
  (global (export "__wasm_bpf_map_operate_key") (mut i32) (i32.const 0))
  (global (export "__wasm_bpf_map_operate_value") (mut i32) (i32.const 0))
  (global (export "__wasm_bpf_map_operate_next_key") (mut i32) (i32.const 0))
  (global (export "__wasm_bpf_map_operate_flags") (mut i64) (i64.const 0))
  (global (export "__wasm_bpf_args_slot") (mut i32) (i32.const %d))
  (func (export "_start") (call $proc_exit (i32.sub (i32.const 0) (call $stage))) unreachable))"""


@pytest.mark.parametrize("slot, code", [(1024, 7), (0xFFFFFFF0, 21), (0x7FFFFFFF, 21), (65536 - 8, 21),
                                        (65536, 21)])
def test_a_wild_arguments_slot_is_efault_never_a_host_crash(engine, slot, code):
    # the slot's global is the guest's to write: the host reads the slot
    # only inside the memory, as it is now (a slot at 1024 holds fd 7: the
    # host function answers -7; one past the memory: WASI EFAULT)
    seen = []

    def operate(*args):
        seen.append(args)
        return -args[0]
    host = [HostFunction("wasm_bpf", "wasm_bpf_map_operate", OPERATE, operate)]
    assert run(engine, STAGED_GUEST % (slot - (1 << 32) if slot >= 1 << 31 else slot), host)[1] == code
    assert seen == ([(7, 1, 16, 32, 0, -1)] if code == 7 else [])


def test_the_arguments_slot_is_read_where_the_memory_is_after_it_grew(engine):
    # growing may move the memory: the slot is read through wasmer's buffer,
    # which says where it is now
    from wasm_bpf_cli.engines import rewrite
    seen = []
    host = [HostFunction("wasm_bpf", "wasm_bpf_map_operate", OPERATE, lambda *args: seen.append(args) or 0),
            HostFunction("wasm_bpf", "wasm_bpf_map_fd_by_name", MAP_FD, lambda *args: 0)]
    inst, _ = run(engine, MAP_GUEST, host)
    operate = inst.export_caller("operate", OPERATE)
    operate(*MAP_CALLS[0])
    for pages in (1, 15, 200):
        assert inst.memory.grow(pages) is not None
        operate(*MAP_CALLS[1])
    assert seen == [MAP_CALLS[0]] + [MAP_CALLS[1]] * 3
    assert inst._export(rewrite.ARGS_SLOT_EXPORT).value == 65536 + rewrite.ARGS_SLOT_OFFSET


def test_a_stage_without_a_slot_global_reads_the_argument_globals(engine):
    guest = (STAGED_GUEST % 0).replace('(global (export "__wasm_bpf_args_slot") (mut i32) (i32.const 0))', "")
    guest = guest.replace('(export "__wasm_bpf_map_operate_fd") (mut i32) (i32.const 0)',
                          '(export "__wasm_bpf_map_operate_fd") (mut i32) (i32.const 5)')
    assert "args_slot" not in guest
    host = [HostFunction("wasm_bpf", "wasm_bpf_map_operate", OPERATE, lambda *args: -args[0])]
    assert run(engine, guest, host)[1] == 5
