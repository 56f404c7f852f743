"""deploy/kubernetes/ checked offline: every manifest against the Kubernetes
API schemas (kubernetes-validate, strict: unknown fields are errors), the
ports and names that must agree, and the DaemonSet's container as
`make image-test` runs it (tests/daemonset_podman.py)."""
import os
import shutil

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")

from conftest import example, run_cli  # noqa: E402
from daemonset_podman import MANIFESTS, PodmanSpec, SpecError, expand, load_manifests  # noqa: E402

# The oldest Kubernetes still in wide use with every field used here, and the newest the validator knows.
VERSIONS = ("1.25", kubernetes_validate.latest_version())


def manifest_files():
    return sorted(os.path.join(MANIFESTS, n) for n in os.listdir(MANIFESTS) if n.endswith(".yaml"))


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_matches_the_api_schema(version):
    files = manifest_files()
    assert [os.path.basename(f) for f in files] == [
        "00-namespace.yaml", "10-configmap.yaml", "20-daemonset.yaml"]
    for path in files:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_rejects_a_misspelled_field():
    doc = load_manifests()["DaemonSet"]
    doc["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilites"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, VERSIONS[-1], strict=True)


def test_ports_agree():
    docs = load_manifests()
    pod = docs["DaemonSet"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
    assert container["readinessProbe"]["httpGet"]["port"] == "metrics"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert docs["ConfigMap"]["data"]["metrics-address"].rsplit(":", 1)[1] == str(port)


def test_names_agree():
    docs = load_manifests()
    namespace = docs["Namespace"]["metadata"]["name"]
    assert docs["ConfigMap"]["metadata"]["namespace"] == namespace
    ds = docs["DaemonSet"]
    assert ds["metadata"]["namespace"] == namespace
    assert ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    pod = ds["spec"]["template"]["spec"]
    container = pod["containers"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert sorted(m["name"] for m in container["volumeMounts"]) == sorted(volumes)
    configmaps = {v["configMap"]["name"] for v in volumes.values() if "configMap" in v}
    configmaps |= {e["valueFrom"]["configMapKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    assert configmaps == {docs["ConfigMap"]["metadata"]["name"]}
    keys = {i["key"] for v in volumes.values() if "configMap" in v for i in v["configMap"]["items"]}
    keys |= {e["valueFrom"]["configMapKeyRef"]["key"] for e in container["env"] if "valueFrom" in e}
    assert keys == set(docs["ConfigMap"]["data"])


def test_container_runs_as_the_documented_agent(tmp_path):
    """What a node runs, as podman options: the host's pid and network
    namespaces, the four capabilities and no others, no privileged mode,
    the host's BPF file systems, the state directory, the ConfigMap and
    the Secret, and the guest and metrics address from the ConfigMap."""
    spec = PodmanSpec.from_manifests(workdir=str(tmp_path),
                                     config={"guest": "127.0.0.1:5000/g/bootstrap:1"},
                                     secrets={"wasm-bpf-guest-key": {"cosign.pub": b"PEM"}},
                                     host_paths={"/var/lib/wasm-bpf": str(tmp_path / "state")})
    argv = spec.argv(image="img", name="n")
    assert argv[:2] == ["podman", "run"]
    assert {"--pid=host", "--network=host", "--read-only", "--cap-drop=all",
            "--security-opt=no-new-privileges", "--security-opt=seccomp=unconfined",
            "--user=0"} <= set(argv)
    assert "--privileged" not in argv
    assert sorted(a for a in argv if a.startswith("--cap-add")) == [
        "--cap-add=CAP_BPF", "--cap-add=CAP_NET_ADMIN", "--cap-add=CAP_PERFMON", "--cap-add=CAP_SYS_RESOURCE"]
    mounts = {a.split("=", 1)[1] for a in argv if a.startswith("--volume=")}
    for host_path in ("/sys/fs/bpf:/sys/fs/bpf:rw", "/sys/kernel/tracing:/sys/kernel/tracing:ro",
                      f"{tmp_path}/state:/var/lib/wasm-bpf:rw"):
        assert host_path in mounts
    assert (tmp_path / "volumes" / "guest-key" / "cosign.pub").read_bytes() == b"PEM"
    assert "allow = [\"tracing\"]" in (tmp_path / "volumes" / "config" / "policy.toml").read_text()
    image_at = argv.index("img")
    assert argv[image_at + 1:] == ["run", "--quiet", "--metrics", ":9435", "--metrics-config",
                                   "/etc/wasm-bpf/config/metrics.toml", "--policy", "/etc/wasm-bpf/config/policy.toml",
                                   "--verify-key", "/etc/wasm-bpf/key/cosign.pub",
                                   "127.0.0.1:5000/g/bootstrap:1"]
    assert (spec.probe_port, spec.probe_path) == (9435, "/metrics")
    # The registry credentials are optional: without the Secret, no mount.
    assert not any(":/etc/wasm-bpf/registry:" in a for a in argv)


def test_a_field_the_translation_does_not_know_fails(tmp_path):
    """The test comparing the two: a DaemonSet gaining a field that changes
    the container (here a sysctl-like hostIPC) stops `make image-test`
    until tests/daemonset_podman.py runs it too."""
    copy = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy)
    path = copy / "20-daemonset.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["spec"]["template"]["spec"]["hostIPC"] = True
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match="hostIPC"):
        PodmanSpec.from_manifests(workdir=str(tmp_path), directory=str(copy),
                                  secrets={"wasm-bpf-guest-key": {"cosign.pub": b""}})


def test_args_expand_as_kubernetes_does():
    env = {"A": "x", "B": "y"}
    assert expand("$(A)", env) == "x"
    assert expand("$(A)-$(B)", env) == "x-y"
    assert expand("$$(A)", env) == "$(A)"  # escaped
    assert expand("$(C)", env) == "$(C)"  # undefined: kept as written


def test_the_configmaps_files_fit_the_guest_it_names(tmp_path):
    """The ConfigMap's policy allows bootstrap (the guest it names) and its
    metrics config fits bootstrap's maps: a pod would start, not exit at once."""
    data = load_manifests()["ConfigMap"]["data"]
    assert "/bootstrap" in data["guest"]
    for name in ("policy.toml", "metrics.toml"):
        (tmp_path / name).write_text(data[name])
    bootstrap = example("bootstrap")
    allowed = run_cli("inspect", "--policy", str(tmp_path / "policy.toml"), bootstrap)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    fits = run_cli("metrics", "check", bootstrap, "--config", str(tmp_path / "metrics.toml"))
    assert (fits.returncode, fits.stderr) == (0, ""), fits.stderr
    assert "bootstrap_min_duration_seconds" in fits.stdout
    # and the policy refuses what it says it refuses
    denied = run_cli("inspect", "--policy", str(tmp_path / "policy.toml"), example("sockfilter"))
    assert denied.returncode == 3, denied.stdout + denied.stderr


def test_the_cli_takes_the_daemonsets_args(tmp_path):
    """The container's args, as the kubelet expands them, parse as
    `wasm-bpf run` options: a renamed option breaks this test, not a fleet."""
    from wasm_bpf_cli.cli.run_cmd import run

    spec = PodmanSpec.from_manifests(workdir=str(tmp_path), secrets={"wasm-bpf-guest-key": {"cosign.pub": b""}})
    argv = spec.argv(image="img", name="n")
    args = argv[argv.index("img") + 1:]
    assert args[0] == "run"
    params = run.make_context("wasm-bpf run", args[1:]).params
    data = load_manifests()["ConfigMap"]["data"]
    assert params["module"] == data["guest"] and params["args"] == ()
    assert params["metrics"] == data["metrics-address"]
    assert params["verify_keys"] == ("/etc/wasm-bpf/key/cosign.pub",)
    assert params["policy_file"] == "/etc/wasm-bpf/config/policy.toml"
    assert params["metrics_config"] == "/etc/wasm-bpf/config/metrics.toml"
    assert params["quiet"]
