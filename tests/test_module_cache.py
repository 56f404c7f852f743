"""The on-disk compiled-module cache (engines/module_cache.py): miss then hit,
corrupt or foreign entries ignored and replaced, a directory others can write
to is not used, --no-cache / RunOptions.cache=False neither read nor write."""
import os
import stat

import pytest

from conftest import ENGINE, cli_env, guest, wasm_bpf_cmd
from wasm_bpf_cli import engines
from wasm_bpf_cli.engines import module_cache, rewrite


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "wasm-bpf"


def entries(d):
    return sorted(p for p in os.listdir(d) if not p.startswith(".")) if d.exists() else []


def adapter():
    import importlib

    name = engines.resolve(ENGINE)
    return name, importlib.import_module(f"wasm_bpf_cli.engines.{name}_engine")


def runs(engine, module):
    from wasm_bpf_cli.engines.base import WasiOptions

    inst = engine.instantiate(module, WasiOptions(argv=["exitcode", "3"]), [])
    try:
        return inst.run_main(), inst.ring_dispatcher(rewrite.RING_DISPATCH_TABLE) is not None
    finally:
        inst.close()


def test_miss_writes_an_entry_and_a_hit_skips_compiling(cache_home, monkeypatch):
    name, mod = adapter()
    wasm = open(guest("exitcode"), "rb").read()
    fresh = engines.create(name)
    first = runs(fresh, fresh.compile(wasm, cache=False))
    assert entries(cache_home) == []
    engine = engines.create(name)
    module = engine.compile(wasm)
    assert len(entries(cache_home)) == 1
    assert stat.S_IMODE(os.stat(cache_home).st_mode) == 0o700

    def no_compiling(*a, **k):
        raise AssertionError("compiled although the cache holds the module")

    monkeypatch.setattr(mod, "prepare", no_compiling)
    engine = engines.create(name)
    hit = engine.compile(wasm)
    assert hit is not None
    assert runs(engine, hit) == first  # same exit status; the dispatch loop too, if any
    del module


def test_corrupt_or_truncated_entry_is_a_miss_and_is_replaced(cache_home):
    name, _ = adapter()
    wasm = open(guest("exitcode"), "rb").read()
    engines.create(name).compile(wasm)
    (entry,) = entries(cache_home)
    path = cache_home / entry
    good = path.read_bytes()
    for bad in (good[:len(good) // 2], good[:-10] + b"0123456789", b"garbage"):
        path.write_bytes(bad)
        assert module_cache.load(entry) is None
        engine = engines.create(name)
        assert runs(engine, engine.compile(wasm))[0] in (0, 3)
        assert module_cache.load(entry) is not None  # rewritten


def test_key_depends_on_bytes_engine_version_and_rewrite():
    k = module_cache.key(b"\0asm1", "wasmtime", "1", 2)
    assert k != module_cache.key(b"\0asm2", "wasmtime", "1", 2)
    assert k != module_cache.key(b"\0asm1", "wasmer", "1", 2)
    assert k != module_cache.key(b"\0asm1", "wasmtime", "2", 2)
    assert k != module_cache.key(b"\0asm1", "wasmtime", "1", 3)


def test_a_directory_others_can_write_is_not_used(cache_home):
    cache_home.mkdir(mode=0o700)
    os.chmod(cache_home, 0o777)
    module_cache.store("x", b"payload")
    assert entries(cache_home) == []
    os.chmod(cache_home, 0o700)
    module_cache.store("x", b"payload")
    assert module_cache.load("x") == b"payload"


def test_runner_cache_option(cache_home):
    from wasm_bpf_cli import Runner, RunOptions

    path = guest("exitcode")
    res = Runner(path, RunOptions(args=["5"], engine=ENGINE, cache=False)).run()
    assert entries(cache_home) == []
    res2 = Runner(path, RunOptions(args=["5"], engine=ENGINE)).run()
    assert len(entries(cache_home)) == 1
    res3 = Runner(path, RunOptions(args=["5"], engine=ENGINE)).run()
    assert res.exit_code == res2.exit_code == res3.exit_code


@pytest.mark.engine
def test_no_cache_option_of_the_cli(tmp_path):
    import subprocess

    env = cli_env(XDG_CACHE_HOME=str(tmp_path))
    path = guest("exitcode")
    out = subprocess.run(wasm_bpf_cmd("run", "--no-cache", path, "4"), env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 4, out.stderr
    assert entries(tmp_path / "wasm-bpf") == []
    for _ in range(2):  # a miss, then a hit
        out = subprocess.run(wasm_bpf_cmd("run", path, "4"), env=env, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 4, out.stderr
        assert len(entries(tmp_path / "wasm-bpf")) == 1
