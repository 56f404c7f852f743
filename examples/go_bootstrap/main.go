// go_bootstrap: bootstrap's guest in Go (GOOS=wasip1, standard library and
// the wasmbpf SDK only): process exec/exit events from a ring buffer.
// Usage: go_bootstrap [-d MIN_MS] [-v] [-h]
package main

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"

	"wasm-bpf.dev/goexample"
	"wasm-bpf.dev/wasmbpf"
)

// bootstrap.bpf.o of ../bootstrap, copied here by the Makefile (go:embed
// reads only files of the package's directory).
//
//go:embed bootstrap.bpf.o
var bpfObj []byte

var verbose bool

func usage(w io.Writer, prog string) {
	fmt.Fprintf(w, "BPF bootstrap demo application.\n"+
		"\n"+
		"It traces process start and exits and shows associated\n"+
		"information (filename, process duration, PID and PPID, etc).\n"+
		"\n"+
		"USAGE: %s [-d <min-duration-ms>] [-v] [-h]\n"+
		"  -d MIN_MS  only report exits of processes that lived at least\n"+
		"             MIN_MS milliseconds (exec events are then hidden)\n"+
		"  -v         verbose debug output (to stderr)\n"+
		"  -h         show this help\n", prog)
}

func handleEvent(data []byte) int {
	if len(data) < int(unsafe.Sizeof(Event{})) {
		fmt.Fprintf(os.Stderr, "short event: %d bytes\n", len(data))
		return 0
	}
	e := (*Event)(unsafe.Pointer(&data[0])) // event_types.go: bootstrap.h's struct event
	ts := goexample.Now()
	comm := goexample.CString(e.Comm[:])
	if len(comm) > 16 {
		comm = comm[:16]
	}
	if e.ExitEvent != 0 {
		line := fmt.Sprintf("%-8s %-5s %-16s %-7d %-7d [%d]", ts, "EXIT", comm, e.Pid, e.Ppid, e.ExitCode)
		if e.DurationNs != 0 {
			line += fmt.Sprintf(" (%dms)", e.DurationNs/1000000)
		}
		os.Stdout.WriteString(line + "\n")
	} else {
		fmt.Fprintf(os.Stdout, "%-8s %-5s %-16s %-7d %-7d %s\n", ts, "EXEC", comm, e.Pid, e.Ppid,
			goexample.CString(e.Filename[:]))
	}
	return 0
}

func main() {
	os.Exit(run())
}

func run() int {
	var minDurationNs uint64
	rest := goexample.Options("d:vh", usage, func(opt byte, val string) {
		switch opt {
		case 'd':
			ms, ok := goexample.Positive(val, 1<<63/1000000-1)
			if !ok {
				goexample.Invalid(usage, "duration", val)
			}
			minDurationNs = uint64(ms) * 1000000
		case 'v':
			verbose = true
		}
	})
	_ = rest // like getopt, bootstrap ignores operands

	if err := wasmbpf.SetRodata(bpfObj, "min_duration_ns", minDurationNs); err != nil {
		fmt.Fprintf(os.Stderr, "Failed to set min_duration_ns: %d\n", wasmbpf.Code(err))
		return 1
	}
	if verbose {
		fmt.Fprintf(os.Stderr, "bpf object: %d bytes, min_duration_ns=%d\n", len(bpfObj), minDurationNs)
	}
	obj, err := wasmbpf.Load(bpfObj)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Failed to open and load BPF object")
		return 1
	}
	defer obj.Close()
	for _, prog := range []string{"handle_exec", "handle_exit"} {
		if err := obj.Attach(prog); err != nil {
			fmt.Fprintf(os.Stderr, "Failed to attach %s: %d\n", prog, wasmbpf.Code(err))
			return 1
		}
	}
	if verbose {
		fmt.Fprintln(os.Stderr, "attached handle_exec, handle_exit")
	}
	rb, err := obj.OpenBuffer("rb", handleEvent)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Failed to create ring buffer: %d\n", wasmbpf.Code(err))
		return 1
	}
	defer rb.Close()

	fmt.Printf("%-8s %-5s %-16s %-7s %-7s %s\n", "TIME", "EVENT", "COMM", "PID", "PPID", "FILENAME/EXIT CODE")
	for {
		_, err := rb.Poll(100)
		if errors.Is(err, wasmbpf.ErrInterrupted) { // Ctrl-C / SIGTERM: clean shutdown
			if verbose {
				fmt.Fprintln(os.Stderr, "interrupted, exiting")
			}
			return 0
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "Error polling ring buffer: %d\n", wasmbpf.Code(err))
			return 1
		}
	}
}
