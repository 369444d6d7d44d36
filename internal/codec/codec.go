// Package codec holds the binary encoding primitives of twice's snapshots
// and journals: an append-style Writer and a Reader with a sticky error.
//
// Integers are varints (encoding/binary), hashes and float bits fixed
// 8 bytes little-endian, strings and byte slices a uvarint length then
// the bytes. A slice that may be nil is written as its length plus one,
// with 0 for nil, so that nil and empty come back as they were.
//
// A Writer may stream to an io.Writer; it keeps a running xxhash64 of all
// bytes written, which Close appends as an 8-byte trailer. Verify checks
// that trailer. Decoding never panics on bad input: the first problem is
// kept as an *Error ("snapshot: truncated at byte N") and every later read
// returns zero values.
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/cespare/xxhash/v2"
)

// ErrCorrupt is matched (errors.Is) by every decoding error.
var ErrCorrupt = errors.New("corrupt data")

// ErrOtherConfig is wrapped by the error of restoring a snapshot with a
// configuration other than the one it was taken with.
var ErrOtherConfig = errors.New("snapshot was taken with another configuration")

// Error is a decoding error at a byte offset.
type Error struct {
	// Name is what was being decoded: "snapshot", "journal".
	Name string
	Off  int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s at byte %d", e.Name, e.Msg, e.Off) }

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *Error) Unwrap() error { return ErrCorrupt }

// flushAt is how much a streaming Writer buffers before it writes.
const flushAt = 1 << 20

// Writer appends encoded values to a buffer and, when it has a sink,
// writes the buffer out in large blocks. Errors are sticky: after the
// first one every call does nothing and Err (and Close) report it.
type Writer struct {
	b    []byte
	out  io.Writer
	sum  *xxhash.Digest
	n    int64
	err  error
	syms map[string]uint64
}

// NewWriter returns a Writer that streams to out; nil out keeps
// everything in memory (see Bytes).
func NewWriter(out io.Writer) *Writer {
	w := &Writer{out: out, sum: xxhash.New()}
	if out != nil {
		w.b = make([]byte, 0, flushAt+64<<10)
	}
	return w
}

// Reset makes w a new Writer to out, keeping its buffer.
func (w *Writer) Reset(out io.Writer) {
	w.b, w.out, w.n, w.err = w.b[:0], out, 0, nil
	w.sum.Reset()
	clear(w.syms)
}

// Err returns the first error met.
func (w *Writer) Err() error { return w.err }

// Fail records err unless an error was recorded already.
func (w *Writer) Fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// Len returns the number of bytes written so far, flushed or not.
func (w *Writer) Len() int64 { return w.n + int64(len(w.b)) }

// Bytes returns the unflushed buffer (everything, for a Writer without a
// sink). It is valid until the next write.
func (w *Writer) Bytes() []byte { return w.b }

func (w *Writer) maybeFlush() {
	if w.out != nil && len(w.b) >= flushAt {
		w.flush()
	}
}

func (w *Writer) flush() {
	if w.out == nil || len(w.b) == 0 {
		return
	}
	w.sum.Write(w.b)
	if w.err == nil {
		if _, err := w.out.Write(w.b); err != nil {
			w.err = err
		}
	}
	w.n += int64(len(w.b))
	w.b = w.b[:0]
}

// Close appends the checksum trailer (xxhash64 of every byte before it)
// and flushes. It returns the first error met.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	w.sum.Write(w.b)
	w.b = binary.LittleEndian.AppendUint64(w.b, w.sum.Sum64())
	if w.out != nil {
		if _, err := w.out.Write(w.b); err != nil {
			w.err = err
		}
		w.n += int64(len(w.b))
		w.b = w.b[:0]
	}
	return w.err
}

// Byte writes one byte.
func (w *Writer) Byte(v byte) { w.b = append(w.b, v); w.maybeFlush() }

// Bool writes a bool as one byte.
func (w *Writer) Bool(v bool) {
	w.b = append(w.b, b2u(v))
	w.maybeFlush()
}

func b2u(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// Uvarint writes an unsigned varint.
func (w *Writer) Uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v); w.maybeFlush() }

// Varint writes a signed (zig-zag) varint.
func (w *Writer) Varint(v int64) { w.b = binary.AppendVarint(w.b, v); w.maybeFlush() }

// Int writes an int as a varint.
func (w *Writer) Int(v int) { w.Varint(int64(v)) }

// Uint64 writes 8 bytes little-endian (hashes: a varint would be longer).
func (w *Writer) Uint64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v); w.maybeFlush() }

// Float64 writes the IEEE 754 bits, so every value comes back exactly.
func (w *Writer) Float64(v float64) { w.Uint64(math.Float64bits(v)) }

// String writes a length-prefixed string.
func (w *Writer) String(s string) { w.b = AppendString(w.b, s); w.maybeFlush() }

// Bytes0 writes a byte slice that may be nil: nil and empty differ.
func (w *Writer) Bytes0(p []byte) {
	if p == nil {
		w.b = append(w.b, 0)
	} else {
		w.b = binary.AppendUvarint(w.b, uint64(len(p))+1)
		w.b = append(w.b, p...)
	}
	w.maybeFlush()
}

// Len0 writes the length of a slice that may be nil (len+1, 0 for nil);
// the elements follow.
func (w *Writer) Len0(n int, isNil bool) {
	if isNil {
		w.Byte(0)
		return
	}
	w.Uvarint(uint64(n) + 1)
}

// Strings writes a string slice that may be nil.
func (w *Writer) Strings(ss []string) {
	w.Len0(len(ss), ss == nil)
	for _, s := range ss {
		w.b = AppendString(w.b, s)
		w.maybeFlush()
	}
}

// Sym writes a string that recurs often (a queue, a job type): the first
// time in full, then as a reference to that first time. Reader.Sym reads
// it; both sides must make the same sequence of Sym calls.
func (w *Writer) Sym(s string) {
	if w.syms == nil {
		w.syms = make(map[string]uint64)
	}
	if i, ok := w.syms[s]; ok {
		w.Uvarint(i + 1)
		return
	}
	w.syms[s] = uint64(len(w.syms))
	w.b = append(w.b, 0)
	w.String(s)
}

// Raw appends bytes as they are.
func (w *Writer) Raw(p []byte) { w.b = append(w.b, p...); w.maybeFlush() }

// AppendString appends a length-prefixed string.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Verify checks the checksum trailer Close wrote and returns the bytes
// before it.
func Verify(name string, data []byte) ([]byte, error) {
	if len(data) < 8 {
		return nil, &Error{Name: name, Off: len(data), Msg: "truncated"}
	}
	body := data[:len(data)-8]
	if xxhash.Sum64(body) != binary.LittleEndian.Uint64(data[len(body):]) {
		return nil, &Error{Name: name, Off: len(body), Msg: "checksum mismatch (corrupt or truncated)"}
	}
	return body, nil
}

// Reader decodes what a Writer wrote. The first error sticks; reads after
// it return zero values.
type Reader struct {
	b    []byte
	off  int
	err  error
	name string
	syms []string
}

// NewReader reads b; name prefixes errors ("snapshot", "journal").
func NewReader(name string, b []byte) *Reader { return &Reader{b: b, name: name} }

// Err returns the first error met.
func (r *Reader) Err() error { return r.err }

// Offset returns the number of bytes consumed.
func (r *Reader) Offset() int { return r.off }

// Remaining returns the number of bytes not read yet.
func (r *Reader) Remaining() int { return len(r.b) - r.off }

// Failf records an error at the current offset, unless one is recorded.
func (r *Reader) Failf(format string, args ...any) {
	if r.err == nil {
		r.err = &Error{Name: r.name, Off: r.off, Msg: fmt.Sprintf(format, args...)}
	}
}

// Fail records err unless an error is recorded already; reads after it
// return zero values.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *Reader) truncated() {
	if r.err == nil {
		r.err = &Error{Name: r.name, Off: len(r.b), Msg: "truncated"}
	}
	r.off = len(r.b)
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.truncated()
		return 0
	}
	v := r.b[r.off]
	r.off++
	return v
}

// Expect reads one byte and fails with "bad tag" unless it is tag.
func (r *Reader) Expect(tag byte, what string) {
	if v := r.Byte(); v != tag && r.err == nil {
		r.off--
		r.Failf("bad tag %#x for %s (want %#x)", v, what, tag)
	}
}

// Bool reads a bool; bytes other than 0 and 1 are an error.
func (r *Reader) Bool() bool {
	v := r.Byte()
	if v > 1 {
		r.off--
		r.Failf("bad bool %#x", v)
		return false
	}
	return v == 1
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	// Fast path: one byte.
	if r.off < len(r.b) && r.b[r.off] < 0x80 {
		v := r.b[r.off]
		r.off++
		return uint64(v)
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		if n == 0 {
			r.truncated()
		} else {
			r.Failf("bad varint")
		}
		return 0
	}
	r.off += n
	return v
}

// Varint reads a signed varint.
func (r *Reader) Varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		if n == 0 {
			r.truncated()
		} else {
			r.Failf("bad varint")
		}
		return 0
	}
	r.off += n
	return v
}

// Int reads an int written by Writer.Int.
func (r *Reader) Int() int {
	v := r.Varint()
	if int64(int(v)) != v {
		r.Failf("int out of range")
		return 0
	}
	return int(v)
}

// Uint32 reads a uvarint that must fit 32 bits.
func (r *Reader) Uint32() uint32 {
	v := r.Uvarint()
	if v > math.MaxUint32 {
		r.Failf("value %d out of range", v)
		return 0
	}
	return uint32(v)
}

// Uint64 reads 8 bytes little-endian.
func (r *Reader) Uint64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b)-r.off < 8 {
		r.truncated()
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v
}

// Float64 reads a float written by Writer.Float64.
func (r *Reader) Float64() float64 { return math.Float64frombits(r.Uint64()) }

// Count reads a number of elements and checks that at least min bytes
// an element are left for them, so that a corrupt count never makes a
// huge allocation.
func (r *Reader) Count(min int) int {
	n := r.Uvarint()
	if r.err != nil {
		return 0
	}
	if min < 1 {
		min = 1
	}
	if n > uint64(r.Remaining()/min) {
		r.Failf("count %d exceeds the data left", n)
		return 0
	}
	return int(n)
}

// Len0 reads a length written by Writer.Len0; isNil reports nil.
func (r *Reader) Len0(min int) (n int, isNil bool) {
	v := r.Uvarint()
	if r.err != nil {
		return 0, true
	}
	if v == 0 {
		return 0, true
	}
	if min < 1 {
		min = 1
	}
	if v-1 > uint64(r.Remaining()/min) {
		r.Failf("count %d exceeds the data left", v-1)
		return 0, true
	}
	return int(v - 1), false
}

// span returns the next n bytes without copying.
func (r *Reader) span(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		r.truncated()
		return nil
	}
	p := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return p
}

// String reads a length-prefixed string.
func (r *Reader) String() string {
	n := r.Uvarint()
	p := r.span(n)
	if len(p) == 0 {
		return ""
	}
	return string(p)
}

// Bytes0 reads a byte slice written by Writer.Bytes0 (a copy).
func (r *Reader) Bytes0() []byte {
	v := r.Uvarint()
	if r.err != nil || v == 0 {
		return nil
	}
	p := r.span(v - 1)
	if r.err != nil {
		return nil
	}
	return append(make([]byte, 0, len(p)), p...)
}

// Strings reads a string slice written by Writer.Strings.
func (r *Reader) Strings() []string {
	n, isNil := r.Len0(1)
	if isNil {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = r.String()
	}
	if r.err != nil {
		return nil
	}
	return ss
}

// Sym reads a string written by Writer.Sym.
func (r *Reader) Sym() string {
	i := r.Uvarint()
	if r.err != nil {
		return ""
	}
	if i == 0 {
		s := r.String()
		if r.err == nil {
			r.syms = append(r.syms, s)
		}
		return s
	}
	if i > uint64(len(r.syms)) {
		r.Failf("bad string reference %d", i)
		return ""
	}
	return r.syms[i-1]
}

// Raw returns the next n bytes without copying.
func (r *Reader) Raw(n int) []byte {
	if n < 0 {
		r.Failf("bad length")
		return nil
	}
	return r.span(uint64(n))
}

// End fails unless every byte was read.
func (r *Reader) End() error {
	if r.err == nil && r.off != len(r.b) {
		r.Failf("%d bytes of trailing data", len(r.b)-r.off)
	}
	return r.err
}
