package wasmbpf

import (
	"errors"
	"syscall"
)

// The host returns negative WASI errno numbers, which are exactly the values
// of syscall.Errno under GOOS=wasip1: errors.Is(err, syscall.ENOENT) works.

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
	return &Error{Op: op, Name: name, Err: syscall.Errno(-ret)}
}

// errClosed: an operation on a closed (or zero) Object, Map or Buffer.
var errClosed error = syscall.EBADF

// errInvalid: a bad argument (nil callback, empty buffer, ...).
var errInvalid error = syscall.EINVAL
