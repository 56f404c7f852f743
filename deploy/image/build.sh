#!/usr/bin/env bash
# Builds the wasm-bpf container image (`make image`) with no base image from
# the internet and no compiler inside:
#
#   1. base layer: a Debian 12 root file system made by mmdebstrap from
#      Debian's packages (python3, libbpf1, libelf1, ca-certificates), tagged
#      localhost/wasm-bpf-base:<hash of what goes into it>, so that it is made
#      once per machine (about 2-3 minutes) and reused by every later build;
#   2. project layer: a venv in /opt/wasm-bpf holding the project's wheel and
#      its dependencies' wheels (PyPI binary wheels for this Python and
#      architecture), installed by pip run from its own wheel inside the root
#      file system (pip itself is not left in the image).
#
# Two layers, so that a node upgrading wasm-bpf pulls only the small second.
# Usage: build.sh IMAGE PYTHON   (PYTHON: an interpreter with pip, for the wheels)
# Needs root, mmdebstrap, buildah and podman (`make image-deps`).
# WASM_BPF_BASE_REBUILD=1 remakes the base (e.g. for Debian security updates).
set -euo pipefail

IMAGE=${1:?usage: build.sh IMAGE PYTHON}
PYTHON=${2:?usage: build.sh IMAGE PYTHON}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$ROOT/build/image

SUITE=bookworm
PACKAGES=python3,libbpf1,libelf1,ca-certificates
# The Debian mirror this machine's apt uses (its deb822 file), else Debian's own.
SOURCES=/etc/apt/sources.list.d/debian.sources
[ -f "$SOURCES" ] || SOURCES="deb http://deb.debian.org/debian $SUITE main"
MMDEBSTRAP_OPTS=(
	--variant=essential --include="$PACKAGES"
	# merged /usr by mmdebstrap itself: without it, apt pulls usrmerge and
	# with it all of perl (47 MB).
	--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
	--dpkgopt='path-exclude=/usr/share/locale/*'
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
)
PYVER=3.11  # bookworm's python3: the wheels must be for it

log() { printf 'image: %s\n' "$*" >&2; }
seconds() { echo $((SECONDS - $1)); }

mkdir -p "$BUILD"
started=$SECONDS

# 1. The base layer, made only when its inputs changed.
base_key=$(printf '%s\n' "$SUITE" "$PACKAGES" "${MMDEBSTRAP_OPTS[@]}" | sha256sum | cut -c1-16)
BASE=localhost/wasm-bpf-base:$base_key
if [ -n "${WASM_BPF_BASE_REBUILD:-}" ] || ! podman image exists "$BASE"; then
	t=$SECONDS
	log "making the Debian $SUITE root file system ($PACKAGES) with mmdebstrap"
	rm -f "$BUILD/rootfs.tar"
	if ! mmdebstrap --format=tar "${MMDEBSTRAP_OPTS[@]}" "$SUITE" "$BUILD/rootfs.tar.tmp" "$SOURCES" \
			>"$BUILD/mmdebstrap.log" 2>&1; then
		tail -20 "$BUILD/mmdebstrap.log" >&2
		log "mmdebstrap failed (whole log: $BUILD/mmdebstrap.log)"
		exit 1
	fi
	mv "$BUILD/rootfs.tar.tmp" "$BUILD/rootfs.tar"
	podman import --quiet --message "Debian $SUITE: $PACKAGES (mmdebstrap)" \
		"$BUILD/rootfs.tar" "$BASE" >/dev/null
	rm -f "$BUILD/rootfs.tar"
	log "base $BASE made in $(seconds "$t") s"
else
	log "base $BASE reused"
fi

# 2. Wheels: the project's (built here; pure Python) and its dependencies'
# (binary wheels only: nothing is compiled, here or in the image).
t=$SECONDS
rm -rf "$BUILD/wheels"
mkdir -p "$BUILD/wheels"
quietly() {  # run "$@" with its output in build/image/pip.log, shown on failure
	"$@" >"$BUILD/pip.log" 2>&1 || { cat "$BUILD/pip.log" >&2; log "failed: $*"; exit 1; }
}
quietly "$PYTHON" -m pip wheel --no-deps --wheel-dir "$BUILD/wheels" "$ROOT"
project_wheel=$(ls "$BUILD"/wheels/wasm_bpf-*.whl)
quietly "$PYTHON" -m pip download --dest "$BUILD/wheels" --only-binary=:all: \
	--python-version "$PYVER" "$project_wheel" pip
log "wheels ready in $(seconds "$t") s"

# 3. The project layer.
t=$SECONDS
ctr=$(buildah from --pull-never --quiet "$BASE")
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
mnt=$(buildah mount "$ctr")
mkdir -p "$mnt/tmp/wheels"
cp "$BUILD"/wheels/*.whl "$mnt/tmp/wheels/"
pip_wheel=$(cd "$mnt/tmp/wheels" && ls pip-*.whl)
# A clean environment: none of this machine's PIP_* settings apply in there.
in_root() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 chroot "$mnt" "$@"; }
in_root /usr/bin/python3 -m venv --without-pip /opt/wasm-bpf
in_root /opt/wasm-bpf/bin/python "/tmp/wheels/$pip_wheel/pip" install --quiet \
	--no-index --no-cache-dir --disable-pip-version-check --find-links /tmp/wheels \
	"/tmp/wheels/$(basename "$project_wheel")"
rm -rf "$mnt/tmp/wheels"
# Mount points of deploy/kubernetes/20-daemonset.yaml (the root is read-only there).
mkdir -p "$mnt/etc/wasm-bpf/config" "$mnt/etc/wasm-bpf/key" "$mnt/etc/wasm-bpf/registry" "$mnt/var/lib/wasm-bpf"
# What the image runs, checked before it is tagged: the CLI starts and
# finds its engine and libbpf (no kernel needed for these two).
in_root /opt/wasm-bpf/bin/wasm-bpf --version >/dev/null
in_root /opt/wasm-bpf/bin/python -c 'import ctypes; ctypes.CDLL("libbpf.so.1")'
for compiler in cc gcc clang clang-14; do
	if [ -e "$mnt/usr/bin/$compiler" ]; then log "a compiler ($compiler) got into the image"; exit 1; fi
done
buildah umount "$ctr" >/dev/null

version=$("$PYTHON" -c 'import sys, zipfile; n = sys.argv[1].split("/")[-1]; print(n.split("-")[1])' "$project_wheel")
revision=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
buildah config \
	--entrypoint '["/opt/wasm-bpf/bin/wasm-bpf"]' --cmd '["--help"]' \
	--env PATH=/opt/wasm-bpf/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	--env XDG_CACHE_HOME=/var/lib/wasm-bpf \
	--stop-signal SIGTERM --workingdir / \
	--label org.opencontainers.image.title=wasm-bpf \
	--label org.opencontainers.image.version="$version" \
	--label org.opencontainers.image.revision="$revision" \
	--label org.opencontainers.image.base.name="$BASE" \
	"$ctr"
previous=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
buildah commit --quiet --rm "$ctr" "$IMAGE" >/dev/null
trap - EXIT
# The build this one replaces, now untagged: removed (unless a container uses it).
if [ -n "$previous" ] && [ "$(podman image inspect --format '{{len .RepoTags}}' "$previous" 2>/dev/null)" = 0 ]; then
	podman rmi "$previous" >/dev/null 2>&1 || true
fi
log "project layer committed in $(seconds "$t") s"

size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
log "$IMAGE: $((size / 1000000)) MB uncompressed, built in $(seconds "$started") s"
