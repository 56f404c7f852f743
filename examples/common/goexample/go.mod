module wasm-bpf.dev/goexample

go 1.24
