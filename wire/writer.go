package wire

import "encoding/binary"

// Writer appends canonical encodings to a byte slice. The zero Writer is
// ready to use and starts from an empty slice.
type Writer struct{ buf []byte }

// NewWriter returns a Writer that appends to buf: pass a slice with spare
// capacity to encode without growing it, or a prefix to extend.
func NewWriter(buf []byte) *Writer { return &Writer{buf: buf} }

// Bytes returns everything written, including the slice NewWriter started
// from. It aliases the Writer's buffer.
func (w *Writer) Bytes() []byte { return w.buf }

// Len is the length of Bytes.
func (w *Writer) Len() int { return len(w.buf) }

// U8 appends one byte.
func (w *Writer) U8(v uint8) { w.buf = append(w.buf, v) }

// U16 appends v as 2 bytes, big-endian.
func (w *Writer) U16(v uint16) { w.buf = binary.BigEndian.AppendUint16(w.buf, v) }

// U32 appends v as 4 bytes, big-endian.
func (w *Writer) U32(v uint32) { w.buf = binary.BigEndian.AppendUint32(w.buf, v) }

// U64 appends v as 8 bytes, big-endian.
func (w *Writer) U64(v uint64) { w.buf = binary.BigEndian.AppendUint64(w.buf, v) }

// I64 appends v as 8 bytes, big-endian two's complement.
func (w *Writer) I64(v int64) { w.U64(uint64(v)) }

// Bool appends 1 for true and 0 for false.
func (w *Writer) Bool(v bool) {
	if v {
		w.U8(1)
	} else {
		w.U8(0)
	}
}

// Uvarint appends v as a minimal uvarint (1 to 10 bytes).
func (w *Writer) Uvarint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }

// Fixed appends b as it is, with no length: for fields whose size the
// format fixes (hashes, keys, signatures, domain tags).
func (w *Writer) Fixed(b []byte) { w.buf = append(w.buf, b...) }

// Prefixed appends the minimal uvarint length of b, then b.
func (w *Writer) Prefixed(b []byte) {
	w.Uvarint(uint64(len(b)))
	w.buf = append(w.buf, b...)
}

// PrefixedString appends the minimal uvarint length of s, then s.
func (w *Writer) PrefixedString(s string) {
	w.Uvarint(uint64(len(s)))
	w.buf = append(w.buf, s...)
}
