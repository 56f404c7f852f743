"""Shared fixtures. Kernel tests run against the real kernel as root; under
CI=true a kernel test that cannot run is a failure, never a skip."""
import json
import os
import queue
import re
import shutil
import subprocess
import time

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def skip_or_fail(reason: str):
    """Skip locally; fail under CI=true, where every test must really run."""
    if IN_CI:
        pytest.fail(f"cannot run under CI=true: {reason}")
    pytest.skip(reason)


def pytest_configure(config):
    """The suite's compiled modules go to a cache of its own, removed at the
    end, never to the user's (~/.cache/wasm-bpf); CLI subprocesses inherit it."""
    import tempfile

    config._wasm_bpf_cache = tempfile.mkdtemp(prefix="wasm-bpf-test-cache-")
    os.environ["WASM_BPF_CACHE_DIR"] = config._wasm_bpf_cache
    os.environ.pop("WASM_BPF_CACHE_MAX_SIZE", None)


def pytest_unconfigure(config):
    cache = getattr(config, "_wasm_bpf_cache", None)
    if cache:
        shutil.rmtree(cache, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    import sys

    keep, wasmer_only = [], []
    for item in items:
        if item.get_closest_marker("kernel"):
            item.fixturenames.append("_kernel_ready")
        # The wasmer adapter's own tests need CPython <= 3.10 (no wheels later):
        # `make test` runs them in the 3.10 pass, so the 3.11+ pass leaves them out.
        if (sys.version_info >= (3, 11) and item.path.name == "test_engine_wasmer.py"
                and "engine" in getattr(item, "fixturenames", ())):
            wasmer_only.append(item)
        elif item.get_closest_marker("wasmer_only") and ENGINE != "wasmer":
            wasmer_only.append(item)  # what only wasmer has: the wasmer pass runs it
        else:
            keep.append(item)
    if wasmer_only:
        config.hook.pytest_deselected(items=wasmer_only)
        items[:] = keep


@pytest.fixture
def _kernel_ready():
    if os.geteuid() != 0:
        skip_or_fail("kernel tests need root")
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        skip_or_fail("kernel has no BTF")
    if not shutil.which("bpftool"):
        skip_or_fail("bpftool is not installed")
    if not os.path.ismount("/sys/kernel/tracing"):
        # Tracepoint attaches need it (libbpf reads event ids there): a mount
        # that fails is an error of the test setup, not something to skip.
        mount = subprocess.run(["mount", "-t", "tracefs", "tracefs", "/sys/kernel/tracing"],
                               capture_output=True, text=True)
        if mount.returncode != 0 and not os.path.ismount("/sys/kernel/tracing"):
            pytest.fail(f"cannot mount tracefs on /sys/kernel/tracing: {mount.stderr.strip()}")


# The engine guests run on; `make test` runs the `engine`-marked tests once per engine.
ENGINE = os.environ.get("WASM_BPF_ENGINE", "wasmtime")
GUESTS = os.path.join(ROOT, "tests", "guests", "build")
EXAMPLES = os.path.join(ROOT, "examples")


def guest(name: str) -> str:
    """Path of a built test guest (tests/guests/build/NAME.wasm); built by `make build`."""
    path = os.path.join(GUESTS, name if name.endswith(".wasm") else name + ".wasm")
    if not os.path.exists(path):
        skip_or_fail(f"{path} is not built: run `make build`")
    return path


def example(name: str) -> str:
    path = os.path.join(EXAMPLES, name, name + ".wasm")
    if not os.path.exists(path):
        skip_or_fail(f"{path} is not built: run `make build`")
    return path


def cli_runner():
    """click's CliRunner with stdout and stderr apart (click < 8.2 mixes them
    unless told not to; 8.2 removed the option and always keeps them apart)."""
    from click.testing import CliRunner

    try:
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()


def wasm_bpf_cmd(*args: str) -> list:
    """argv running the CLI with this interpreter and the engine under test."""
    import sys

    return [sys.executable, "-m", "wasm_bpf_cli", *args]


def cli_env(**extra) -> dict:
    env = dict(os.environ, WASM_BPF_ENGINE=ENGINE, NO_COLOR="1", COLUMNS="100")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_cli(*args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    """Run `wasm-bpf ARGS...` to completion (stdout/stderr captured as text)."""
    return subprocess.run(wasm_bpf_cmd(*args), capture_output=True, text=True, timeout=timeout,
                          env=cli_env(), cwd=ROOT, **kwargs)


def _bpftool_ids(kind: str) -> set:
    out = subprocess.run(["bpftool", "-j", kind, "show"], capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():
        return set()
    return {entry["id"] for entry in json.loads(out.stdout)}


def bpf_snapshot() -> dict:
    return {kind: _bpftool_ids(kind) for kind in ("prog", "link", "map")}


def fdinfo_ids(pid) -> dict:
    """BPF ids a process holds through its fds (from /proc/PID/fdinfo)."""
    held = {"prog": set(), "map": set(), "link": set()}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return held
    for fd in fds:
        try:
            if not os.readlink(f"/proc/{pid}/fd/{fd}").startswith("anon_inode:bpf"):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    kind = {"prog_id": "prog", "map_id": "map", "link_id": "link"}.get(key.strip())
                    if kind:
                        held[kind].add(int(value))
        except (OSError, ValueError):
            continue
    return held


def descendants(root: int) -> list:
    """`root` and every live process below it."""
    parents = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                parents[int(pid)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    tree = [root]
    for pid in tree:
        tree.extend(child for child, ppid in parents.items() if ppid == pid)
    return tree


def _foreign_holders() -> dict:
    """{kind: ids} of BPF objects held by processes outside this test process's
    tree (other runs share the kernel): by their fds, their links' programs,
    and those programs' maps."""
    mine = set(descendants(os.getpid()))
    held = {"prog": set(), "map": set(), "link": set()}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) not in mine:
            for kind, ids in fdinfo_ids(pid).items():
                held[kind] |= ids
    links = subprocess.run(["bpftool", "-j", "link", "show"], capture_output=True, text=True).stdout
    for link in json.loads(links or "[]"):
        # an entry without "id" (seen under load, a KeyError here) names no link
        if link.get("id") in held["link"] and "prog_id" in link:
            held["prog"].add(link["prog_id"])
    for prog_id in list(held["prog"]):
        out = subprocess.run(["bpftool", "-j", "prog", "show", "id", str(prog_id)],
                             capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            held["map"] |= set(json.loads(out.stdout).get("map_ids", []))
    return held


def wait_no_new_bpf(before: dict, deadline_s: float = 5.0) -> dict:
    """Poll until no prog/link/map exists that was not there `before` (the kernel
    frees them asynchronously after the last fd closes). Returns what is left.
    Objects held by processes outside this test's process tree belong to
    someone else running on the machine and are not counted."""
    end = time.monotonic() + deadline_s
    while True:
        now = bpf_snapshot()
        left = {k: now[k] - before[k] for k in now if now[k] - before[k]}
        if left:
            foreign = _foreign_holders()
            left = {k: sorted(ids - foreign[k]) for k, ids in left.items() if ids - foreign[k]}
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.1)


@pytest.fixture
def no_bpf_leaks():
    """Asserts after the test that every BPF program, link and map the test
    created is gone from the kernel."""
    before = bpf_snapshot()
    yield before
    left = wait_no_new_bpf(before)
    assert not left, f"BPF objects left in the kernel: {left}"


# --- veth pair with its peer in a network namespace (net tests) ---------------
import contextlib  # noqa: E402 - appended section
import uuid  # noqa: E402


@contextlib.contextmanager
def veth_pair(name: str, net: str):
    """veth pair: `dev` (NET.1/30) here, its peer `peer` (NET.2/30) in a
    network namespace of its own (loopback up). IPv6 off on both ends (no
    router solicitations, MLD), so the only packets are the test's. Removed
    even when the test fails. `name` (2 letters) keeps the interface and
    namespace names of one test module apart from another's, `net` (three
    octets, e.g. "10.213.7") its addresses."""
    def sh(*args, check=True):
        return subprocess.run(args, capture_output=True, text=True, check=check)

    tag = uuid.uuid4().hex[:6]
    ns, a, b = f"wbpf-{name}-{tag}", f"v{name}a{tag}", f"v{name}b{tag}"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        sh("ip", "link", "set", b, "netns", ns)
        sh("sysctl", "-qw", f"net.ipv6.conf.{a}.disable_ipv6=1", check=False)
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{b}.disable_ipv6=1", check=False)
        sh("ip", "addr", "add", f"{net}.1/30", "dev", a)
        sh("ip", "link", "set", a, "up")
        sh("ip", "-n", ns, "addr", "add", f"{net}.2/30", "dev", b)
        sh("ip", "-n", ns, "link", "set", b, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        yield {"ns": ns, "dev": a, "peer": b, "peer_addr": f"{net}.2"}
    finally:
        sh("ip", "link", "del", a, check=False)
        sh("ip", "netns", "del", ns, check=False)


def finish_process(proc, timeout: float = 30):
    """(stdout, stderr) of `proc` once it exits, like communicate(), for a
    process whose output was already read with readline(): communicate()
    reads the raw pipes and would miss what the text wrapper had buffered.
    Raises subprocess.TimeoutExpired if it does not exit in time."""
    import threading

    got = {}

    def drain(name):
        stream = getattr(proc, name)
        got[name] = stream.read() if stream is not None else None

    readers = [threading.Thread(target=drain, args=(n,), daemon=True) for n in ("stdout", "stderr")]
    for r in readers:
        r.start()
    proc.wait(timeout=timeout)
    for r in readers:
        r.join(10)
    return got.get("stdout"), got.get("stderr")


class Lines:
    """A stdout callback that splits the guest's bytes into lines."""

    def __init__(self):
        self._buf = b""
        self.q = queue.Queue()
        self.all = []

    def __call__(self, data: bytes) -> None:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            text = line.decode()
            self.all.append(text)
            self.q.put(text)

    def wait_for(self, pattern: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.q.get(timeout=0.1)
            except queue.Empty:
                continue
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r} in {self.all!r}")


class Caller:
    """A process that makes ring-buffer records when told (the test guests
    record syscalls of the pid they are given): `calls(n, gap)` makes n
    getppid() calls, `calls("abba", gap)` one call per letter, `a` getppid()
    and `b` getpgid(); GAP seconds apart."""

    def __init__(self):
        import sys

        self.p = subprocess.Popen(
            [sys.executable, "-c",
             "import os, sys, time\n"
             "print('ready', flush=True)\n"
             "for line in sys.stdin:\n"
             "    pattern, gap = line.split()\n"
             "    for c in pattern:\n"
             "        os.getppid() if c == 'a' else os.getpgid(0)\n"
             "        time.sleep(float(gap))\n"
             "    print('done', flush=True)\n"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.p.stdout.readline().strip() == "ready"

    def calls(self, what, gap: float) -> None:
        pattern = "a" * what if isinstance(what, int) else what
        self.p.stdin.write(f"{pattern} {gap}\n")
        self.p.stdin.flush()
        assert self.p.stdout.readline().strip() == "done"

    def close(self) -> None:
        self.p.kill()
        self.p.wait()
