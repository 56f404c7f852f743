// gosdk: the Go SDK (wasm-bpf.dev/wasmbpf) on the real kernel. See
// ../README.md for what it prints. Usage: gosdk PID [N]
package main

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"unsafe"

	"wasm-bpf.dev/wasmbpf"
)

//go:embed maps.bpf.o
var mapsObj []byte

//go:embed perf.bpf.o
var perfObj []byte

// sample is ../sample.h's struct test_sample.
type sample struct {
	Pid uint32
	Seq uint32
	Tag [8]byte
	Cpu uint32
}

var _ = [1]struct{}{}[unsafe.Sizeof(sample{})-20]

func fail(step string, err error) {
	fmt.Printf("error %s %d\n", step, wasmbpf.Code(err))
	os.Exit(1)
}

func u32(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }

func u64(v uint64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return b
}

func le(b []byte) (v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func bytesNot(b []byte, v byte) (n int) {
	for _, c := range b {
		if c != v {
			n++
		}
	}
	return n
}

func maps() {
	obj, err := wasmbpf.Load(mapsObj)
	if err != nil {
		fail("load", err)
	}
	kv, err := obj.Map("kv")
	if err != nil {
		fail("map_fd kv", err)
	}
	// byte slices, as the C maps guest does
	if err := kv.Update(u32(1), u64(100), wasmbpf.Any); err != nil {
		fail("update 1", err)
	}
	if err := wasmbpf.Update(kv, uint32(2), uint64(200), wasmbpf.NoExist); err != nil {
		fail("update 2", err)
	}
	val := make([]byte, 8)
	if err := kv.Lookup(u32(1), val); err != nil {
		fail("lookup 1", err)
	}
	fmt.Printf("lookup 1 = %d\n", le(val))
	next := make([]byte, 4)
	var key []byte
	for {
		err = kv.NextKey(key, next)
		if err != nil {
			break
		}
		fmt.Printf("key %d\n", le(next))
		key = append([]byte(nil), next...)
	}
	if !errors.Is(err, wasmbpf.ErrNotFound) {
		fail("get_next_key", err)
	}
	if err := kv.Delete(u32(1)); err != nil {
		fail("delete 1", err)
	}
	err = kv.Lookup(u32(1), val)
	fmt.Printf("lookup 1 err=%d notfound=%v\n", wasmbpf.Code(err), errors.Is(err, wasmbpf.ErrNotFound))
	_, err = obj.Map("nope")
	fmt.Printf("missing map fd=%d (%v)\n", wasmbpf.Code(err), err)
	// typed values
	v, err := wasmbpf.Lookup[uint32, uint64](kv, 2)
	fmt.Printf("typed lookup 2 = %d err=%v\n", v, err)
	err = wasmbpf.Update(kv, uint32(2), uint64(1), wasmbpf.NoExist)
	fmt.Printf("update existing with NoExist err=%d\n", wasmbpf.Code(err))
	for k := uint32(10); k < 13; k++ {
		if err := wasmbpf.Update(kv, k, uint64(k)*3, wasmbpf.Any); err != nil {
			fail("update typed", err)
		}
	}
	if err := wasmbpf.Delete(kv, uint32(11)); err != nil {
		fail("delete typed", err)
	}
	keys, err := wasmbpf.Keys[uint32](kv)
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	fmt.Printf("keys %v err=%v\n", keys, err)
	if err := obj.Close(); err != nil {
		fail("close", err)
	}
	err = obj.Attach("handle_getppid")
	fmt.Printf("attach after close err=%d\n", wasmbpf.Code(err))
	err = wasmbpf.SetRodata(perfObj, "no_such_knob", uint32(1))
	fmt.Printf("set_global no_such_knob err=%d\n", wasmbpf.Code(err))
}

func main() {
	if len(os.Args) < 2 {
		fmt.Println("usage: gosdk PID [N]")
		os.Exit(2)
	}
	pid, _ := strconv.ParseUint(os.Args[1], 0, 32)
	wanted := 3
	if len(os.Args) > 2 {
		wanted, _ = strconv.Atoi(os.Args[2])
	}
	maps()

	if err := wasmbpf.SetRodata(perfObj, "target_pid", uint32(pid)); err != nil {
		fail("set_global", err)
	}
	obj, err := wasmbpf.Load(perfObj)
	if err != nil {
		fail("load", err)
	}
	defer obj.Close()
	if err := obj.Attach("handle_getppid"); err != nil {
		fail("attach", err)
	}
	seen, stopped := 0, false
	events, err := obj.OpenBuffer("events", func(data []byte) int {
		if !stopped { // the first sample: a negative return stops the poll
			stopped = true
			return -7
		}
		if seen >= wanted {
			return 0
		}
		s := (*sample)(unsafe.Pointer(&data[0]))
		fmt.Printf("sample pid=%d tag=%s size=%d\n", s.Pid, s.Tag[:7], len(data))
		seen++
		return 0
	})
	if err != nil {
		fail("buffer_open", err)
	}
	// Heap grown after the host set the buffer up: its pages must stay Go's
	// (the host must not have grown memory for itself behind Go's allocator)
	big := make([]byte, 16<<20)
	for i := range big {
		big[i] = 0xAB
	}
	fmt.Println("attached")
	for {
		_, err := events.Poll(100)
		if errors.Is(err, wasmbpf.ErrInterrupted) {
			fmt.Println("interrupted")
			return
		}
		if err != nil && wasmbpf.Code(err) == -7 {
			fmt.Printf("stopped by the callback: %v\n", err)
			continue
		}
		if err != nil {
			fail("poll", err)
		}
		if seen == wanted {
			fmt.Printf("got %d\n", seen)
			fmt.Printf("heap bytes overwritten: %d\n", bytesNot(big, 0xAB))
			seen++ // print it once; then wait for the stop request
		}
	}
}
