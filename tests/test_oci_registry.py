"""Pull, push, sign, login against a real registry (Debian's docker-registry
on a loopback port, storage in a temp dir; tests/oci_registry.py), as a
user sees it through the CLI. Every failure is one line with its documented
exit status, no traceback, and leaves the local store as it was. HOME,
DOCKER_CONFIG and XDG_CACHE_HOME point into the test's temp dir."""
import base64
import json
import os
import subprocess
import sys

import pytest

from conftest import EXAMPLES, ROOT, cli_env, wasm_bpf_cmd
from oci_registry import Registry, free_port

FIXTURES = os.path.join(ROOT, "tests", "data", "cosign")
WASM = ""  # tests/data/oci/tiny.wat assembled, by the session fixture below


@pytest.fixture(scope="session", autouse=True)
def tiny_wasm(tmp_path_factory):
    import wasmtime

    global WASM
    with open(os.path.join(ROOT, "tests", "data", "oci", "tiny.wat")) as f:
        wasm = wasmtime.wat2wasm(f.read())
    path = tmp_path_factory.mktemp("oci") / "tiny.wasm"
    path.write_bytes(wasm)
    WASM = str(path)
    return WASM


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    """Credentials and the store in the test's own directories, never the user's."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DOCKER_CONFIG", str(home / "docker"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.delenv("WASM_BPF_MAX_IMAGE_SIZE", raising=False)
    return home


@pytest.fixture
def registry(tmp_path):
    with Registry(tmp_path) as reg:
        yield reg


@pytest.fixture
def keys(tmp_path):
    """Two ECDSA P-256 key pairs made with openssl: (key, pub), (other_key, other_pub)."""
    out = {}
    for name in ("key", "other"):
        key, pub = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub"
        subprocess.run(f"openssl ecparam -genkey -name prime256v1 -noout | openssl pkcs8 -topk8 -nocrypt "
                       f"-out {key} && openssl ec -in {key} -pubout -out {pub}", shell=True, check=True,
                       capture_output=True)
        out[name], out[name + "_pub"] = str(key), str(pub)
    return out


def cli(*args, input=None, env=None, timeout=60):
    return subprocess.run(wasm_bpf_cmd(*args), capture_output=True, text=True, timeout=timeout,
                          env=cli_env(**(env or {})), cwd=ROOT, input=input)


def one_error(res, status: int) -> str:
    assert res.returncode == status, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith("error: ")
    return lines[0][len("error: "):]


def store_root(home) -> str:
    return os.path.join(str(home), "cache", "wasm-bpf", "oci")


def store_files(home) -> list:
    """Every file in the local store but its lock."""
    root = store_root(home)
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root)
                  for f in files if f != "lock")


def read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


# ------------------------------------------------------------ round trip
def test_push_then_pull_is_byte_identical_and_annotated(registry, private_home):
    ref = f"{registry.host}/tools/bootstrap:1"
    bootstrap = os.path.join(EXAMPLES, "bootstrap", "bootstrap.wasm")
    res = cli("push", bootstrap, ref, "--description", "exec/exit tracer", "--version", "1.0",
              "--source", "https://example.invalid/wasm-bpf")
    assert res.returncode == 0, res.stderr
    ref_at, digest = res.stdout.strip().split("@")
    assert ref_at == ref and digest.startswith("sha256:") and res.stderr == ""

    manifest = json.loads(read(registry.blob_file(digest)))
    assert manifest["config"]["mediaType"] == "application/vnd.wasm.config.v0+json"
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/wasm" and layer["size"] == os.path.getsize(bootstrap)
    config = json.loads(read(registry.blob_file(manifest["config"]["digest"])))
    assert (config["architecture"], config["os"], config["layerDigests"]) == ("wasm", "wasip1", [layer["digest"]])
    notes = manifest["annotations"]
    assert notes["org.opencontainers.image.title"] == "bootstrap.wasm"
    assert notes["org.opencontainers.image.description"] == "exec/exit tracer"
    assert notes["org.opencontainers.image.version"] == "1.0"
    assert notes["org.opencontainers.image.source"] == "https://example.invalid/wasm-bpf"
    programs = json.loads(notes["dev.wasm-bpf.programs"])
    assert {"name": "handle_exec", "section": "tp/sched/sched_process_exec", "type": "tracepoint",
            "attach": None} in [dict(p, attach=None) for p in programs]
    assert {"name": "rb", "type": "ringbuf"} in json.loads(notes["dev.wasm-bpf.maps"])
    assert "wasm_bpf.wasm_load_bpf_object" in json.loads(notes["dev.wasm-bpf.imports"])

    res = cli("pull", ref)
    assert res.returncode == 0 and res.stdout.strip() == f"{ref}@{digest}", res.stderr
    store = store_root(private_home)
    assert read(os.path.join(store, "blobs", "sha256", layer["digest"].split(":")[1])) == read(bootstrap)
    listed = json.loads(cli("images", "--json").stdout)["images"]
    assert [(i["reference"], i["digest"], i["size"], i["signed"]) for i in listed] == \
        [(ref, digest, os.path.getsize(bootstrap), False)]
    table = cli("images").stdout.splitlines()
    assert table[0].split() == ["REFERENCE", "DIGEST", "SIZE", "PULLED", "SIGNED"]
    assert table[1].split() == [ref, digest[:19], str(os.path.getsize(bootstrap)), "just", "now", "no"]

    res = cli("rmi", ref)
    assert (res.returncode, res.stdout.strip()) == (0, f"removed {ref}")
    assert store_files(private_home) == []
    assert one_error(cli("rmi", ref), 1) == f"{ref}: not in the local image store"


def test_pull_by_digest_and_inspect_a_reference(registry):
    pushed = cli("push", WASM, f"{registry.host}/t/tiny:v1").stdout.strip()
    digest = pushed.split("@")[1]
    by_digest = f"{registry.host}/t/tiny@{digest}"
    res = cli("pull", by_digest)
    assert (res.returncode, res.stdout.strip()) == (0, f"{registry.host}/t/tiny@{digest}"), res.stderr
    res = cli("inspect", "--json", by_digest)
    report = json.loads(res.stdout)
    assert (report["path"], report["kind"], report["size"]) == (by_digest, "wasm", os.path.getsize(WASM))


def test_second_run_needs_no_registry(registry, private_home):
    ref = f"{registry.host}/t/tiny:v1"
    assert cli("push", WASM, ref).returncode == 0
    assert cli("pull", ref).returncode == 0
    registry.stop()
    res = cli("inspect", "--json", ref)  # --pull missing: from the store
    assert res.returncode == 0 and json.loads(res.stdout)["path"] == ref, res.stderr
    res = cli("inspect", "--pull", "always", ref)
    assert one_error(res, 1) == f"cannot reach registry {registry.host}: connection refused"


def test_other_tools_layouts_are_pulled(registry):
    """What wasm-to-oci and ecli push (application/vnd.wasm.content.layer.v1+wasm,
    config application/vnd.wasm.config.v1+json), pushed here with the oras
    client library itself."""
    import oras.provider

    ref = f"{registry.host}/t/ecli-style:1"
    client = oras.provider.Registry(hostname=registry.host, insecure=True)
    wasm = os.path.abspath(WASM)
    cwd = os.getcwd()
    os.chdir(os.path.dirname(wasm))
    try:
        client.push(target=ref, files=[f"{os.path.basename(wasm)}:application/vnd.wasm.content.layer.v1+wasm"],
                    manifest_config="/dev/null:application/vnd.wasm.config.v1+json", disable_path_validation=True)
    finally:
        os.chdir(cwd)
    res = cli("pull", ref)
    assert res.returncode == 0, res.stderr
    res = cli("inspect", "--json", "--pull", "never", ref)
    assert json.loads(res.stdout)["size"] == os.path.getsize(WASM)


# ------------------------------------------------------------ signatures
def test_sign_and_verify(registry, keys, private_home, tmp_path):
    ref = f"{registry.host}/tools/tiny:1"
    digest = cli("push", WASM, ref).stdout.strip().split("@")[1]
    res = cli("sign", "--key", keys["key"], ref)
    assert res.returncode == 0, res.stderr
    sig_ref = f"{registry.host}/tools/tiny:sha256-{digest.split(':')[1]}.sig"
    assert res.stdout.strip() == sig_ref

    res = cli("pull", "--verify-key", keys["key_pub"], ref)
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip() == f"signature verified with {keys['key_pub']}"
    assert json.loads(cli("images", "--json").stdout)["images"][0]["signed"] is True

    # verification works offline, from the signature stored with the image
    policy = tmp_path / "policy.toml"
    policy.write_text(f'trusted_keys = ["{os.path.basename(keys["key_pub"])}"]\nrequire_signature = true\n'
                      f'allowed_images = ["{registry.host}/tools/*"]\n')
    registry.stop()
    res = cli("inspect", "--policy", str(policy), "--pull", "never", ref)
    assert res.returncode == 0, res.stderr
    res = cli("pull", "--missing", "--verify-key", keys["other_pub"], ref)
    assert one_error(res, 1) == f"{ref}: no signature verifies with the trusted key (other.pub)"


def _count_files(home):
    return len(store_files(home))


@pytest.mark.parametrize("case", ["other_key", "other_digest", "unsigned_required"])
def test_bad_signatures_are_refused_before_anything_is_stored(case, registry, keys, private_home, tmp_path):
    ref = f"{registry.host}/tools/tiny:1"
    assert cli("push", WASM, ref).returncode == 0
    if case == "other_key":
        assert cli("sign", "--key", keys["other"], ref).returncode == 0
        res = cli("pull", "--verify-key", keys["key_pub"], ref)
        expected = f"{ref}: no signature verifies with the trusted key (key.pub)"
    elif case == "other_digest":
        # A valid signature by the trusted key, but over another image, moved
        # under this image's .sig tag (a replay).
        other = f"{registry.host}/tools/tiny:2"
        other_digest = cli("push", os.path.join(EXAMPLES, "bootstrap", "bootstrap.wasm"), other).stdout.split("@")[1].strip()
        assert cli("sign", "--key", keys["key"], other).returncode == 0
        digest = cli("pull", ref).stdout.strip().split("@")[1]
        assert cli("rmi", ref).returncode == 0
        from wasm_bpf_cli.oci.client import RegistryClient

        client = RegistryClient(registry.host)
        sig, media_type, _ = client.get_manifest("tools/tiny", f"sha256-{other_digest.split(':')[1]}.sig", "sig")
        client.put_manifest("tools/tiny", f"sha256-{digest.split(':')[1]}.sig", sig, media_type, "sig")
        res = cli("pull", "--verify-key", keys["key_pub"], ref)
        expected = (f"{ref}: the signature is over another image (the signed payload names a "
                    "different manifest digest)")
    else:
        policy = tmp_path / "policy.toml"
        policy.write_text(f'trusted_keys = ["{keys["key_pub"]}"]\nrequire_signature = true\n')
        res = cli("pull", "--policy", str(policy), ref)
        expected = f"{ref}: not signed"
    assert one_error(res, 1) == expected
    assert store_files(private_home) == []


# ------------------------------------------------------------ bad input
def _tamper(path: str, old: bytes = b"", new: bytes = b"") -> None:
    """Change the stored blob, same size (the registry serves it as is): `old`
    replaced by `new`, or else one byte near the end flipped."""
    data = bytearray(read(path))
    if old:
        assert old in data and len(old) == len(new)
        data = data.replace(old, new, 1)
    else:
        data[-2] ^= 0x01
    with open(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("case", ["unreachable", "unknown_tag", "manifest_digest", "layer_digest",
                                  "not_wasm_artifact", "not_wasm_bytes", "oversized", "invalid_name",
                                  "never_unknown"])
def test_bad_input_one_line_nothing_stored(case, registry, private_home):
    ref = f"{registry.host}/tools/tiny:1"
    pushed = cli("push", WASM, ref).stdout.strip()
    digest = pushed.split("@")[1]
    env = {}
    if case == "unreachable":
        ref = f"127.0.0.1:{free_port()}/tools/tiny:1"
        expected, status = f"cannot reach registry {ref.split('/')[0]}: connection refused", 1
    elif case == "unknown_tag":
        ref = f"{registry.host}/tools/tiny:2"
        expected, status = f"{ref}: not found in registry {registry.host} (unknown tag or repository)", 1
    elif case == "manifest_digest":  # still valid JSON (the registry parses what it serves)
        _tamper(registry.blob_file(digest), b'"tiny.wasm"', b'"tinY.wasm"')
        expected, status = None, 1
    elif case == "layer_digest":
        layer = json.loads(read(registry.blob_file(digest)))["layers"][0]["digest"]
        _tamper(registry.blob_file(layer))
        expected, status = None, 1
    elif case == "not_wasm_artifact":
        import oras.provider

        ref = f"{registry.host}/tools/notes:1"
        client = oras.provider.Registry(hostname=registry.host, insecure=True)
        cwd = os.getcwd()
        os.chdir(os.path.join(ROOT, "tests", "data", "cosign"))
        try:
            client.push(target=ref, files=["README.md:text/markdown"], disable_path_validation=True)
        finally:
            os.chdir(cwd)
        expected, status = f"{ref} is not a wasm artifact (its layers: text/markdown)", 1
    elif case == "not_wasm_bytes":
        ref = f"{registry.host}/tools/fake:1"
        from wasm_bpf_cli.oci.artifact import build
        from wasm_bpf_cli.oci.client import RegistryClient
        from wasm_bpf_cli.oci.store import digest_of

        manifest, blobs = build(b"#!/bin/sh\necho not wasm\n", {}, "fake.wasm")
        client = RegistryClient(registry.host)
        for d, data in blobs.items():
            client.put_blob("tools/fake", d, data, "blob")
        client.put_manifest("tools/fake", "1", manifest, "application/vnd.oci.image.manifest.v1+json", "m")
        expected, status = f"{ref}: the layer is not a wasm module (bad magic)", 1
    elif case == "oversized":
        env = {"WASM_BPF_MAX_IMAGE_SIZE": "16"}
        size = os.path.getsize(WASM)
        expected, status = (f"{ref}: the wasm layer is {size} bytes, over the limit of 16 "
                            "(WASM_BPF_MAX_IMAGE_SIZE)"), 1
    elif case == "invalid_name":
        ref = f"{registry.host}/Tools/tiny:1"
        expected, status = (f"'{ref}': 'Tools/tiny' is not a valid repository name (lowercase letters, "
                            "digits and . _ - separators)"), 2
    else:
        ref = f"{registry.host}/tools/unknown:9"
        expected, status = f"{ref}: not in the local image store (--pull never)", 1
    args = ("run", "--pull", "never", ref) if case == "never_unknown" else ("pull", ref)
    message = one_error(cli(*args, env=env), status)
    if case == "manifest_digest":
        assert message.startswith(f"{ref}: manifest digest mismatch: the registry announced {digest}, "
                                  "the bytes hash to sha256:"), message
    elif case == "layer_digest":
        assert message.startswith(f"{ref}: the wasm layer: layer digest mismatch: the registry served bytes "
                                  "that hash to sha256:"), message
    else:
        assert message == expected
    assert store_files(private_home) == []


# ------------------------------------------------------------ credentials
@pytest.fixture
def auth_registry(tmp_path):
    with Registry(tmp_path, user="alice", password="s3cret pass") as reg:
        yield reg


def test_login_pull_push_logout(auth_registry, private_home):
    host = auth_registry.host
    ref = f"{host}/tools/tiny:1"
    assert one_error(cli("push", WASM, ref), 1) == (f"registry {host} asks for credentials: "
                                                    f"run `wasm-bpf login {host}`")
    res = cli("login", host, "-u", "alice", "--password-stdin", input="wrong\n")
    assert one_error(res, 1) == (f"registry {host} refused the credentials for user 'alice' (HTTP 401): "
                                 f"run `wasm-bpf login {host}`")
    assert not os.path.exists(private_home / "docker" / "config.json")

    res = cli("login", host, "-u", "alice", "--password-stdin", input="s3cret pass\n")
    assert res.returncode == 0, res.stderr
    config_path = private_home / "docker" / "config.json"
    assert res.stderr.strip() == f"logged in to {host} as alice (credentials in {config_path})"
    config = json.loads(read(config_path))
    assert config["auths"][host]["auth"] == "YWxpY2U6czNjcmV0IHBhc3M="  # base64("alice:s3cret pass")
    assert oct(os.stat(config_path).st_mode & 0o777) == "0o600"

    assert cli("push", WASM, ref).returncode == 0
    assert cli("pull", ref).returncode == 0

    res = cli("logout", host)
    assert (res.returncode, res.stderr.strip()) == (0, f"logged out of {host}")
    assert json.loads(read(config_path))["auths"] == {}
    assert one_error(cli("pull", ref), 1) == f"registry {host} asks for credentials: run `wasm-bpf login {host}`"


def test_stored_wrong_credentials_are_named(auth_registry, private_home):
    host = auth_registry.host
    os.makedirs(private_home / "docker")
    (private_home / "docker" / "config.json").write_text(json.dumps(
        {"auths": {host: {"auth": "YWxpY2U6bm9wZQ=="}}, "credsStore": ""}))  # alice:nope
    res = cli("pull", f"{host}/tools/tiny:1")
    assert one_error(res, 1) == (f"registry {host} refused the credentials for user 'alice' (HTTP 401): "
                                 f"run `wasm-bpf login {host}`")
    assert store_files(private_home) == []


def test_login_usage_errors():
    assert one_error(cli("login", "localhost:5000", "-u", "alice", "--password-stdin", input="\n"), 2) == \
        "no password: give --password-stdin (or --password)"
    assert one_error(cli("login", "not a host", "-u", "a", "-p", "b"), 2) == "'not a host' is not a registry host[:port]"


# ------------------------------------------------------------ Python API
@pytest.mark.engine
def test_runner_runs_a_reference(registry, keys, tmp_path):
    """Runner("registry/repo:tag") pulls, verifies (policy) and runs; a
    refused image never starts."""
    from conftest import ENGINE
    from wasm_bpf_cli import Runner, RunOptions
    from wasm_bpf_cli.oci import SignatureError
    from wasm_bpf_cli.policy import Policy

    ref = f"localhost:{registry.port}/tools/tiny:1"
    assert cli("push", WASM, ref).returncode == 0
    with Runner(ref, RunOptions(engine=ENGINE)) as runner:
        result = runner.run()
    assert (result.exit_code, result.outcome.value) == (7, "exited")

    strict = Policy(trusted_keys=(keys["key_pub"],), require_signature=True, source="strict.toml")
    with pytest.raises(SignatureError) as err:
        with Runner(ref, RunOptions(engine=ENGINE, policy=strict)) as runner:
            runner.run()
    assert str(err.value) == f"{ref}: not signed"
    assert cli("sign", "--key", keys["key"], ref).returncode == 0
    with Runner(ref, RunOptions(engine=ENGINE, policy=strict, pull="always")) as runner:
        assert runner.run().exit_code == 7


def test_signature_made_after_the_pull_is_fetched(registry, keys, tmp_path):
    """Someone signs an image after it was pulled unsigned: --pull missing
    with a key looks for the new signature instead of refusing at once."""
    from wasm_bpf_cli import oci

    ref = f"{registry.host}/tools/tiny:1"
    assert cli("push", WASM, ref).returncode == 0
    assert cli("pull", ref).returncode == 0
    oci.sign(ref, keys["key"], store=oci.Store(str(tmp_path / "signer-store")))  # another machine's store
    res = cli("pull", "--missing", "--verify-key", keys["key_pub"], ref)
    assert res.returncode == 0, res.stderr
    assert json.loads(cli("images", "--json").stdout)["images"][0]["signed"] is True


def test_run_a_reference_through_the_cli(registry, keys):
    ref = f"{registry.host}/tools/tiny:1"
    assert cli("push", WASM, ref).returncode == 0
    res = cli("run", ref)
    assert (res.returncode, res.stdout, res.stderr) == (7, "", "")  # the guest's own status
    res = cli("run", "--verify-key", keys["other_pub"], ref)
    assert one_error(res, 1) == f"{ref}: not signed"
    assert cli("sign", "--key", keys["key"], ref).returncode == 0
    res = cli("run", "--verify-key", keys["other_pub"], ref)
    assert one_error(res, 1) == f"{ref}: no signature verifies with the trusted key (other.pub)"
    assert cli("run", "--verify-key", keys["key_pub"], ref).returncode == 7


def test_https_registry_with_a_private_ca(tmp_path, private_home):
    """A loopback registry that speaks TLS gets HTTPS, certificates checked:
    refused without its CA, used with REQUESTS_CA_BUNDLE; basic auth over it."""
    with Registry(tmp_path, user="bob", password="pw", tls=True) as reg:
        host = reg.host
        res = cli("login", host, "-u", "bob", "--password-stdin", input="pw\n")
        assert one_error(res, 1) == f"registry {host}: TLS failed: certificate verify failed"
        assert not os.path.exists(private_home / "docker" / "config.json")
        ca = {"REQUESTS_CA_BUNDLE": reg.ca}
        assert cli("login", host, "-u", "bob", "--password-stdin", input="pw\n", env=ca).returncode == 0
        ref = f"{host}/tools/tiny:1"
        assert cli("push", WASM, ref, env=ca).returncode == 0
        res = cli("pull", ref, env=ca)
        assert res.returncode == 0 and res.stdout.startswith(f"{ref}@sha256:"), res.stderr


def test_allowed_images_refuse_before_any_download(registry, private_home, tmp_path):
    ref = f"{registry.host}/tools/tiny:1"
    digest = cli("push", WASM, ref).stdout.strip().split("@")[1]
    policy = tmp_path / "policy.toml"
    policy.write_text('allowed_images = ["ghcr.io/org/*"]\n')
    registry.stop()  # a name no pattern allows is refused without asking the registry
    assert one_error(cli("run", "--policy", str(policy), ref), 1) == \
        f"{ref} is not in allowed_images of policy.toml"
    registry.start()
    policy.write_text(f'allowed_images = ["ghcr.io/org/*", "{digest}"]\n')
    assert cli("run", "--policy", str(policy), ref).returncode == 7
    policy.write_text(f'allowed_images = ["{registry.host}/tools/*"]\n')
    assert cli("run", "--policy", str(policy), ref).returncode == 7
    policy.write_text('allowed_images = "ghcr.io/org/*"\n')
    assert one_error(cli("run", "--policy", str(policy), ref), 2) == \
        "policy.toml: allowed_images: expected a list of non-empty strings"


def test_push_refuses_what_is_not_a_module(registry):
    readme = os.path.join(FIXTURES, "README.md")
    assert one_error(cli("push", readme, f"{registry.host}/t/x:1"), 1) == "README.md: not a wasm module (bad magic)"
    assert one_error(cli("push", WASM, f"{registry.host}/t/x@sha256:{'0' * 64}"), 2) == \
        (f"{registry.host}/t/x@sha256:{'0' * 64}: push to a tag, not a digest "
         "(the digest is what the registry computes)")


def test_unsigned_image_with_keys_but_no_requirement_is_allowed_and_said(registry, keys, tmp_path):
    ref = f"{registry.host}/tools/tiny:1"
    assert cli("push", WASM, ref).returncode == 0
    policy = tmp_path / "policy.toml"
    policy.write_text(f'trusted_keys = ["{keys["key_pub"]}"]\n')
    res = cli("pull", "--policy", str(policy), ref)
    assert res.returncode == 0 and res.stderr == f"warning: {ref} is not signed\n"
    assert cli("sign", "--key", keys["other"], ref).returncode == 0  # a signature that is there must verify
    res = cli("pull", "--policy", str(policy), ref)
    assert one_error(res, 1) == f"{ref}: no signature verifies with the trusted key (key.pub)"


def test_a_registry_that_never_answers_times_out(private_home):
    """A port that accepts connections and says nothing (a hung registry)."""
    import socket
    import time

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        host = f"127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        res = cli("pull", f"{host}/tools/tiny:1", env={"WASM_BPF_REGISTRY_TIMEOUT": "1"})
        assert one_error(res, 1) == f"cannot reach registry {host}: timed out after 1 s"
        assert time.monotonic() - started < 15
    assert store_files(private_home) == []


def test_images_and_rmi_on_an_empty_store(private_home):
    res = cli("images")
    assert (res.returncode, res.stdout, res.stderr) == (0, "", f"no images in {store_root(private_home)}\n")
    assert json.loads(cli("images", "--json").stdout) == {"store": store_root(private_home), "images": []}
    assert one_error(cli("rmi", "localhost:5000/tools/x:1"), 1) == "localhost:5000/tools/x:1: not in the local image store"
    assert one_error(cli("rmi", "not a ref"), 2).startswith("'not a ref' is not a valid image reference")


def test_token_auth_registry(tmp_path, private_home, keys):
    """Bearer tokens from a token server, as ghcr.io and Docker Hub do it:
    stored credentials buy a token per scope; a push needs a new token for
    pull,push after the pull-scoped one (no stale token reused)."""
    from oci_token_server import TokenServer

    with TokenServer(str(tmp_path), "carol", "tok pw") as tokens, \
            Registry(tmp_path, auth_config=tokens.registry_auth()) as reg:
        host = reg.host
        ref = f"{host}/tools/tiny:1"
        assert one_error(cli("pull", ref), 1) == (f"registry {host} asks for credentials: "
                                                  f"run `wasm-bpf login {host}`")
        os.makedirs(private_home / "docker")
        (private_home / "docker" / "config.json").write_text(json.dumps(
            {"auths": {host: {"auth": base64.b64encode(b"carol:tok pw").decode()}}}))
        res = cli("push", WASM, ref)
        assert res.returncode == 0, res.stderr
        assert cli("sign", "--key", keys["key"], ref).returncode == 0
        res = cli("pull", "--verify-key", keys["key_pub"], ref)
        assert res.returncode == 0, res.stderr
        assert ["repository:tools/tiny:pull,push"] in tokens.issued
