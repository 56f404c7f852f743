module wasm-bpf.dev/examples/go_runqlat

go 1.24

require (
	wasm-bpf.dev/goexample v0.0.0
	wasm-bpf.dev/wasmbpf v0.0.0
)

replace (
	wasm-bpf.dev/goexample => ../common/goexample
	wasm-bpf.dev/wasmbpf => ../../wasm_bpf_cli/sdk/go/wasmbpf
)
