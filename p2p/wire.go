package p2p

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The wire helpers follow the ledger's canonical encoding rules: fixed-width
// big-endian integers, minimal uvarint lengths bounded before anything is
// allocated, a version byte first, no trailing bytes.

var errTruncated = errors.New("input truncated")

// malformedError marks input a peer sent that breaks a protocol's encoding,
// as opposed to a stream that failed or timed out: serving code penalises
// the peer for it. Its message is the wrapped error's.
type malformedError struct{ err error }

func (e malformedError) Error() string { return e.err.Error() }
func (e malformedError) Unwrap() error { return e.err }

// malformed marks err (nil stays nil) as the peer's fault.
func malformed(err error) error {
	if err == nil {
		return nil
	}
	return malformedError{err}
}

// isMalformed reports whether err, or an error it wraps, is the peer's
// malformed input.
func isMalformed(err error) bool {
	var m malformedError
	return errors.As(err, &m)
}

type wireWriter struct{ buf []byte }

func (w *wireWriter) u8(v uint8)   { w.buf = append(w.buf, v) }
func (w *wireWriter) u32(v uint32) { w.buf = binary.BigEndian.AppendUint32(w.buf, v) }
func (w *wireWriter) u64(v uint64) { w.buf = binary.BigEndian.AppendUint64(w.buf, v) }
func (w *wireWriter) raw(b []byte) { w.buf = append(w.buf, b...) }
func (w *wireWriter) bytes(b []byte) {
	w.buf = binary.AppendUvarint(w.buf, uint64(len(b)))
	w.buf = append(w.buf, b...)
}

// wireReader decodes; the first error sticks and later reads return zero
// values, so callers check err once at the end.
type wireReader struct {
	b   []byte
	err error
}

func (r *wireReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *wireReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail(errTruncated)
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *wireReader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *wireReader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *wireReader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// bytes reads a uvarint length of at most max and that many bytes, without
// copying: the result aliases the input.
func (r *wireReader) bytes(what string, max int) []byte {
	if r.err != nil {
		return nil
	}
	v, n := binary.Uvarint(r.b)
	switch {
	case n <= 0:
		r.fail(fmt.Errorf("%s length: bad varint", what))
		return nil
	case n != uvarintLen(v):
		r.fail(fmt.Errorf("%s length: non-minimal varint", what))
		return nil
	case v > uint64(max):
		r.fail(fmt.Errorf("%s: %d bytes, at most %d", what, v, max))
		return nil
	}
	r.b = r.b[n:]
	return r.take(int(v))
}

// rest returns the remaining input.
func (r *wireReader) rest() []byte {
	if r.err != nil {
		return nil
	}
	out := r.b
	r.b = nil
	return out
}

func (r *wireReader) finish(what string) error {
	if r.err != nil {
		return fmt.Errorf("decode %s: %w", what, r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("decode %s: %d trailing bytes", what, len(r.b))
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

// Stream framing: every frame is a minimal uvarint length followed by that
// many bytes. Readers bound the length first and allocate only as bytes
// actually arrive, so a peer announcing a huge frame and sending nothing
// costs us nothing.

// writeFrame writes one length-prefixed frame.
func writeFrame(w io.Writer, body []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(body)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// readFrame reads one frame of at most max bytes. It returns io.EOF only
// when the stream ends cleanly before a frame starts.
func readFrame(r *bufio.Reader, max int) ([]byte, error) {
	v, err := readUvarint(r)
	if err != nil {
		return nil, err
	}
	if v > uint64(max) {
		return nil, malformed(fmt.Errorf("frame of %d bytes, at most %d", v, max))
	}
	var buf bytes.Buffer
	buf.Grow(int(min(v, 64<<10)))
	got, err := buf.ReadFrom(io.LimitReader(r, int64(v)))
	if err != nil {
		return nil, err
	}
	if uint64(got) != v {
		return nil, fmt.Errorf("frame: %w after %d of %d bytes", io.ErrUnexpectedEOF, got, v)
	}
	return buf.Bytes(), nil
}

// readUvarint reads a minimal uvarint; io.EOF before its first byte is
// returned as is.
func readUvarint(r io.ByteReader) (uint64, error) {
	var v uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if i == binary.MaxVarintLen64-1 && b > 1 {
			return 0, malformed(errors.New("frame length overflows"))
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if i > 0 && b == 0 {
				return 0, malformed(errors.New("frame length: non-minimal varint"))
			}
			return v, nil
		}
	}
	return 0, malformed(errors.New("frame length overflows"))
}
