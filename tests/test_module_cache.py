"""The on-disk compiled-module cache (engines/module_cache.py): miss then hit,
corrupt or foreign entries ignored and replaced, a directory others can write
to is not used, --no-cache / RunOptions.cache=False neither read nor write,
the size bound evicts the least recently used entries, --cache-dir and
`wasm-bpf cache` (show, clear)."""
import json
import os
import stat

import pytest

from conftest import ENGINE, cli_env, guest, wasm_bpf_cmd
from wasm_bpf_cli import engines
from wasm_bpf_cli.engines import module_cache, rewrite


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv(module_cache.DIR_ENV, str(tmp_path / "wasm-bpf"))
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
        assert module_cache.ModuleCache().load(entry) is None
        engine = engines.create(name)
        assert runs(engine, engine.compile(wasm))[0] in (0, 3)
        assert module_cache.ModuleCache().load(entry) is not None  # rewritten


def test_key_depends_on_bytes_engine_version_and_rewrite():
    k = module_cache.key(b"\0asm1", "wasmtime", "1", 2)
    assert k != module_cache.key(b"\0asm2", "wasmtime", "1", 2)
    assert k != module_cache.key(b"\0asm1", "wasmer", "1", 2)
    assert k != module_cache.key(b"\0asm1", "wasmtime", "2", 2)
    assert k != module_cache.key(b"\0asm1", "wasmtime", "1", 3)


def test_a_directory_others_can_write_is_not_used(cache_home):
    cache_home.mkdir(mode=0o700)
    os.chmod(cache_home, 0o777)
    module_cache.ModuleCache().store("x", b"payload")
    assert entries(cache_home) == []
    os.chmod(cache_home, 0o700)
    module_cache.ModuleCache().store("x", b"payload")
    assert module_cache.ModuleCache().load("x") == b"payload"


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

    env = cli_env(WASM_BPF_CACHE_DIR=str(tmp_path / "wasm-bpf"))
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


def test_the_bound_evicts_the_least_recently_used_entries(tmp_path):
    cache = module_cache.ModuleCache(tmp_path / "c", max_size=3 * 1100)
    payload = bytes(1000)  # 1056 bytes on disk with the header
    for i, name in enumerate(("a", "b", "c")):
        cache.store(name, payload)
        os.utime(tmp_path / "c" / name, (1000 + i, 1000 + i))  # a oldest, c newest
    assert entries(tmp_path / "c") == ["a", "b", "c"]
    assert cache.load("a") == payload  # a hit makes `a` the most recently used
    cache.store("d", payload)
    assert entries(tmp_path / "c") == ["a", "c", "d"]  # b went, the least recently used
    assert sum(e.size for e in cache.entries()) <= cache.max_size
    cache.store("huge", bytes(4000))  # larger than the bound: not stored, nothing evicted
    assert entries(tmp_path / "c") == ["a", "c", "d"]
    assert module_cache.ModuleCache(tmp_path / "z", max_size=0).store("x", payload) is None
    assert not (tmp_path / "z").exists()


def test_a_subdirectory_is_not_an_entry(tmp_path):
    """The image store lives in oci/ below the cache directory: neither
    counted, nor evicted, nor cleared."""
    cache = module_cache.ModuleCache(tmp_path, max_size=1100)
    (tmp_path / "oci").mkdir()
    (tmp_path / "oci" / "blob").write_bytes(bytes(5000))
    cache.store("a", bytes(1000))
    assert [e.name for e in cache.entries()] == ["a"]
    assert cache.clear() == (1, 1056)
    assert (tmp_path / "oci" / "blob").stat().st_size == 5000


def test_the_bound_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(module_cache.MAX_SIZE_ENV, raising=False)
    assert module_cache.ModuleCache(tmp_path).max_size == module_cache.DEFAULT_MAX_SIZE == 256 << 20
    monkeypatch.setenv(module_cache.MAX_SIZE_ENV, "64M")
    assert module_cache.ModuleCache(tmp_path).max_size == 64 << 20
    assert module_cache.ModuleCache(tmp_path, max_size=5).max_size == 5
    monkeypatch.setenv(module_cache.MAX_SIZE_ENV, "lots")
    with pytest.raises(ValueError, match=r"^WASM_BPF_CACHE_MAX_SIZE: 'lots' is not a size"):
        module_cache.ModuleCache(tmp_path)


def test_runner_cache_dir_and_bound(tmp_path):
    from wasm_bpf_cli import Runner, RunOptions, UsageError

    path = guest("exitcode")
    res = Runner(path, RunOptions(args=["5"], engine=ENGINE, cache_dir=str(tmp_path / "mine"))).run()
    assert res.exit_code == 5 and len(entries(tmp_path / "mine")) == 1
    res = Runner(path, RunOptions(args=["5"], engine=ENGINE, cache_dir=str(tmp_path / "none"),
                                  cache_max_size=0)).run()
    assert res.exit_code == 5 and entries(tmp_path / "none") == []
    with pytest.raises(UsageError, match="cache size bound -1 is negative"):
        Runner(path, RunOptions(engine=ENGINE, cache_max_size=-1)).run()


def cache_cli(*args, **env):
    import subprocess

    return subprocess.run(wasm_bpf_cmd(*args), env=cli_env(**env), capture_output=True, text=True,
                          timeout=60)


@pytest.mark.engine
def test_run_cache_dir_and_the_cache_command(tmp_path):
    d = tmp_path / "cli-cache"
    out = cache_cli("cache", "--cache-dir", str(d))
    assert (out.returncode, out.stdout) == (0, f"directory: {d}\nentries: 0\nsize: 0.0 MiB of at most 256.0 MiB\n")
    ran = cache_cli("run", "--cache-dir", str(d), guest("exitcode"), "4")
    assert ran.returncode == 4, ran.stderr
    (name,) = entries(d)
    size = os.path.getsize(d / name)
    out = cache_cli("cache", "--json", WASM_BPF_CACHE_DIR=str(d), WASM_BPF_CACHE_MAX_SIZE="10M")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"directory": str(d), "entries": 1, "bytes": size,
                                      "max_bytes": 10 << 20, "problem": None}
    out = cache_cli("cache", "--clear", "--cache-dir", str(d))
    assert (out.returncode, out.stdout) == (0, f"removed 1 entries ({size / 2**20:.1f} MiB) from {d}\n")
    assert entries(d) == []
    bad = cache_cli("cache", WASM_BPF_CACHE_MAX_SIZE="lots")
    assert (bad.returncode, bad.stderr) == (2, "error: WASM_BPF_CACHE_MAX_SIZE: 'lots' is not a size "
                                                "(e.g. 4096, 512K, 64M, 1G)\n")


def test_the_cache_command_leaves_a_directory_others_can_write_alone(tmp_path):
    d = tmp_path / "shared"
    d.mkdir()
    (d / "entry").write_bytes(b"x")
    os.chmod(d, 0o777)
    out = cache_cli("cache", "--cache-dir", str(d))
    assert (out.returncode, out.stdout) == (
        1, f"directory: {d}\nnot used: writable by other users\nentries: 0\nsize: 0.0 MiB of at most 256.0 MiB\n")
    out = cache_cli("cache", "--clear", "--cache-dir", str(d))
    assert (out.returncode, out.stderr) == (1, f"error: {d}: not used and not cleared: writable by other users\n")
    assert (d / "entry").exists()
