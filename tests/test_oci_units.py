"""The registry layer without a registry: reference names, cosign signatures
against fixtures made with openssl from cosign's specification
(tests/data/cosign/README.md), the store's all-or-nothing writes, and the
trust rules (allowed_images, signatures)."""
import base64
import json
import os
import subprocess

import pytest

from conftest import ROOT
from wasm_bpf_cli.oci import cosign
from wasm_bpf_cli.oci.errors import ImageNotAllowed, IntegrityError, InvalidReference, SignatureError
from wasm_bpf_cli.oci.reference import Reference, is_reference, parse
from wasm_bpf_cli.oci.store import RefRecord, Store, digest_of
from wasm_bpf_cli.oci.trust import Trust

FIXTURES = os.path.join(ROOT, "tests", "data", "cosign")
SPEC_DIGEST = "sha256:20be0a1c2e3ab4a2a6ec2ef1c3f2c9b7b7f8e5d0f9a1c2b3d4e5f60718293a4b"


def fixture(name: str) -> bytes:
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


# ------------------------------------------------------------- references
@pytest.mark.parametrize("text,expected", [
    ("localhost:5000/tools/bootstrap:1.0", Reference("localhost:5000", "tools/bootstrap", "1.0")),
    ("ghcr.io/org/tool", Reference("ghcr.io", "org/tool", "latest")),
    ("127.0.0.1:5000/a/b/c@sha256:" + "0" * 64, Reference("127.0.0.1:5000", "a/b/c", None, "sha256:" + "0" * 64)),
    ("[::1]:5000/x_y/z-1:v1", Reference("[::1]:5000", "x_y/z-1", "v1")),
    ("reg.example.com/a:t@sha256:" + "f" * 64, Reference("reg.example.com", "a", "t", "sha256:" + "f" * 64)),
])
def test_valid_references(text, expected):
    assert parse(text) == expected
    assert str(parse(text)) == (text if ":" in text.rsplit("/", 1)[-1] or "@" in text else text + ":latest")


@pytest.mark.parametrize("text,message", [
    ("tools/bootstrap:1", "'tools/bootstrap:1' is not a valid image reference: name its registry "
                          "(e.g. localhost:5000/tools/bootstrap:1 or ghcr.io/org/tool:1)"),
    ("localhost:5000/Tools/x:1", "'localhost:5000/Tools/x:1': 'Tools/x' is not a valid repository name "
                                 "(lowercase letters, digits and . _ - separators)"),
    ("localhost:5000/x:-bad", "'localhost:5000/x:-bad': '-bad' is not a valid tag"),
    ("localhost:5000/x@sha256:abc", "'localhost:5000/x@sha256:abc': the digest must be sha256: and 64 "
                                    "lowercase hex digits"),
    ("bad_host.io:99/x", "'bad_host.io:99/x': 'bad_host.io:99' is not a valid registry host[:port]"),
    ("", "'' is not a valid image reference"),
])
def test_invalid_references_say_why(text, message):
    with pytest.raises(InvalidReference) as err:
        parse(text)
    assert str(err.value) == message
    assert err.value.exit_code == 2


def test_files_are_not_taken_for_references():
    assert is_reference("localhost:5000/tools/bootstrap:1")
    assert is_reference("ghcr.io/org/tool")
    for path in ("examples/bootstrap/bootstrap.wasm", "./x/y", "/abs/path", "build.d/guest.wasm",
                 "bootstrap.wasm", "prog.bpf.o"):
        assert not is_reference(path), path


# ------------------------------------------------ cosign: the spec's format
def _fixture_signatures():
    manifest = fixture("signature-manifest.json")
    return [(sig, fixture("payload.json")) for sig in cosign.signatures_in(manifest)]


def test_spec_fixture_verifies_with_its_key():
    """A signature manifest laid out as SIGNATURE_SPEC.md says, signed with
    openssl: verified here, the spec's spelling Docker-manifest-digest
    matched as cosign's decoder does (case-insensitively)."""
    sigs = _fixture_signatures()
    assert len(sigs) == 1 and sigs[0][0].payload_digest == digest_of(fixture("payload.json"))
    key = cosign.load_public_key(os.path.join(FIXTURES, "fixture.pub"))
    assert cosign.verify(SPEC_DIGEST, sigs, [("fixture.pub", key)]) == "fixture.pub"


def test_spec_fixture_refused_for_another_digest_and_another_key(tmp_path):
    key = cosign.load_public_key(os.path.join(FIXTURES, "fixture.pub"))
    with pytest.raises(SignatureError) as err:
        cosign.verify("sha256:" + "1" * 64, _fixture_signatures(), [("fixture.pub", key)])
    assert str(err.value) == ("the signature is over another image (the signed payload names a "
                              "different manifest digest)")
    other = tmp_path / "other.pub"
    subprocess.run(f"openssl ecparam -genkey -name prime256v1 -noout | openssl ec -pubout -out {other}",
                   shell=True, check=True, capture_output=True)
    with pytest.raises(SignatureError) as err:
        cosign.verify(SPEC_DIGEST, _fixture_signatures(), [("other.pub", cosign.load_public_key(str(other)))])
    assert str(err.value) == "no signature verifies with the trusted key (other.pub)"


def test_tampered_payload_does_not_verify():
    key = cosign.load_public_key(os.path.join(FIXTURES, "fixture.pub"))
    sig = cosign.signatures_in(fixture("signature-manifest.json"))[0]
    tampered = fixture("payload.json").replace(b"atomic", b"atomiC")
    with pytest.raises(SignatureError, match="no signature verifies"):
        cosign.verify(SPEC_DIGEST, [(sig, tampered)], [("fixture.pub", key)])


def test_our_signatures_verify_with_openssl(tmp_path):
    """The other direction: what `wasm-bpf sign` makes is what the spec
    asks for, checked by an independent implementation (openssl), and its
    payload has the simple-signing shape cosign writes."""
    digest = "sha256:" + "ab" * 32
    payload = cosign.payload("localhost:5000/tools/bootstrap", digest)
    assert json.loads(payload) == {
        "critical": {"identity": {"docker-reference": "localhost:5000/tools/bootstrap"},
                     "image": {"docker-manifest-digest": digest},
                     "type": "cosign container image signature"},
        "optional": None}
    signature = cosign.sign(cosign.load_private_key(os.path.join(FIXTURES, "fixture.key")), payload)
    (tmp_path / "payload").write_bytes(payload)
    (tmp_path / "sig").write_bytes(base64.b64decode(signature))
    out = subprocess.run(["openssl", "dgst", "-sha256", "-verify", os.path.join(FIXTURES, "fixture.pub"),
                          "-signature", str(tmp_path / "sig"), str(tmp_path / "payload")],
                         capture_output=True, text=True)
    assert out.stdout.strip() == "Verified OK", out.stderr
    manifest, blobs = cosign.signature_manifest(None, payload, signature)
    doc = json.loads(manifest)
    assert doc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert doc["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert doc["layers"] == [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                              "size": len(payload), "digest": digest_of(payload),
                              "annotations": {"dev.cosignproject.cosign/signature": signature}}]
    assert set(blobs) == {doc["config"]["digest"], digest_of(payload)}
    assert cosign.signature_tag(digest) == "sha256-" + "ab" * 32 + ".sig"


def test_a_second_signature_is_appended():
    key = cosign.load_private_key(os.path.join(FIXTURES, "fixture.key"))
    first, _ = cosign.signature_manifest(None, b"one", cosign.sign(key, b"one"))
    both, _ = cosign.signature_manifest(first, b"two", cosign.sign(key, b"two"))
    assert [s.payload_digest for s in cosign.signatures_in(both)] == [digest_of(b"one"), digest_of(b"two")]


@pytest.mark.parametrize("content,message", [
    (b"not a key", "not a PEM public key"),
    (None, "not an ECDSA P-256 key (cosign's key-pair format)"),
])
def test_bad_public_keys(tmp_path, content, message):
    path = tmp_path / "k.pub"
    if content is None:  # a P-384 key
        subprocess.run(f"openssl ecparam -genkey -name secp384r1 -noout | openssl ec -pubout -out {path}",
                       shell=True, check=True, capture_output=True)
    else:
        path.write_bytes(content)
    with pytest.raises(SignatureError) as err:
        cosign.load_public_key(str(path))
    assert str(err.value) == f"public key {path}: {message}"


def test_encrypted_private_key_needs_cosign_password(tmp_path, monkeypatch):
    path = tmp_path / "enc.key"
    subprocess.run(["openssl", "pkcs8", "-topk8", "-in", os.path.join(FIXTURES, "fixture.key"),
                    "-out", str(path), "-passout", "pass:hunter2"], check=True, capture_output=True)
    monkeypatch.delenv("COSIGN_PASSWORD", raising=False)
    with pytest.raises(SignatureError, match="is encrypted: set COSIGN_PASSWORD"):
        cosign.load_private_key(str(path))
    monkeypatch.setenv("COSIGN_PASSWORD", "hunter2")
    assert cosign.load_private_key(str(path)).curve.name == "secp256r1"


# ------------------------------------------------------------------ store
def test_store_commit_is_all_or_nothing(tmp_path, monkeypatch):
    store = Store(str(tmp_path / "store"))
    wasm = b"\0asm\1\0\0\0"
    manifest = b'{"layers":[]}'
    record = RefRecord(digest_of(manifest), digest_of(wasm), len(wasm), "application/wasm", 0.0)
    from wasm_bpf_cli.oci import store as store_mod

    real = store_mod.write_atomic
    calls = []

    def failing(path, data, mode=0o600):  # the disk fills up at the reference
        calls.append(path)
        if "/refs/" in path:
            raise OSError(28, "No space left on device")
        real(path, data, mode)

    monkeypatch.setattr(store_mod, "write_atomic", failing)
    with pytest.raises(OSError):
        store.commit(["r.io/a:1"], record, {record.digest: manifest, record.wasm: wasm}, None)
    assert store.get_ref("r.io/a:1") is None and store.refs() == []
    leftovers = [n for _, _, files in os.walk(store.root) for n in files if n.startswith(".tmp-")]
    assert leftovers == []
    monkeypatch.setattr(store_mod, "write_atomic", real)
    store.commit(["r.io/a:1"], record, {record.digest: manifest, record.wasm: wasm}, None)
    assert store.get_blob(record.wasm) == wasm
    with store.locked():
        store.remove_ref("r.io/a:1")
        assert store.collect() == 2
    assert not store.has_blob(record.wasm)


def test_collect_removes_what_killed_writers_left(tmp_path):
    store = Store(str(tmp_path / "store"))
    store.put_blob(digest_of(b"x"), b"x")  # unreferenced: collected
    blob_dir = os.path.dirname(store.blob_path(digest_of(b"x")))
    old, fresh = os.path.join(blob_dir, ".tmp-1-old"), os.path.join(blob_dir, ".tmp-2-fresh")
    for path in (old, fresh):
        with open(path, "wb") as f:
            f.write(b"partial")
    os.utime(old, (0, 0))
    with store.locked():
        assert store.collect() == 1
    assert sorted(os.listdir(blob_dir)) == [".tmp-2-fresh"]  # a writer may still be busy with it


def test_a_store_others_can_write_is_not_used(tmp_path):
    from wasm_bpf_cli.errors import WasmBpfError

    root = tmp_path / "store"
    root.mkdir()
    root.chmod(0o777)
    with pytest.raises(WasmBpfError) as err:
        Store(str(root)).put_blob(digest_of(b"x"), b"x")
    assert str(err.value) == f"image store {root} is writable by other users: not used (chmod go-w {root})"
    assert os.listdir(root) == []


def test_store_detects_a_corrupted_blob(tmp_path):
    store = Store(str(tmp_path / "store"))
    store.put_blob(digest_of(b"\0asm"), b"\0asm")
    with open(store.blob_path(digest_of(b"\0asm")), "wb") as f:
        f.write(b"\0asX")
    with pytest.raises(IntegrityError, match="is corrupt: remove the image"):
        store.get_blob(digest_of(b"\0asm"))
    store.put_blob(digest_of(b"\0asm"), b"\0asm")  # a later pull puts the right bytes back
    assert store.get_blob(digest_of(b"\0asm")) == b"\0asm"


# ------------------------------------------------------------------ trust
def test_allowed_images_patterns():
    trust = Trust(allowed_images=("ghcr.io/org/*", "localhost:5000/tools/bootstrap:1", "sha256:" + "a" * 64))
    trust.check_name(parse("ghcr.io/org/tool:2"))
    trust.check_name(parse("localhost:5000/tools/bootstrap:1"))
    trust.check_digest(parse("other.io/x:1"), "sha256:" + "a" * 64)
    with pytest.raises(ImageNotAllowed) as err:
        trust.check_digest(parse("other.io/x:1"), "sha256:" + "b" * 64)
    assert str(err.value) == "other.io/x:1 (sha256:bbbbbbbbbbbb) is not in allowed_images of the command line"
    names_only = Trust(allowed_images=("ghcr.io/org/*",), source="p.toml")
    with pytest.raises(ImageNotAllowed) as err:  # refused before any download
        names_only.check_name(parse("localhost:5000/tools/bootstrap:2"))
    assert str(err.value) == "localhost:5000/tools/bootstrap:2 is not in allowed_images of p.toml"


def test_require_signature_without_keys_is_refused():
    with pytest.raises(SignatureError, match="require_signature needs trusted_keys"):
        Trust(require_signature=True).check_signatures(parse("r.io/a:1"), "sha256:" + "a" * 64, [])


def _cosign_key_file(path, private_key, password: bytes, n: int = 32768) -> None:
    """A key file in the layout `cosign generate-key-pair` writes (checked by
    hand against one cosign made): PEM "ENCRYPTED SIGSTORE PRIVATE KEY" around
    base64 JSON; scrypt(password) keys a NaCl secretbox over the PKCS#8 DER."""
    import hashlib

    from cryptography.hazmat.primitives import serialization
    from nacl.secret import SecretBox

    der = private_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    salt, nonce = os.urandom(32), os.urandom(24)
    box_key = hashlib.scrypt(password, salt=salt, n=n, r=8, p=1, dklen=32, maxmem=256 * 1024 * 1024) \
        if n <= 65536 else os.urandom(32)  # larger N: never derived (refused before)
    doc = {"kdf": {"name": "scrypt", "params": {"N": n, "r": 8, "p": 1},
                   "salt": base64.b64encode(salt).decode()},
           "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
           "ciphertext": base64.b64encode(SecretBox(box_key).encrypt(der, nonce).ciphertext).decode()}
    body = base64.b64encode(json.dumps(doc).encode()).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    path.write_text("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" + "\n".join(lines)
                    + "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")


def test_cosign_key_files_are_read(tmp_path, monkeypatch):
    original = cosign.load_private_key(os.path.join(FIXTURES, "fixture.key"))
    path = tmp_path / "cosign.key"
    _cosign_key_file(path, original, b"correct horse")
    monkeypatch.setenv("COSIGN_PASSWORD", "correct horse")
    key = cosign.load_private_key(str(path))
    assert key.private_numbers() == original.private_numbers()
    monkeypatch.setenv("COSIGN_PASSWORD", "wrong")
    with pytest.raises(SignatureError) as err:
        cosign.load_private_key(str(path))
    assert str(err.value) == f"private key {path}: wrong password (COSIGN_PASSWORD)"
    _cosign_key_file(path, original, b"", n=1 << 20)  # a file asking for 1 GiB of scrypt memory
    with pytest.raises(SignatureError, match=r"scrypt parameters out of range \(N=1048576, r=8, p=1\)"):
        cosign.load_private_key(str(path))


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcAB019:/@._-[]%$ \n\x00sha256", max_size=80))
def test_reference_parser_fails_only_with_its_error(text):
    """Any string: a Reference that prints back to an equal one, or an
    InvalidReference whose message is one printable line."""
    try:
        ref = parse(text)
    except InvalidReference as err:
        assert "\n" not in str(err) and str(err).isprintable()
        return
    assert parse(str(ref)) == ref
