package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The canonical binary encoding. Every value has exactly one encoding:
// integers are fixed-width big-endian, variable-length fields carry a
// minimal uvarint length, booleans and enums are one byte, and every
// top-level type starts with a version byte. Decoders bound every length
// before allocating, reject trailing bytes, and never panic.

// ErrTrailingBytes is returned when input continues after a complete value.
var ErrTrailingBytes = errors.New("trailing bytes after value")

// ErrTruncated is returned when input ends inside a value.
var ErrTruncated = errors.New("input truncated")

type encoder struct{ buf []byte }

func (e *encoder) u8(v uint8)   { e.buf = append(e.buf, v) }
func (e *encoder) u32(v uint32) { e.buf = binary.BigEndian.AppendUint32(e.buf, v) }
func (e *encoder) u64(v uint64) { e.buf = binary.BigEndian.AppendUint64(e.buf, v) }
func (e *encoder) i64(v int64)  { e.u64(uint64(v)) }
func (e *encoder) fixed(b []byte) {
	e.buf = append(e.buf, b...)
}
func (e *encoder) bytes(b []byte) {
	e.buf = binary.AppendUvarint(e.buf, uint64(len(b)))
	e.buf = append(e.buf, b...)
}
func (e *encoder) str(s string) {
	e.buf = binary.AppendUvarint(e.buf, uint64(len(s)))
	e.buf = append(e.buf, s...)
}
func (e *encoder) count(n int) { e.buf = binary.AppendUvarint(e.buf, uint64(n)) }

// decoder reads canonical encodings. The first error sticks; later reads
// return zero values, so decode functions check d.err once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail(ErrTruncated)
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) u8() uint8 {
	b := d.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (d *decoder) u32() uint32 {
	b := d.take(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (d *decoder) u64() uint64 {
	b := d.take(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func (d *decoder) i64() int64 { return int64(d.u64()) }

func (d *decoder) fixed(dst []byte) {
	b := d.take(len(dst))
	if b != nil {
		copy(dst, b)
	}
}

// uvarint reads a minimal uvarint no larger than max.
func (d *decoder) uvarint(what string, max uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(fmt.Errorf("%s: bad varint", what))
		return 0
	}
	if n != uvarintLen(v) {
		d.fail(fmt.Errorf("%s: non-minimal varint", what))
		return 0
	}
	if v > max {
		d.fail(fmt.Errorf("%s: %d exceeds limit %d", what, v, max))
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(what string, max int) []byte {
	n := d.uvarint(what+" length", uint64(max))
	b := d.take(int(n))
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

func (d *decoder) str(what string, max int) string {
	n := d.uvarint(what+" length", uint64(max))
	b := d.take(int(n))
	return string(b)
}

// count reads an element count, bounded by max and by the bytes left given
// that each element needs at least minSize bytes, so a forged count can
// never make the decoder allocate more than the input justifies.
func (d *decoder) count(what string, max int, minSize int) int {
	n := d.uvarint(what+" count", uint64(max))
	if d.err != nil {
		return 0
	}
	if minSize > 0 && n > uint64(len(d.b)/minSize) {
		d.fail(fmt.Errorf("%s count %d: %w", what, n, ErrTruncated))
		return 0
	}
	return int(n)
}

func (d *decoder) version(what string, want uint8) {
	if v := d.u8(); d.err == nil && v != want {
		d.fail(fmt.Errorf("%s: unknown encoding version %d", what, v))
	}
}

func (d *decoder) finish(what string) error {
	if d.err != nil {
		return fmt.Errorf("decode %s: %w", what, d.err)
	}
	if len(d.b) != 0 {
		return fmt.Errorf("decode %s: %w (%d)", what, ErrTrailingBytes, len(d.b))
	}
	return nil
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// addOverflows reports whether a+b overflows uint64.
func addOverflows(a, b uint64) bool { return a > math.MaxUint64-b }
