package wasmbpf

import (
	"errors"
	"runtime"
	"unsafe"
)

// Update flags (the kernel's BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK).
const (
	Any     uint64 = 0 // create or update
	NoExist uint64 = 1 // create only
	Exist   uint64 = 2 // update only
	FLock   uint64 = 4
)

// Map commands of wasm_bpf_map_operate (the kernel's BPF_MAP_* numbers).
const (
	cmdLookup  = 1
	cmdUpdate  = 2
	cmdDelete  = 3
	cmdNextKey = 4
)

// Map is a map of a loaded Object, by fd.
//
// The host takes the key and value sizes from the map itself: every key and
// value slice (or typed value) must hold at least the map's key size and
// value size (for per-CPU maps: value size rounded up to 8, times the number
// of possible CPUs). Typed values must be plain data laid out like the BPF
// side (fixed-width integers, arrays, structs of those; `wasm-bpf gen types
// --lang go` writes them).
type Map struct {
	FD   int
	Name string
}

func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func (m Map) operate(op string, cmd int32, key, value, next unsafe.Pointer, flags uint64) error {
	if m.FD <= 0 {
		return &Error{Op: op, Err: errClosed}
	}
	return check(hostMapOperate(int32(m.FD), cmd, key, value, next, int64(flags)), op, m.Name)
}

// Lookup copies the value of key into value; ErrNotFound if there is none.
func (m Map) Lookup(key, value []byte) error {
	err := m.operate("lookup", cmdLookup, ptr(key), ptr(value), nil, 0)
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
	return err
}

// Update sets key to value (flags: Any, NoExist, Exist).
func (m Map) Update(key, value []byte, flags uint64) error {
	err := m.operate("update", cmdUpdate, ptr(key), ptr(value), nil, flags)
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
	return err
}

// Delete removes key; ErrNotFound if there is none.
func (m Map) Delete(key []byte) error {
	err := m.operate("delete", cmdDelete, ptr(key), nil, nil, 0)
	runtime.KeepAlive(key)
	return err
}

// NextKey writes the key after key into next (the first key when key is
// nil); ErrNotFound after the last one.
func (m Map) NextKey(key, next []byte) error {
	err := m.operate("next key", cmdNextKey, ptr(key), nil, ptr(next), 0)
	runtime.KeepAlive(key)
	runtime.KeepAlive(next)
	return err
}

// Lookup returns the value of key in m as a V.
func Lookup[K, V any](m Map, key K) (V, error) {
	var v V
	err := m.operate("lookup", cmdLookup, unsafe.Pointer(&key), unsafe.Pointer(&v), nil, 0)
	return v, err
}

// Update sets key to value in m (flags: Any, NoExist, Exist).
func Update[K, V any](m Map, key K, value V, flags uint64) error {
	return m.operate("update", cmdUpdate, unsafe.Pointer(&key), unsafe.Pointer(&value), nil, flags)
}

// Delete removes key from m.
func Delete[K any](m Map, key K) error {
	return m.operate("delete", cmdDelete, unsafe.Pointer(&key), nil, nil, 0)
}

// NextKey returns the key after *key (the first key when key is nil);
// ErrNotFound after the last one.
func NextKey[K any](m Map, key *K) (K, error) {
	var next K
	var k unsafe.Pointer
	if key != nil {
		k = unsafe.Pointer(key)
	}
	err := m.operate("next key", cmdNextKey, k, nil, unsafe.Pointer(&next), 0)
	return next, err
}

// Keys returns every key of m, walked with NextKey.
func Keys[K any](m Map) ([]K, error) {
	var keys []K
	var prev *K
	for {
		k, err := NextKey(m, prev)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return keys, nil
			}
			return keys, err
		}
		keys = append(keys, k)
		prev = &keys[len(keys)-1]
	}
}
