"""Media types and annotation keys, in one place.

Pushed: the CNCF TAG Runtime "Wasm OCI artifact" layout (an OCI image
manifest, config `application/vnd.wasm.config.v0+json`, exactly one layer
`application/wasm`). Pulled: that, and the older single-layer layouts other
wasm tools push (see WASM_LAYERS)."""

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_LIST)

WASM_CONFIG = "application/vnd.wasm.config.v0+json"  # CNCF Wasm OCI artifact
WASM_LAYER = "application/wasm"  # CNCF Wasm OCI artifact
# Layer media types `pull` accepts, with who pushes them.
WASM_LAYERS = {
    WASM_LAYER: "CNCF Wasm OCI artifact (wasm-bpf push)",
    "application/vnd.wasm.content.layer.v1+wasm": "wasm-to-oci and ecli (eunomia-bpf)",
    "application/vnd.module.wasm.content.layer.v1+wasm": "solo.io wasme / Wasm image spec (oci variant)",
}
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

# cosign (SIGNATURE_SPEC.md)
COSIGN_PAYLOAD = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE = "dev.cosignproject.cosign/signature"
COSIGN_TYPE = "cosign container image signature"

# Manifest annotations wasm-bpf push writes.
TITLE = "org.opencontainers.image.title"
DESCRIPTION = "org.opencontainers.image.description"
SOURCE = "org.opencontainers.image.source"
VERSION = "org.opencontainers.image.version"
CREATED = "org.opencontainers.image.created"
PROGRAMS = "dev.wasm-bpf.programs"  # JSON list: name, section, type, attach type per program
MAPS = "dev.wasm-bpf.maps"  # JSON list: name and type per map
IMPORTS = "dev.wasm-bpf.imports"  # JSON list of "module.name" host functions the guest imports
