"""`make image-test`: the container image (`make image`) run with podman the
way deploy/kubernetes/20-daemonset.yaml runs it on a node (the same host
namespaces, mounts, capabilities, ConfigMap and Secret: tests/daemonset_podman.py
reads the DaemonSet), on this machine's kernel:

- the bootstrap example pushed to a loopback registry and signed; the pod's
  guest is its digest: the container pulls it, checks the signature, becomes
  ready on its metrics endpoint, logs an exec of a uniquely named program,
  its metrics show the programs attached; SIGTERM ends it with status 0
  within the grace period and nothing it loaded stays in the kernel;
- with the registry stopped, a new container runs the guest from the node's
  store (the state host path);
- a signature that does not verify: the container exits 1 with a one-line
  reason as its last log line and is never ready.

Every container, registry and port the tests open is closed by them."""
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import ROOT, bpf_snapshot, cli_env, example, fdinfo_ids, skip_or_fail, wasm_bpf_cmd
from daemonset_podman import PodmanSpec, bounding_caps, image_test_extras

pytestmark = [pytest.mark.image, pytest.mark.kernel]

IMAGE = os.environ.get("WASM_BPF_IMAGE", "")
START_TIMEOUT = 120  # a cold container on a loaded 2-core machine: pull, compile, load
HEADER = r"^TIME\s+EVENT\s+COMM\s+PID\s+PPID\s+FILENAME/EXIT CODE$"


@pytest.fixture(scope="module")
def image():
    if not IMAGE:
        skip_or_fail("WASM_BPF_IMAGE is not set: `make image-test` builds the image and runs this")
    if not shutil.which("podman"):
        skip_or_fail("podman is not installed (make image-deps)")
    if subprocess.run(["podman", "image", "exists", IMAGE]).returncode != 0:
        skip_or_fail(f"{IMAGE} is not built (make image)")
    if not shutil.which("runc"):
        skip_or_fail("runc is not installed (make image-deps)")
    return IMAGE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def keypair(tmp_path):
    """An ECDSA P-256 key pair as cosign makes it: (private PEM path, public PEM bytes)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = tmp_path / f"cosign-{uuid.uuid4().hex[:6]}.key"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def cli(*args: str) -> str:
    done = subprocess.run(wasm_bpf_cmd(*args), capture_output=True, text=True, env=cli_env(), cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, f"wasm-bpf {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


class Container:
    """One `podman run` of the DaemonSet's container; always removed on exit."""

    def __init__(self, spec: PodmanSpec, image: str, metrics_port: int):
        self.spec = spec
        self.name = f"wasm-bpf-test-{uuid.uuid4().hex[:8]}"
        self.url = f"http://127.0.0.1:{metrics_port}{spec.probe_path}"
        self.argv = spec.argv(image=image, name=self.name, available_caps=bounding_caps(),
                              extra=image_test_extras())

    def __enter__(self) -> "Container":
        started = subprocess.run(self.argv, capture_output=True, text=True, timeout=120)
        if started.returncode != 0:  # it may exist, created and not started
            self.__exit__()
            pytest.fail(f"{' '.join(self.argv)}\n{started.stderr}")
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["podman", "rm", "--force", "--time", "0", self.name], capture_output=True, timeout=60)
        left = subprocess.run(["podman", "ps", "--all", "--quiet", "--filter", f"name=^{self.name}$"],
                              capture_output=True, text=True, timeout=60).stdout
        assert not left.strip(), f"container {self.name} still exists"

    def inspect(self) -> dict:
        out = subprocess.run(["podman", "inspect", self.name], capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout)[0]["State"]

    def running(self) -> bool:
        return self.inspect()["Running"]

    def logs(self) -> str:
        """stdout and stderr, as `kubectl logs` shows them."""
        return subprocess.run(["podman", "logs", self.name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace", timeout=60).stdout

    def probe(self):
        """The readiness probe as the kubelet makes it: the HTTP status, None if no answer."""
        try:
            with urllib.request.urlopen(self.url, timeout=2) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, ""
        except OSError:
            return None, ""

    def wait_ready(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            status, body = self.probe()
            if status is not None and 200 <= status < 400:
                return body
            assert self.running(), f"the container exited before it was ready:\n{self.logs()}"
            time.sleep(0.25)
        pytest.fail(f"not ready in {START_TIMEOUT} s:\n{self.logs()}")

    def wait_log(self, pattern, timeout: float = 30, poke=None) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if poke:
                poke()
            m = re.search(pattern, self.logs(), re.M)
            if m:
                return m
            time.sleep(0.25)
        pytest.fail(f"no line matching {pattern!r} in {timeout} s:\n{self.logs()[-3000:]}")

    def terminate(self) -> tuple:
        """SIGTERM, as the kubelet on a drain: (exit status, seconds to exit)."""
        t0 = time.monotonic()
        subprocess.run(["podman", "kill", "--signal", "TERM", self.name], check=True, capture_output=True,
                       timeout=60)
        done = subprocess.run(["podman", "wait", self.name], capture_output=True, text=True,
                              timeout=self.spec.grace_period + 30)
        return int(done.stdout.strip()), time.monotonic() - t0


def metric(text: str, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    samples = [s for family in text_string_to_metric_families(text) for s in family.samples
               if s.name in (name, name + "_total")]
    assert samples, f"no {name} in the metrics:\n{text[:2000]}"
    return sum(s.value for s in samples)


def daemonset(tmp_path, guest: str, public_key: bytes, state, metrics_port: int) -> PodmanSpec:
    workdir = tmp_path / f"pod-{uuid.uuid4().hex[:6]}"
    workdir.mkdir()
    return PodmanSpec.from_manifests(
        workdir=str(workdir),
        config={"guest": guest, "metrics-address": f"127.0.0.1:{metrics_port}"},
        secrets={"wasm-bpf-guest-key": {"cosign.pub": public_key}},
        host_paths={"/var/lib/wasm-bpf": str(state)})


@pytest.fixture
def registry(tmp_path):
    from oci_registry import Registry  # the distribution issue's fixture (docker-registry on loopback)

    with Registry(tmp_path) as reg:
        yield reg


def publish(registry, tmp_path) -> tuple:
    """bootstrap.wasm pushed and signed: (REF@DIGEST, public key PEM)."""
    private, public = keypair(tmp_path)
    ref = f"127.0.0.1:{registry.port}/fleet/bootstrap:1"
    pushed = cli("push", example("bootstrap"), ref)
    assert pushed.startswith(ref + "@sha256:"), pushed
    cli("sign", "--key", str(private), pushed)
    return pushed, public


def test_daemonset_runs_a_signed_guest_and_drains_cleanly(image, registry, tmp_path, no_bpf_leaks):
    guest, public = publish(registry, tmp_path)
    state = tmp_path / "node-state"
    prog = tmp_path / f"wbt{uuid.uuid4().hex[:8]}"  # comm keeps 15 characters: all of this one
    shutil.copy("/bin/true", prog)
    run_prog = lambda: subprocess.run([str(prog)], timeout=10)  # noqa: E731

    port = free_port()
    spec = daemonset(tmp_path, guest, public, state, port)
    held = {}
    with Container(spec, image, port) as pod:
        pod.wait_ready()
        pod.wait_log(HEADER, START_TIMEOUT)
        # hostPID: the exec is seen with the node's pids (its parent is this test)
        line = pod.wait_log(rf"^\d\d:\d\d:\d\d EXEC  {prog.name}\s+\d+\s+{os.getpid()}\s+{re.escape(str(prog))}$",
                            poke=run_prog)
        assert line
        body = pod.probe()[1]
        assert metric(body, "wasm_bpf_programs_attached") == 2
        assert metric(body, "wasm_bpf_buffer_delivered_samples") >= 1
        # the ConfigMap's metrics.toml: the guest's -d filter, from its .rodata
        assert metric(body, "bootstrap_min_duration_seconds") == 0
        assert metric(body, "wasm_bpf_metrics_scrape_errors") == 0
        held = fdinfo_ids(pod.inspect()["Pid"])
        assert held["prog"] and held["link"] and held["map"], held

        status, seconds = pod.terminate()
        assert status == 0, pod.logs()
        assert seconds < spec.grace_period
        assert "Traceback" not in pod.logs()
    assert not listening(port)
    # Everything the runner held is gone from the kernel (freed asynchronously).
    deadline = time.monotonic() + 5
    while True:
        now = bpf_snapshot()
        left = {kind: held[kind] & now[kind] for kind in held if held[kind] & now[kind]}
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left, f"still in the kernel after SIGTERM: {left}"

    # The registry is down: a new pod on this node runs the guest from its store.
    registry.stop()
    port = free_port()
    with Container(daemonset(tmp_path, guest, public, state, port), image, port) as pod:
        pod.wait_ready()
        pod.wait_log(rf"EXEC  {prog.name}\s", poke=run_prog)
        status, _ = pod.terminate()
        assert status == 0, pod.logs()
    assert not listening(port)


def test_a_bad_signature_never_gets_ready(image, registry, tmp_path, no_bpf_leaks):
    guest, _ = publish(registry, tmp_path)
    _, other_key = keypair(tmp_path)
    port = free_port()
    with Container(daemonset(tmp_path, guest, other_key, tmp_path / "node-state", port), image, port) as pod:
        deadline = time.monotonic() + START_TIMEOUT
        while pod.running() and time.monotonic() < deadline:
            assert pod.probe()[0] is None, "ready with a signature that does not verify"
            time.sleep(0.25)
        state = pod.inspect()
        assert not state["Running"], pod.logs()
        assert state["ExitCode"] == 1
        lines = pod.logs().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "signature" in lines[0], lines
    assert not listening(port)
