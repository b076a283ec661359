package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrTruncated is wrapped by every error for input that ends inside a value,
// or whose count of elements needs more bytes than are left.
var ErrTruncated = errors.New("input truncated")

// ErrTrailingBytes is wrapped by Finish's error for input that continues
// after a complete value.
var ErrTrailingBytes = errors.New("trailing bytes after value")

// Reader reads canonical encodings from a byte slice. The first error
// sticks: every later read returns a zero value (nil for slices) and
// consumes nothing, so a decoder reads all its fields and checks Err, or
// calls Finish, once at the end. Slices it returns alias the input, with
// their capacity cut to their length so appending to one cannot overwrite
// the input after it.
type Reader struct {
	b   []byte
	err error
}

// NewReader returns a Reader over b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err is the first error met, or nil.
func (r *Reader) Err() error { return r.err }

// Fail records err as the Reader's error unless one is recorded already.
// Decoders use it for checks of their own (an unknown kind, a value out of
// range), so that they too stop the reads after them.
func (r *Reader) Fail(err error) {
	if r.err == nil && err != nil {
		r.err = err
	}
}

// Len is the number of bytes not read yet (0 after an error).
func (r *Reader) Len() int {
	if r.err != nil {
		return 0
	}
	return len(r.b)
}

// Take returns the next n bytes, aliasing the input, or nil if fewer are
// left.
func (r *Reader) Take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.Fail(fmt.Errorf("%w: %d bytes wanted, %d left", ErrTruncated, n, len(r.b)))
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

// Rest returns every byte not read yet, aliasing the input, and leaves
// nothing to read. It returns nil after an error.
func (r *Reader) Rest() []byte {
	if r.err != nil {
		return nil
	}
	out := r.b
	r.b = nil
	return out
}

// Fixed fills dst with the next len(dst) bytes. On error dst is left as
// it is.
func (r *Reader) Fixed(dst []byte) {
	if b := r.Take(len(dst)); b != nil {
		copy(dst, b)
	}
}

// U8 reads one byte.
func (r *Reader) U8() uint8 {
	if b := r.Take(1); b != nil {
		return b[0]
	}
	return 0
}

// U16 reads 2 bytes, big-endian.
func (r *Reader) U16() uint16 {
	if b := r.Take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

// U32 reads 4 bytes, big-endian.
func (r *Reader) U32() uint32 {
	if b := r.Take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// U64 reads 8 bytes, big-endian.
func (r *Reader) U64() uint64 {
	if b := r.Take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// I64 reads 8 bytes, big-endian two's complement.
func (r *Reader) I64() int64 { return int64(r.U64()) }

// Bool reads a one-byte flag, which must be 0 or 1.
func (r *Reader) Bool(what string) bool {
	switch v := r.U8(); {
	case r.err != nil:
		return false
	case v > 1:
		r.Fail(fmt.Errorf("%s: flag %d, want 0 or 1", what, v))
		return false
	default:
		return v == 1
	}
}

// Version reads the version byte of what and fails unless it is want.
func (r *Reader) Version(what string, want uint8) {
	if v := r.U8(); r.err == nil && v != want {
		r.Fail(fmt.Errorf("%s: unknown encoding version %d, want %d", what, v, want))
	}
}

// Uvarint reads a minimal uvarint and fails if it is above limit. what
// names the field in the error.
func (r *Reader) Uvarint(what string, limit uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	switch {
	case n == 0:
		r.Fail(fmt.Errorf("%s: varint: %w", what, ErrTruncated))
		return 0
	case n < 0:
		r.Fail(fmt.Errorf("%s: varint overflows 64 bits", what))
		return 0
	case n != UvarintLen(v):
		r.Fail(fmt.Errorf("%s: non-minimal varint", what))
		return 0
	case v > limit:
		r.Fail(fmt.Errorf("%s: %d, at most %d", what, v, limit))
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Count reads an element count of at most limit. When every element takes
// at least minSize bytes, a count the bytes left cannot hold fails as
// truncated, so a forged count never makes the caller allocate more than
// the input justifies. what names the elements in the error.
func (r *Reader) Count(what string, limit, minSize int) int {
	n := r.Uvarint(what+" count", uint64(max(limit, 0)))
	if r.err != nil {
		return 0
	}
	if minSize > 0 && n > uint64(len(r.b)/minSize) {
		r.Fail(fmt.Errorf("%s count %d: %w: %d bytes left, each takes at least %d", what, n, ErrTruncated, len(r.b), minSize))
		return 0
	}
	return int(n)
}

// Prefixed reads a minimal uvarint length of at most limit bytes, then that
// many bytes, aliasing the input. what names the field in the error.
func (r *Reader) Prefixed(what string, limit int) []byte {
	n := r.Uvarint(what+" length", uint64(max(limit, 0)))
	if r.err != nil {
		return nil
	}
	b := r.Take(int(n))
	if r.err != nil {
		r.err = fmt.Errorf("%s: %w", what, r.err)
	}
	return b
}

// PrefixedString is Prefixed for a string, which it copies out of the
// input.
func (r *Reader) PrefixedString(what string, limit int) string {
	return string(r.Prefixed(what, limit))
}

// Finish reports the first error met, or ErrTrailingBytes if input is
// left, each wrapped as "decode what: ...". A decoder returns it as its
// own error.
func (r *Reader) Finish(what string) error {
	if r.err != nil {
		return fmt.Errorf("decode %s: %w", what, r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("decode %s: %w (%d)", what, ErrTrailingBytes, len(r.b))
	}
	return nil
}

// UvarintLen is the length of the minimal uvarint encoding of v (what
// Writer.Uvarint writes), for callers that bound an encoding's size
// before writing it.
func UvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
