package wasmbpf

import (
	"encoding/binary"
	"syscall"
	"unsafe"
)

// SetGlobal writes value into the global symbol of section (".rodata",
// ".data", ".rodata.NAME", ...) inside the ELF image obj, which must not be
// loaded yet: this is how `const volatile` knobs of a BPF program are set.
// value may be shorter than the symbol (the rest is left as is), not longer.
// Errors: ENOENT (no such section or symbol), EINVAL (not a little-endian
// ELF64 object, a truncated one, a value too long, a section without bytes
// such as .bss).
//
// The reader is written out (every offset bounds-checked) rather than taken
// from debug/elf, which would add ~600 KB to every guest.
func SetGlobal(obj []byte, section, symbol string, value []byte) error {
	off, err := globalOffset(obj, section, symbol, uint64(len(value)))
	if err != nil {
		return &Error{Op: "set global", Name: symbol, Err: err}
	}
	copy(obj[off:], value)
	return nil
}

// SetRodata writes v into the .rodata global symbol of obj (v's bytes as
// they are in memory: wasm and BPF on x86 are both little-endian).
func SetRodata[T any](obj []byte, symbol string, v T) error {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&v)), unsafe.Sizeof(v))
	return SetGlobal(obj, ".rodata", symbol, b)
}

// elfSection is what SetGlobal needs of an ELF64 section header.
type elfSection struct {
	name, typ, link  uint32
	off, size, entry uint64
}

const (
	shtSymtab = 2
	shtNobits = 8
)

// within: [off, off+n) inside [0, size).
func within(off, n, size uint64) bool { return off <= size && n <= size-off }

func cName(strtab []byte, off uint32) (string, bool) {
	if uint64(off) >= uint64(len(strtab)) {
		return "", false
	}
	s := strtab[off:]
	for i, c := range s {
		if c == 0 {
			return string(s[:i]), true
		}
	}
	return "", false
}

// globalOffset is the file offset of symbol in section, which must hold n
// bytes there.
func globalOffset(e []byte, section, symbol string, n uint64) (uint64, error) {
	le := binary.LittleEndian
	size := uint64(len(e))
	if size < 64 || string(e[:4]) != "\x7fELF" || e[4] != 2 || e[5] != 1 { // ELFCLASS64, ELFDATA2LSB
		return 0, syscall.EINVAL
	}
	shoff, shentsize := le.Uint64(e[0x28:]), uint64(le.Uint16(e[0x3a:]))
	shnum, shstrndx := uint64(le.Uint16(e[0x3c:])), uint64(le.Uint16(e[0x3e:]))
	if shentsize < 64 || shnum == 0 || shstrndx >= shnum || !within(shoff, shnum*shentsize, size) {
		return 0, syscall.EINVAL
	}
	secs := make([]elfSection, shnum)
	for i := range secs {
		h := e[shoff+uint64(i)*shentsize:]
		secs[i] = elfSection{name: le.Uint32(h), typ: le.Uint32(h[4:]), link: le.Uint32(h[0x28:]),
			off: le.Uint64(h[0x18:]), size: le.Uint64(h[0x20:]), entry: le.Uint64(h[0x38:])}
	}
	bytesOf := func(s elfSection) ([]byte, bool) {
		if s.typ == shtNobits || !within(s.off, s.size, size) {
			return nil, false
		}
		return e[s.off : s.off+s.size], true
	}
	shstr, ok := bytesOf(secs[shstrndx])
	if !ok {
		return 0, syscall.EINVAL
	}
	target, symtab := -1, -1
	for i := 1; i < len(secs); i++ {
		if name, ok := cName(shstr, secs[i].name); ok && name == section && target < 0 {
			target = i
		}
		if secs[i].typ == shtSymtab && symtab < 0 {
			symtab = i
		}
	}
	if target < 0 || symtab < 0 {
		return 0, syscall.ENOENT
	}
	sec, symSec := secs[target], secs[symtab]
	if _, ok := bytesOf(sec); !ok {
		return 0, syscall.EINVAL
	}
	syms, ok := bytesOf(symSec)
	if !ok || symSec.entry < 24 || uint64(symSec.link) >= shnum {
		return 0, syscall.EINVAL
	}
	strtab, ok := bytesOf(secs[symSec.link])
	if !ok {
		return 0, syscall.EINVAL
	}
	for j := uint64(0); j+symSec.entry <= uint64(len(syms)); j += symSec.entry {
		sym := syms[j:]
		if uint64(le.Uint16(sym[6:])) != uint64(target) {
			continue
		}
		if name, ok := cName(strtab, le.Uint32(sym)); !ok || name != symbol {
			continue
		}
		value, symSize := le.Uint64(sym[8:]), le.Uint64(sym[16:])
		if (symSize != 0 && n > symSize) || !within(value, n, sec.size) {
			return 0, syscall.EINVAL
		}
		return sec.off + value, nil
	}
	return 0, syscall.ENOENT
}
