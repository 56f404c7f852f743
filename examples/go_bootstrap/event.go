package main

import "unsafe"

// event is bootstrap.h's struct event (bootstrap.bpf.c fills it in the ring
// buffer); GOARCH=wasm aligns uint64 to 8 as BPF does.
type event struct {
	Pid        int32
	Ppid       int32
	ExitCode   uint32
	_          uint32
	DurationNs uint64
	Comm       [16]byte
	Filename   [127]byte
	ExitEvent  uint8
}

// The layout of bootstrap.h, checked at compile time (an index other than 0
// does not compile).
var _ = [1]struct{}{}[unsafe.Sizeof(event{})-168]
var _ = [1]struct{}{}[unsafe.Offsetof(event{}.DurationNs)-16]
var _ = [1]struct{}{}[unsafe.Offsetof(event{}.Comm)-24]
var _ = [1]struct{}{}[unsafe.Offsetof(event{}.Filename)-40]
var _ = [1]struct{}{}[unsafe.Offsetof(event{}.ExitEvent)-167]
