package snapshot

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/wire"
)

var bgCtx = context.Background()

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// twoChunkManifest is a manifest of two chunks: the halves of the key
// space at depth 1.
func twoChunkManifest() *Manifest {
	var right [32]byte
	right[0] = 0x80
	return &Manifest{Format: Format, Height: 7, AppHash: [32]byte{0xaa}, Chunks: []ChunkInfo{
		{Depth: 1, Leaves: 2, Size: 200, Hash: [32]byte{1}},
		{Depth: 1, Prefix: right, Leaves: 0, Size: 80, Hash: [32]byte{2}},
	}}
}

// The layouts are written out by hand, so that a change to an encoding
// cannot pass unnoticed: nodes of different versions must cut and encode
// snapshots byte for byte alike.
func TestManifestLayout(t *testing.T) {
	zero31 := strings.Repeat("00", 31)
	want := unhex(t, "01"+"0000000000000007"+"aa"+zero31+"02"+
		"0001"+strings.Repeat("00", 32)+"00000002"+"000000c8"+"01"+zero31+
		"0001"+"80"+zero31+"00000000"+"00000050"+"02"+zero31)
	m := twoChunkManifest()
	got := m.Encode()
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got %x\nwant %x", got, want)
	}
	back, err := DecodeManifest(got)
	if err != nil {
		t.Fatal(err)
	}
	if !equalManifests(back, m) {
		t.Fatalf("decoded %+v, want %+v", back, m)
	}
	if back.ID() != sum(want) {
		t.Fatal("ID is not the SHA-256 of the encoding")
	}
}

func TestChunkLayout(t *testing.T) {
	c := &Chunk{Height: 9, Index: 3, Depth: 2, Prefix: [32]byte{0x40},
		Leaves:   []Leaf{{Key: [32]byte{0x41}, Value: []byte{7, 8}, Meta: []byte{'e'}}},
		Siblings: [][32]byte{{0xb1}, {0xb2}}}
	zero31 := strings.Repeat("00", 31)
	want := unhex(t, "01"+"0000000000000009"+"00000003"+"0002"+"40"+zero31+"01"+
		"41"+zero31+"02"+"0708"+"01"+"65"+
		"b1"+zero31+"b2"+zero31)
	got := c.Encode()
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got %x\nwant %x", got, want)
	}
	if c.Size() != len(want) {
		t.Fatalf("Size %d, encoding %d bytes", c.Size(), len(want))
	}
	back, err := DecodeChunk(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Encode(), want) {
		t.Fatalf("re-encoded %x", back.Encode())
	}
}

func equalManifests(a, b *Manifest) bool { return bytes.Equal(a.Encode(), b.Encode()) }

func TestDecodeManifestRejects(t *testing.T) {
	good := twoChunkManifest().Encode()
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, wire.ErrTruncated},
		{"truncated", good[:len(good)-1], wire.ErrTruncated},
		{"trailing byte", append(bytesClone(good), 0), wire.ErrTrailingBytes},
		{"format 2", append([]byte{2}, good[1:]...), ErrManifestMalformed},
		{"count over the bound", append(bytesClone(good[:41]), 0x81, 0x80, 0x04), ErrManifestMalformed},
		{"count beyond the bytes", append(bytesClone(good[:41]), 3), wire.ErrTruncated},
		{"oversized", make([]byte, MaxManifestBytes+1), ErrManifestMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeManifest(tc.in)
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrManifestMalformed) {
				t.Fatalf("err %v, want one wrapping %v and ErrManifestMalformed", err, tc.want)
			}
		})
	}
}

func TestManifestValidateBasic(t *testing.T) {
	var half, quarter3 [32]byte
	half[0] = 0x80
	quarter3[0] = 0xc0
	mk := func(edit func(m *Manifest)) *Manifest {
		m := twoChunkManifest()
		edit(m)
		return m
	}
	cases := []struct {
		name string
		m    *Manifest
		want error // nil: valid
	}{
		{"two halves", twoChunkManifest(), nil},
		{"one chunk, the whole space", mk(func(m *Manifest) {
			m.Chunks = []ChunkInfo{{Depth: 0, Size: 48, Leaves: 0}}
		}), nil},
		{"uneven depths", mk(func(m *Manifest) {
			m.Chunks = append(m.Chunks[:1], ChunkInfo{Depth: 2, Prefix: half, Size: 200}, ChunkInfo{Depth: 2, Prefix: quarter3, Size: 200})
		}), nil},
		{"gap", mk(func(m *Manifest) { m.Chunks[1].Depth, m.Chunks[1].Prefix = 2, quarter3 }), ErrManifestPartition},
		{"overlap", mk(func(m *Manifest) { m.Chunks[0].Depth = 0 }), ErrManifestPartition},
		{"stops short", mk(func(m *Manifest) { m.Chunks[1].Depth = 2 }), ErrManifestPartition},
		{"prefix bits below the depth", mk(func(m *Manifest) { m.Chunks[0].Prefix[31] = 1 }), ErrManifestPartition},
		{"out of order", mk(func(m *Manifest) { m.Chunks[0], m.Chunks[1] = m.Chunks[1], m.Chunks[0] }), ErrManifestPartition},
		{"no chunks", mk(func(m *Manifest) { m.Chunks = nil }), ErrManifestMalformed},
		{"height 0", mk(func(m *Manifest) { m.Height = 0 }), ErrManifestMalformed},
		{"depth 257", mk(func(m *Manifest) { m.Chunks[1].Depth = 257 }), ErrManifestMalformed},
		{"too many leaves", mk(func(m *Manifest) { m.Chunks[0].Leaves, m.Chunks[0].Size = MaxChunkLeaves+1, MaxChunkBytes }), ErrManifestMalformed},
		{"too large", mk(func(m *Manifest) { m.Chunks[0].Size = MaxChunkBytes + 1 }), ErrManifestMalformed},
		{"too small for its leaves", mk(func(m *Manifest) { m.Chunks[0].Leaves = 100 }), ErrManifestMalformed},
		{"one key at the bottom", mk(func(m *Manifest) { m.Chunks = staircase() }), nil},
		{"two leaves in one key", mk(func(m *Manifest) {
			m.Chunks = staircase()
			m.Chunks[len(m.Chunks)-1].Leaves = 2
		}), ErrManifestMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.m.ValidateBasic()
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := DecodeManifest(tc.m.Encode()); err != nil {
					t.Fatalf("a valid manifest does not decode: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if _, err := DecodeManifest(tc.m.Encode()); !errors.Is(err, tc.want) {
				t.Fatalf("decode: err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAdvance(t *testing.T) {
	var ff [32]byte
	for i := range ff {
		ff[i] = 0xff
	}
	cases := []struct {
		p     [32]byte
		depth int
		next  [32]byte
		end   bool
	}{
		{[32]byte{}, 0, [32]byte{}, true},
		{[32]byte{}, 1, [32]byte{0x80}, false},
		{[32]byte{0x80}, 1, [32]byte{}, true},
		{[32]byte{0x7f}, 8, [32]byte{0x80}, false},
		{[32]byte{0x00, 0xff}, 16, [32]byte{0x01, 0x00}, false},
		{[32]byte{0x00, 0xfe}, 15, [32]byte{0x01, 0x00}, false},
		{ff, 256, [32]byte{}, true},
	}
	for _, tc := range cases {
		next, end := advance(tc.p, tc.depth)
		if next != tc.next || end != tc.end {
			t.Errorf("advance(%x, %d) = %x, %v; want %x, %v", tc.p[:2], tc.depth, next[:2], end, tc.next[:2], tc.end)
		}
	}
}

func TestCanonicalPrefix(t *testing.T) {
	cases := []struct {
		p     [32]byte
		depth int
		want  bool
	}{
		{[32]byte{}, 0, true},
		{[32]byte{0x80}, 0, false},
		{[32]byte{0x80}, 1, true},
		{[32]byte{0xc0}, 1, false},
		{[32]byte{0xff, 0x80}, 9, true},
		{[32]byte{0xff, 0xc0}, 9, false},
		{[32]byte{31: 1}, 255, false},
		{[32]byte{31: 1}, 256, true},
	}
	for _, tc := range cases {
		if got := canonicalPrefix(tc.p, tc.depth); got != tc.want {
			t.Errorf("canonicalPrefix(%x.., %d) = %v", tc.p[:2], tc.depth, got)
		}
	}
}

func TestDecodeChunkRejects(t *testing.T) {
	c := &Chunk{Height: 9, Index: 0, Depth: 1, Leaves: []Leaf{{Key: [32]byte{1}, Value: []byte{7}, Meta: []byte{'e'}}}, Siblings: [][32]byte{{2}}}
	good := c.Encode()
	if _, err := DecodeChunk(good); err != nil {
		t.Fatal(err)
	}
	depth257 := bytesClone(good)
	depth257[13], depth257[14] = 0x01, 0x01
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"truncated sibling", good[:len(good)-1], ErrChunkMalformed},
		{"extra sibling", append(bytesClone(good), make([]byte, 32)...), ErrChunkMalformed},
		{"trailing byte", append(bytesClone(good), 0), ErrChunkMalformed},
		{"format 2", append([]byte{2}, good[1:]...), ErrChunkMalformed},
		{"depth 257", depth257, ErrChunkMalformed},
		{"oversized", make([]byte, MaxChunkBytes+1), ErrChunkTooLarge},
		{"leaf count beyond the bytes", append(bytesClone(good[:chunkHeader]), 0x20), ErrChunkMalformed},
		{"leaf count over the bound", append(bytesClone(good[:chunkHeader]), 0x81, 0x38), ErrChunkMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeChunk(tc.in); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func bytesClone(b []byte) []byte { return append([]byte(nil), b...) }

// staircase is the partition into the left halves of ever deeper
// subtrees along the all-ones path, down to the single last key: 257
// chunks, the deepest at depth 256.
func staircase() []ChunkInfo {
	var out []ChunkInfo
	var p [32]byte
	for d := 1; d <= MaxDepth; d++ {
		out = append(out, ChunkInfo{Depth: d, Prefix: p, Size: 10000})
		p[(d-1)/8] |= 0x80 >> uint((d-1)%8)
	}
	return append(out, ChunkInfo{Depth: MaxDepth, Prefix: p, Size: 10000, Leaves: 1})
}
