package ledger

import (
	"math"

	"github.com/ledgerd/ledgerd/wire"
)

// The canonical binary encoding. Every value has exactly one encoding:
// integers are fixed-width big-endian, variable-length fields carry a
// minimal uvarint length, booleans and enums are one byte, and every
// top-level type starts with a version byte. Decoders bound every length
// before allocating, reject trailing bytes, and never panic. Package wire
// holds the reader and writer that implement these rules.

// ErrTrailingBytes is returned when input continues after a complete value.
var ErrTrailingBytes = wire.ErrTrailingBytes

// ErrTruncated is returned when input ends inside a value.
var ErrTruncated = wire.ErrTruncated

// addOverflows reports whether a+b overflows uint64.
func addOverflows(a, b uint64) bool { return a > math.MaxUint64-b }
