package wasmbpf

import (
	"runtime"
	"syscall"
	"unsafe"
)

// DefaultBufferSize is the scratch size of OpenBuffer: the longest sample
// delivered whole (longer ones are cut to it).
const DefaultBufferSize = 256 * 1024

// SampleFunc receives one ring or perf buffer sample. data is valid only
// during the call (copy what you keep). A negative return stops the poll,
// which returns that value as an error; the remaining samples stay queued.
type SampleFunc func(data []byte) int

// Buffer is a ring buffer (BPF_MAP_TYPE_RINGBUF) or perf buffer
// (BPF_MAP_TYPE_PERF_EVENT_ARRAY) map, polled with Poll.
type Buffer struct {
	obj   *Object
	name  string
	fd    int32
	id    int32
	fn    SampleFunc
	data  []byte
	panic any // a panic of fn, raised again once the host call returned
}

// The buffers the host may call back for, by the ctx it passes back.
var (
	buffers = map[int32]*Buffer{}
	lastID  int32
)

// OpenBuffer opens the ring or perf buffer map called name; fn receives its
// samples during Poll.
func (o *Object) OpenBuffer(name string, fn SampleFunc) (*Buffer, error) {
	return o.OpenBufferSized(name, fn, DefaultBufferSize)
}

// OpenBufferSized is OpenBuffer with a scratch buffer of size bytes.
func (o *Object) OpenBufferSized(name string, fn SampleFunc, size int) (*Buffer, error) {
	if fn == nil || size <= 0 || size > 1<<31-1 {
		return nil, &Error{Op: "open buffer", Name: name, Err: errInvalid}
	}
	m, err := o.Map(name)
	if err != nil {
		return nil, &Error{Op: "open buffer", Name: name, Err: err.(*Error).Err}
	}
	lastID++
	b := &Buffer{obj: o, name: name, fd: int32(m.FD), id: lastID, fn: fn, data: make([]byte, size)}
	buffers[b.id] = b
	o.buffers = append(o.buffers, b)
	return b, nil
}

// Poll waits up to timeoutMs milliseconds (-1: no limit) for samples and
// delivers them to the buffer's SampleFunc. It returns how many samples were
// consumed, or an error: ErrInterrupted (errors.Is) when the runner asks the
// guest to stop.
func (b *Buffer) Poll(timeoutMs int) (int, error) {
	if b == nil || b.obj == nil || b.obj.handle == 0 {
		return 0, &Error{Op: "poll", Err: errClosed}
	}
	ret := hostBufferPoll(b.obj.handle, b.fd, b.id, unsafe.Pointer(&b.data[0]), int32(len(b.data)), int32(timeoutMs))
	runtime.KeepAlive(b.data)
	if p := b.panic; p != nil {
		b.panic = nil
		panic(p)
	}
	if err := check(ret, "poll", b.name); err != nil {
		return 0, err
	}
	return int(ret), nil
}

// Sleep waits timeoutMs milliseconds on a buffer nothing is submitted to:
// the one way a guest can sleep that a stop request cuts short (it then
// returns ErrInterrupted). A sample that arrives is delivered and ends the
// wait early.
func (b *Buffer) Sleep(timeoutMs int) error {
	_, err := b.Poll(timeoutMs)
	return err
}

// Close forgets the buffer (the host's poller lives until the object is
// closed).
func (b *Buffer) Close() {
	if b == nil {
		return
	}
	b.release()
	if o := b.obj; o != nil {
		for i, x := range o.buffers {
			if x == b {
				o.buffers = append(o.buffers[:i], o.buffers[i+1:]...)
				break
			}
		}
	}
	b.obj = nil
}

func (b *Buffer) release() { delete(buffers, b.id) }

// deliver runs the SampleFunc of buffer ctx on the size bytes the host
// copied to its scratch buffer at address data.
func deliver(ctx int32, data uintptr, size int32) (ret int32) {
	b := buffers[ctx]
	if b == nil || data != uintptr(unsafe.Pointer(&b.data[0])) || size < 0 || int(size) > len(b.data) {
		return -int32(syscall.EINVAL)
	}
	defer func() {
		if p := recover(); p != nil {
			b.panic = p
			ret = -1
		}
	}()
	return int32(b.fn(b.data[:size:size]))
}
