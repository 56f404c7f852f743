module wasm-bpf.dev/tests/gosdk

go 1.24

require wasm-bpf.dev/wasmbpf v0.0.0

replace wasm-bpf.dev/wasmbpf => ../../../wasm_bpf_cli/sdk/go/wasmbpf
