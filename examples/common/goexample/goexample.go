// Package goexample holds what the Go examples share (not part of the SDK):
// getopt-style options with the C examples' messages and exit statuses, and
// the C examples' time stamp.
package goexample

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Usage prints an example's help to w.
type Usage func(w io.Writer, prog string)

// Options parses os.Args like getopt(3) with optstring spec ("d:vh": -d takes
// a value): -d100, -d 100 and -vd 100 all work, "--" ends the options.
// handle gets each option and its value (""). -h prints the usage on stdout
// and exits 0; an unknown option or a missing value prints the usage on
// stderr and exits 1. Returns the remaining arguments.
func Options(spec string, usage Usage, handle func(opt byte, val string)) []string {
	prog := os.Args[0]
	args := os.Args[1:]
	for len(args) > 0 {
		a := args[0]
		if a == "--" {
			return args[1:]
		}
		if len(a) < 2 || a[0] != '-' {
			return args
		}
		args = args[1:]
		for i := 1; i < len(a); i++ {
			opt := a[i]
			at := strings.IndexByte(spec, opt)
			if opt == ':' || at < 0 || opt == 'h' {
				if opt == 'h' && at >= 0 {
					usage(os.Stdout, prog)
					os.Exit(0)
				}
				fmt.Fprintf(os.Stderr, "%s: unrecognized option: %c\n", prog, opt)
				usage(os.Stderr, prog)
				os.Exit(1)
			}
			if at+1 < len(spec) && spec[at+1] == ':' {
				val := a[i+1:]
				if val == "" {
					if len(args) == 0 {
						fmt.Fprintf(os.Stderr, "%s: option requires an argument: %c\n", prog, opt)
						usage(os.Stderr, prog)
						os.Exit(1)
					}
					val, args = args[0], args[1:]
				}
				handle(opt, val)
				break
			}
			handle(opt, "")
		}
	}
	return args
}

// Invalid reports a bad argument ("Invalid WHAT: ARG", then the usage, on
// stderr) and exits 1.
func Invalid(usage Usage, what, arg string) {
	fmt.Fprintf(os.Stderr, "Invalid %s: %s\n", what, arg)
	usage(os.Stderr, os.Args[0])
	os.Exit(1)
}

// Positive is s as a whole number 1..max in C syntax (0x10 and 010 too), or
// false.
func Positive(s string, max int64) (int64, bool) {
	v, err := strconv.ParseInt(s, 0, 64) // base 0: 0x.. hex, 0.. octal, as strtol(s, 0)
	if err != nil || v <= 0 || v > max {
		return 0, false
	}
	return v, true
}

// Now is the time as HH:MM:SS (UTC: what a WASI guest's localtime() gives).
func Now() string {
	return time.Now().UTC().Format("15:04:05")
}

// CString is the bytes of b up to its first NUL, as a string.
func CString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}
