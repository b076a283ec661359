package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record is one log entry: an input of the consensus machine at Height.
type Record struct {
	// Height is the consensus height the input belongs to.
	Height uint64
	// Kind says what Data holds: KindMessage or KindEndHeight.
	Kind uint8
	// Data is opaque to the log; at most MaxRecordSize bytes.
	Data []byte
}

// The record kinds.
const (
	// KindMessage is an opaque consensus input (a message received, a
	// timeout fired, a value proposed), encoded by the consensus package.
	KindMessage uint8 = 1
	// KindEndHeight marks Height as fully committed: no input of Height
	// follows it, and a replay of any later height starts after it.
	KindEndHeight uint8 = 2
)

// MaxRecordSize is the largest Record.Data the log accepts. Append refuses
// larger records and the decoder rejects frames claiming more, so reading a
// log never allocates more than this per record.
const MaxRecordSize = 8 << 20

// Frame layout constants.
const (
	frameHeaderSize   = 8         // crc32c + length
	payloadHeaderSize = 1 + 1 + 8 // version + kind + height
	maxPayloadSize    = payloadHeaderSize + MaxRecordSize
	// MaxFrameSize is the largest encoded frame of one record.
	MaxFrameSize = frameHeaderSize + maxPayloadSize

	recordVersion = 1
)

// Errors returned (wrapped) by DecodeFrame, Open and Replay.
var (
	// ErrTorn means the input ended inside a frame: a write was cut short.
	ErrTorn = errors.New("wal: torn frame")
	// ErrCorrupt means a frame's CRC or length is wrong: the bytes are damaged.
	ErrCorrupt = errors.New("wal: corrupt frame")
	// ErrUnsupported means a frame is intact (its CRC is valid) but its
	// payload has a version or kind this code does not know. It signals a
	// log written by other software, not damage, so it is never cut.
	ErrUnsupported = errors.New("wal: unsupported record")
	// ErrTooLarge is returned by Append for a record over MaxRecordSize.
	ErrTooLarge = errors.New("wal: record too large")
	// ErrClosed is returned by every method of a closed log.
	ErrClosed = errors.New("wal: log closed")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checkRecord reports whether r may be written.
func checkRecord(r Record) error {
	if len(r.Data) > MaxRecordSize {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(r.Data), MaxRecordSize)
	}
	if r.Kind != KindMessage && r.Kind != KindEndHeight {
		return fmt.Errorf("%w: kind %d", ErrUnsupported, r.Kind)
	}
	return nil
}

// AppendFrame appends the frame encoding r to dst and returns the extended
// slice. It fails only for a record Append would refuse.
func AppendFrame(dst []byte, r Record) ([]byte, error) {
	if err := checkRecord(r); err != nil {
		return dst, err
	}
	n := payloadHeaderSize + len(r.Data)
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, 0) // CRC, filled below
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, recordVersion, r.Kind)
	dst = binary.BigEndian.AppendUint64(dst, r.Height)
	dst = append(dst, r.Data...)
	crc := crc32.Checksum(dst[start+4:], castagnoli)
	binary.BigEndian.PutUint32(dst[start:], crc)
	return dst, nil
}

// frameLength validates a frame header and returns its payload length.
func frameLength(hdr []byte) (int, error) {
	n := binary.BigEndian.Uint32(hdr[4:8])
	if n < payloadHeaderSize || n > maxPayloadSize {
		return 0, fmt.Errorf("%w: impossible length %d", ErrCorrupt, n)
	}
	return int(n), nil
}

// decodePayload checks the CRC of a frame with header hdr and payload p, and
// decodes the record. The record's Data aliases p.
func decodePayload(hdr, p []byte) (Record, error) {
	crc := crc32.Update(crc32.Checksum(hdr[4:8], castagnoli), castagnoli, p)
	if crc != binary.BigEndian.Uint32(hdr[:4]) {
		return Record{}, fmt.Errorf("%w: CRC mismatch", ErrCorrupt)
	}
	if p[0] != recordVersion {
		return Record{}, fmt.Errorf("%w: version %d", ErrUnsupported, p[0])
	}
	r := Record{Kind: p[1], Height: binary.BigEndian.Uint64(p[2:10]), Data: p[10:]}
	if r.Kind != KindMessage && r.Kind != KindEndHeight {
		return Record{}, fmt.Errorf("%w: kind %d", ErrUnsupported, r.Kind)
	}
	return r, nil
}

// DecodeFrame decodes the frame at the start of b and returns its record and
// the number of bytes it occupies. The record's Data aliases b. Errors wrap
// ErrTorn (b ends inside the frame), ErrCorrupt (bad length or CRC) or
// ErrUnsupported (intact frame of an unknown version or kind). It never
// panics and never allocates: a claimed length is checked against
// MaxRecordSize and against len(b) before it is used.
func DecodeFrame(b []byte) (Record, int, error) {
	if len(b) < frameHeaderSize {
		return Record{}, 0, fmt.Errorf("%w: %d bytes of header", ErrTorn, len(b))
	}
	n, err := frameLength(b[:frameHeaderSize])
	if err != nil {
		return Record{}, 0, err
	}
	if len(b)-frameHeaderSize < n {
		return Record{}, 0, fmt.Errorf("%w: %d of %d payload bytes", ErrTorn, len(b)-frameHeaderSize, n)
	}
	r, err := decodePayload(b[:frameHeaderSize], b[frameHeaderSize:frameHeaderSize+n])
	if err != nil {
		return Record{}, 0, err
	}
	return r, frameHeaderSize + n, nil
}
