# Shared build rules for wasm-bpf C guests.
#
# An example directory needs only NAME.bpf.c + NAME.c and a Makefile:
#     APP := NAME
#     include ../common.mk
# Outputs: NAME.wasm (plus NAME.bpf.o, NAME.skel.h, vmlinux.h in $(OUT)).
# NAME.c includes "NAME.skel.h", which defines the stripped BPF object as
#     static unsigned char NAME_bpf_obj[];  static const unsigned int NAME_bpf_obj_len;
#
# Multi-guest directories (tests/guests) set APPS := a b c and OUT := build,
# and may map a guest onto another guest's BPF object(s) with
#     BPF_<guest> := <bpf name> [<bpf name>...]
# (default: <guest>.bpf.c if it exists, none otherwise).

COMMON_MK_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
ROOT ?= $(abspath $(COMMON_MK_DIR)/..)
SDK_INCLUDE ?= $(ROOT)/wasm_bpf_cli/sdk/include
# example_util.h: helpers shared by the examples (not part of the SDK)
EXAMPLE_INCLUDE := $(COMMON_MK_DIR)/common
BIN2C ?= $(COMMON_MK_DIR)/tools/bin2c.py

CLANG ?= clang-14
LLVM_STRIP ?= llvm-strip-14
BPFTOOL ?= bpftool
PYTHON ?= python3
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
ARCH ?= x86

OUT ?= .
# path prefix of outputs: empty when OUT is the current directory
O := $(if $(filter .,$(OUT)),,$(OUT)/)
APPS ?= $(APP)

BPF_CFLAGS ?= -g -O2 -Wall -target bpf -D__TARGET_ARCH_$(ARCH)
WASM_CFLAGS ?= --target=wasm32-wasi --sysroot=/usr -O2 -Wall
WASM_LDFLAGS ?= -Wl,--allow-undefined,--export-table

SDK_HEADERS := $(wildcard $(SDK_INCLUDE)/*.h) $(wildcard $(EXAMPLE_INCLUDE)/*.h)
LOCAL_HEADERS := $(filter-out vmlinux.h %.skel.h,$(wildcard *.h))

# BPF object names used by guest $(1)
bpf_of = $(if $(BPF_$(1)),$(BPF_$(1)),$(if $(wildcard $(1).bpf.c),$(1)))

.PHONY: all clean
.DEFAULT_GOAL := all
all: $(patsubst %,$(O)%.wasm,$(APPS))

ifneq ($(OUT),.)
$(OUT):
	mkdir -p $@
endif

$(O)vmlinux.h: $(if $(O),| $(OUT))
	$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp
	mv $@.tmp $@

$(O)%.bpf.o: %.bpf.c $(O)vmlinux.h $(LOCAL_HEADERS) $(if $(O),| $(OUT))
	$(CLANG) $(BPF_CFLAGS) -I$(OUT) -I. -c $< -o $@
	$(LLVM_STRIP) -g $@

$(O)%.skel.h: $(O)%.bpf.o
	$(PYTHON) $(BIN2C) $< $(subst -,_,$*)_bpf_obj > $@.tmp
	mv $@.tmp $@

.SECONDEXPANSION:
$(O)%.wasm: %.c $$(addprefix $(O),$$(addsuffix .skel.h,$$(call bpf_of,$$*))) $(SDK_HEADERS) $(LOCAL_HEADERS) $(if $(O),| $(OUT))
	$(CLANG) $(WASM_CFLAGS) -I$(SDK_INCLUDE) -I$(EXAMPLE_INCLUDE) -I$(OUT) -I. $(WASM_LDFLAGS) -o $@ $<

.PRECIOUS: $(O)%.bpf.o $(O)%.skel.h $(O)vmlinux.h

clean::
	rm -f $(patsubst %,$(O)%.wasm,$(APPS)) $(O)*.bpf.o $(O)*.skel.h \
	      $(O)vmlinux.h $(O)*.tmp
