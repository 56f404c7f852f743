// Package wasmbpf is the Go guest SDK of wasm-bpf: it loads the eBPF objects
// a WASI module embeds (//go:embed prog.bpf.o), attaches their programs, reads
// and writes their maps and polls their ring and perf buffers, through the
// host functions of the wasm-bpf runtime. Standard library only; build with
// GOOS=wasip1 GOARCH=wasm.
package wasmbpf

import (
	"runtime"
	"unsafe"
)

// Object is a loaded eBPF object. Close it to detach its programs and free
// its maps (the runner also does so when the guest exits).
type Object struct {
	handle  int64
	buffers []*Buffer
}

// Load opens and loads the eBPF ELF image obj. The host reads obj while it
// loads; set .rodata knobs (SetGlobal) before.
func Load(obj []byte) (*Object, error) {
	if len(obj) == 0 || len(obj) > 1<<31-1 {
		return nil, ErrLoad
	}
	h := hostLoad(unsafe.Pointer(&obj[0]), int32(len(obj)))
	runtime.KeepAlive(obj)
	if h == 0 {
		return nil, ErrLoad
	}
	return &Object{handle: h}, nil
}

// Close detaches every program of the object and frees it and its buffers.
// A second Close does nothing.
func (o *Object) Close() error {
	if o == nil || o.handle == 0 {
		return nil
	}
	for _, b := range o.buffers {
		b.release()
	}
	o.buffers = nil
	ret := hostClose(o.handle)
	o.handle = 0
	return check(ret, "close", "")
}

// Attach attaches program prog (its C function name), auto-attached from its
// section name.
func (o *Object) Attach(prog string) error {
	return o.AttachTo(prog, "")
}

// AttachTo attaches program prog to target: a cgroup directory for cgroup
// sections, an interface for xdp and socket filters, IFNAME[:ingress|:egress]
// for tc, BINARY:FUNCTION for uprobes; "" auto-attaches.
func (o *Object) AttachTo(prog, target string) error {
	if o == nil || o.handle == 0 {
		return &Error{Op: "attach", Name: prog, Err: errClosed}
	}
	name := cString(prog)
	var tgt unsafe.Pointer
	var t []byte
	if target != "" {
		t = cString(target)
		tgt = unsafe.Pointer(&t[0])
	}
	ret := hostAttach(o.handle, unsafe.Pointer(&name[0]), tgt)
	runtime.KeepAlive(name)
	runtime.KeepAlive(t)
	return check(ret, "attach", prog)
}

// Map returns the map called name.
func (o *Object) Map(name string) (Map, error) {
	if o == nil || o.handle == 0 {
		return Map{}, &Error{Op: "map", Name: name, Err: errClosed}
	}
	n := cString(name)
	fd := hostMapFD(o.handle, unsafe.Pointer(&n[0]))
	runtime.KeepAlive(n)
	if err := check(fd, "map", name); err != nil {
		return Map{}, err
	}
	return Map{FD: int(fd), Name: name}, nil
}

// cString is s with a terminating NUL, for the host.
func cString(s string) []byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b
}
