package store

import (
	"bytes"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
)

// FuzzDecodeRestoreMarker: the restore marker read from disk decodes
// without panicking, and what decodes encodes back to the same bytes.
func FuzzDecodeRestoreMarker(f *testing.F) {
	f.Add(restoreMarker{height: 7, appHash: crypto.Sum([]byte("a")), genesisHash: crypto.Sum([]byte("g"))}.encode())
	f.Add([]byte{1})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := decodeRestoreMarker(in)
		if err != nil {
			return
		}
		if !bytes.Equal(m.encode(), in) {
			t.Fatalf("decoded %x, encodes as %x", in, m.encode())
		}
	})
}

// FuzzDecodeBase: the base height record decodes without panicking, to
// a height of at least 1 written in exactly those 8 bytes.
func FuzzDecodeBase(f *testing.F) {
	f.Add(heightKey(5))
	f.Add(heightKey(0))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := decodeBase(in)
		if err != nil {
			return
		}
		if h == 0 || !bytes.Equal(heightKey(h), in) {
			t.Fatalf("decoded %x as %d", in, h)
		}
	})
}
