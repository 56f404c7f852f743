"""`wasm-bpf gen`: C headers for wasm32 guests generated from a BPF object's
ELF and BTF (skeleton headers and layout-exact type definitions)."""
