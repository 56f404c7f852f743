module wasm-bpf.dev/wasmbpf

go 1.24
