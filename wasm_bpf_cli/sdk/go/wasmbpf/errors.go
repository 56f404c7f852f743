package wasmbpf

import (
	"errors"
	"syscall"
	"unsafe"
)

// Errors carry a syscall.Errno in WASI's numbering (syscall's own under
// GOOS=wasip1) whichever runtime the guest runs on: errors.Is(err,
// syscall.ENOENT) works.

// ErrInterrupted is what Poll returns when the runner asked the guest to stop
// (Ctrl-C, SIGTERM, --duration): clean up and return from main.
var ErrInterrupted error = syscall.EINTR

// ErrNotFound: a map lookup or delete of a key the map lacks, or the end of a
// NextKey walk.
var ErrNotFound error = syscall.ENOENT

// ErrLoad: the host could not open or load the object (it reports the reason
// on the runner's stderr with -v; the ABI returns only a zero handle).
var ErrLoad = errors.New("failed to open and load BPF object")

// Error says which operation on which name failed; Unwrap gives the errno.
type Error struct {
	Op   string // "attach", "map", "lookup", "poll", "set global", ...
	Name string // program, map or symbol name
	Err  error
}

func (e *Error) Error() string {
	if e.Name == "" {
		return e.Op + ": " + e.Err.Error()
	}
	return e.Op + " " + e.Name + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Code is the negative errno the host returned (e.g. -27 for EINTR), the
// number the C examples print; 0 if err carries none.
func Code(err error) int {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return -int(errno)
	}
	return 0
}

// check turns a host result into nil or an *Error.
func check(ret int32, op, name string) error {
	if ret >= 0 {
		return nil
	}
	return &Error{Op: op, Name: name, Err: hostErrno(-ret)}
}

// The reference runtimes (upstream's C++ and Rust ones) return Linux errno
// numbers, this runner WASI ones (shared/ABI.md). Probed once, as the C SDK
// does: handle 0 is invalid everywhere, and its EINVAL is 22 in Linux's
// numbering, 28 in WASI's.
var linuxNumbers = -1

func hostErrno(e int32) syscall.Errno {
	if linuxNumbers < 0 {
		empty := []byte{0}
		linuxNumbers = 0
		if hostMapFD(0, unsafe.Pointer(&empty[0])) == -22 {
			linuxNumbers = 1
		}
	}
	if linuxNumbers == 0 {
		return syscall.Errno(e)
	}
	if w, ok := fromLinux[e]; ok {
		return w
	}
	return syscall.EIO
}

// Linux errno -> the WASI one (syscall.Errno under wasip1).
var fromLinux = map[int32]syscall.Errno{
	1: syscall.EPERM, 2: syscall.ENOENT, 3: syscall.ESRCH, 4: syscall.EINTR, 5: syscall.EIO,
	7: syscall.E2BIG, 9: syscall.EBADF, 11: syscall.EAGAIN, 12: syscall.ENOMEM, 13: syscall.EACCES,
	14: syscall.EFAULT, 16: syscall.EBUSY, 17: syscall.EEXIST, 19: syscall.ENODEV, 22: syscall.EINVAL,
	24: syscall.EMFILE, 28: syscall.ENOSPC, 34: syscall.ERANGE, 38: syscall.ENOSYS, 95: syscall.ENOTSUP,
	110: syscall.ETIMEDOUT,
}

// errClosed: an operation on a closed (or zero) Object, Map or Buffer.
var errClosed error = syscall.EBADF

// errInvalid: a bad argument (nil callback, empty buffer, ...).
var errInvalid error = syscall.EINVAL
