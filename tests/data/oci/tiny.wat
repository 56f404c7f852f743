;; The smallest guest the registry tests push around (assembled with
;; wasmtime.wat2wasm by tests/test_oci_registry.py): a WASI command that exits 7.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 7))))
