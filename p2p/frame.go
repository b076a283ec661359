package p2p

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

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
