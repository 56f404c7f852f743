// go_runqlat: runqlat's guest in Go (GOOS=wasip1, standard library and the
// wasmbpf SDK only): a run queue latency histogram read from the BPF array
// map `hist` every interval by walking its keys.
// Usage: go_runqlat [-i SECS] [-c COUNT] [-p PID] [-h]
package main

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"wasm-bpf.dev/goexample"
	"wasm-bpf.dev/wasmbpf"
)

// runqlat.bpf.o of ../runqlat, copied here by the Makefile.
//
//go:embed runqlat.bpf.o
var bpfObj []byte

// maxSlots is runqlat.h's MAX_SLOTS: hist[slot] counts latencies of
// [2^slot, 2^(slot+1)) us.
const maxSlots = 26

func usage(w io.Writer, prog string) {
	fmt.Fprintf(w, "Summarize run queue (scheduler) latency as a histogram.\n"+
		"\n"+
		"USAGE: %s [-i SECS] [-c COUNT] [-p PID] [-h]\n"+
		"  -i SECS   print a histogram every SECS seconds (default 1)\n"+
		"  -c COUNT  exit (status 0) after COUNT histograms (default: run\n"+
		"            until Ctrl-C)\n"+
		"  -p PID    only trace the threads of process PID\n"+
		"  -h        show this help\n", prog)
}

func stars(b *strings.Builder, val, max uint64, width int) {
	n := 0
	if max != 0 {
		n = int(val * uint64(width) / max)
	}
	if n > width {
		n = width
	}
	b.WriteString(strings.Repeat("*", n))
	b.WriteString(strings.Repeat(" ", width-n))
	if val > max {
		b.WriteByte('+')
	}
}

// printLog2Hist is bcc's print_log2_hist.
func printLog2Hist(vals []uint64, unit string) {
	var max uint64
	idxMax := -1
	for i, v := range vals {
		if v > 0 {
			idxMax = i
		}
		if v > max {
			max = v
		}
	}
	if idxMax < 0 {
		fmt.Println("(no events)")
		return
	}
	var b strings.Builder
	pad, unitWidth, numWidth, barWidth := 5, 19, 10, 40
	if idxMax > 32 {
		pad, unitWidth, numWidth, barWidth = 15, 29, 20, 20
	}
	fmt.Fprintf(&b, "%*s%-*s : count    distribution\n", pad, "", unitWidth, unit)
	for i := 0; i <= idxMax; i++ {
		low := uint64(1) << (i + 1) >> 1
		high := uint64(1)<<(i+1) - 1
		if low == high {
			low--
		}
		fmt.Fprintf(&b, "%*d -> %-*d : %-8d |", numWidth, low, numWidth, high, vals[i])
		stars(&b, vals[i], max, barWidth)
		b.WriteString("|\n")
	}
	os.Stdout.WriteString(b.String())
}

// readAndClear reads every slot by walking the map's keys, then zeroes it.
func readAndClear(hist wasmbpf.Map) ([]uint64, error) {
	vals := make([]uint64, maxSlots)
	var prev *uint32
	for {
		key, err := wasmbpf.NextKey(hist, prev)
		if errors.Is(err, wasmbpf.ErrNotFound) {
			return vals, nil
		}
		if err != nil {
			return nil, err
		}
		v, err := wasmbpf.Lookup[uint32, uint64](hist, key)
		if err != nil {
			return nil, err
		}
		if key < maxSlots {
			vals[key] = v
		}
		if err := wasmbpf.Update(hist, key, uint64(0), wasmbpf.Any); err != nil {
			return nil, err
		}
		prev = &key
	}
}

func main() {
	os.Exit(run())
}

func run() int {
	interval, count, pid := int64(1), int64(0), int64(0)
	rest := goexample.Options("i:c:p:h", usage, func(opt byte, val string) {
		var ok bool
		switch opt {
		case 'i':
			if interval, ok = goexample.Positive(val, math.MaxInt32/1000); !ok {
				goexample.Invalid(usage, "interval", val)
			}
		case 'c':
			if count, ok = goexample.Positive(val, math.MaxInt64); !ok {
				goexample.Invalid(usage, "count", val)
			}
		case 'p':
			if pid, ok = goexample.Positive(val, math.MaxInt32); !ok {
				goexample.Invalid(usage, "PID", val)
			}
		}
	})
	if len(rest) > 0 {
		usage(os.Stderr, os.Args[0])
		return 1
	}

	if err := wasmbpf.SetRodata(bpfObj, "targ_tgid", int32(pid)); err != nil {
		fmt.Fprintf(os.Stderr, "Failed to set targ_tgid: %d\n", wasmbpf.Code(err))
		return 1
	}
	obj, err := wasmbpf.Load(bpfObj)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Failed to open and load BPF object")
		return 1
	}
	defer obj.Close()
	for _, prog := range []string{"handle_sched_wakeup", "handle_sched_wakeup_new", "handle_sched_switch"} {
		if err := obj.Attach(prog); err != nil {
			fmt.Fprintf(os.Stderr, "Failed to attach %s: %d\n", prog, wasmbpf.Code(err))
			return 1
		}
	}
	hist, err := obj.Map("hist")
	if err != nil {
		fmt.Fprintf(os.Stderr, "Failed to find map hist: %d\n", wasmbpf.Code(err))
		return 1
	}
	// `tick` stays empty: sleeping on it with the interval as timeout is the
	// interval wait, which Ctrl-C ends
	tick, err := obj.OpenBufferSized("tick", func([]byte) int { return 0 }, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Failed to open ring buffer tick: %d\n", wasmbpf.Code(err))
		return 1
	}

	fmt.Println("Tracing run queue latency... Hit Ctrl-C to end.")
	for n := int64(0); count == 0 || n < count; n++ {
		err := tick.Sleep(int(interval * 1000))
		if errors.Is(err, wasmbpf.ErrInterrupted) { // Ctrl-C / SIGTERM: clean shutdown
			return 0
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "Error polling ring buffer: %d\n", wasmbpf.Code(err))
			return 1
		}
		vals, err := readAndClear(hist)
		if err != nil {
			fmt.Fprintf(os.Stderr, "Failed to read map hist: %d\n", wasmbpf.Code(err))
			return 1
		}
		fmt.Printf("\n%s\n", goexample.Now())
		printLog2Hist(vals, "usecs")
	}
	return 0
}
