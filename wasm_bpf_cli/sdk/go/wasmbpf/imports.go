package wasmbpf

import "unsafe"

// The host functions of the wasm-bpf ABI (shared/ABI.md). Pointers are
// offsets into this module's memory; strings end with a NUL byte.

//go:wasmimport wasm_bpf wasm_load_bpf_object
func hostLoad(buf unsafe.Pointer, size int32) int64

//go:wasmimport wasm_bpf wasm_close_bpf_object
func hostClose(obj int64) int32

//go:wasmimport wasm_bpf wasm_attach_bpf_program
func hostAttach(obj int64, name unsafe.Pointer, target unsafe.Pointer) int32

//go:wasmimport wasm_bpf wasm_bpf_map_fd_by_name
func hostMapFD(obj int64, name unsafe.Pointer) int32

//go:wasmimport wasm_bpf wasm_bpf_map_operate
func hostMapOperate(fd int32, cmd int32, key, value, nextKey unsafe.Pointer, flags int64) int32

// Go cannot pass a function's table index, so buffers are polled through the
// callback-wrapper variant: the host calls the exported go-callback (below)
// once per sample while this import is in progress.
//
//go:wasmimport callback-wrapper wasm_bpf_buffer_poll
func hostBufferPoll(obj int64, fd int32, ctx int32, data unsafe.Pointer, maxSize int32, timeoutMs int32) int32

// goCallback receives each sample: ctx is the buffer's id, data its scratch
// buffer (where the host copied `size` bytes).
//
//go:wasmexport go-callback
func goCallback(ctx, data, size int32) int32 {
	return deliver(ctx, uintptr(uint32(data)), size)
}
