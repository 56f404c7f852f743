package wasmbpf

import (
	"bytes"
	"debug/elf"
	"syscall"
	"unsafe"
)

// SetGlobal writes value into the global symbol of section (".rodata",
// ".data", ".rodata.NAME", ...) inside the ELF image obj, which must not be
// loaded yet: this is how `const volatile` knobs of a BPF program are set.
// value may be shorter than the symbol (the rest is left as is), not longer.
func SetGlobal(obj []byte, section, symbol string, value []byte) error {
	f, err := elf.NewFile(bytes.NewReader(obj))
	if err != nil {
		return &Error{Op: "set global", Name: symbol, Err: syscall.EINVAL}
	}
	defer f.Close()
	sec := f.Section(section)
	if sec == nil {
		return &Error{Op: "set global", Name: symbol, Err: syscall.ENOENT}
	}
	if sec.Type == elf.SHT_NOBITS || sec.Offset+sec.Size > uint64(len(obj)) {
		return &Error{Op: "set global", Name: symbol, Err: syscall.EINVAL}
	}
	syms, err := f.Symbols()
	if err != nil {
		return &Error{Op: "set global", Name: symbol, Err: syscall.ENOENT}
	}
	for _, s := range syms {
		if s.Name != symbol || int(s.Section) >= len(f.Sections) || f.Sections[s.Section] != sec {
			continue
		}
		n := uint64(len(value))
		if (s.Size != 0 && n > s.Size) || s.Value > sec.Size || n > sec.Size-s.Value {
			return &Error{Op: "set global", Name: symbol, Err: syscall.EINVAL}
		}
		copy(obj[sec.Offset+s.Value:], value)
		return nil
	}
	return &Error{Op: "set global", Name: symbol, Err: syscall.ENOENT}
}

// SetRodata writes v into the .rodata global symbol of obj (v's bytes as
// they are in memory: wasm32 and BPF on x86 are both little-endian).
func SetRodata[T any](obj []byte, symbol string, v T) error {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&v)), unsafe.Sizeof(v))
	return SetGlobal(obj, ".rodata", symbol, b)
}
