package snapshot

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
)

// smallSnapshot is a snapshot of a state of 12 leaves cut into subtrees
// of at most 2 leaves: the format's shape at a size fuzzing can mutate.
// (Build's partition would keep 12 leaves in one chunk; the verification
// does not care how the partition was chosen.)
func smallSnapshot(tb testing.TB) (*Manifest, [][]byte, [32]byte) {
	var leaves []Leaf
	for i := range 12 {
		leaves = append(leaves, recordLeaf([]byte(fmt.Sprintf("k%d", i)), []byte{byte(i + 1), 0xab}))
	}
	tree := newMemTree(leaves)
	parts, err := tree.Partition(1, 2)
	if err != nil {
		tb.Fatal(err)
	}
	m := &Manifest{Format: Format, Height: 5, AppHash: tree.root()}
	var chunks [][]byte
	for i, p := range parts {
		c := &Chunk{Height: 5, Index: uint32(i), Depth: p.Depth, Prefix: p.Prefix, Leaves: tree.under(p.Depth, p.Prefix), Siblings: p.Siblings}
		raw := c.Encode()
		chunks = append(chunks, raw)
		m.Chunks = append(m.Chunks, ChunkInfo{Depth: p.Depth, Prefix: p.Prefix, Leaves: uint32(len(c.Leaves)), Size: uint32(len(raw)), Hash: sha256.Sum256(raw)})
	}
	if err := m.ValidateBasic(); err != nil {
		tb.Fatal(err)
	}
	return m, chunks, tree.root()
}

// FuzzDecodeManifest: any input decodes without panicking, and one that
// decodes is a valid manifest whose encoding is exactly the input.
func FuzzDecodeManifest(f *testing.F) {
	m, _, _ := smallSnapshot(f)
	f.Add(m.Encode())
	f.Add(twoChunkManifest().Encode())
	f.Add((&Manifest{Format: Format, Height: 1, Chunks: []ChunkInfo{{Size: 48}}}).Encode())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := DecodeManifest(in)
		if err != nil {
			if !errors.Is(err, ErrManifestMalformed) && !errors.Is(err, ErrManifestPartition) {
				t.Fatalf("error %v wraps neither manifest sentinel", err)
			}
			return
		}
		if err := m.ValidateBasic(); err != nil {
			t.Fatalf("decoded an invalid manifest: %v", err)
		}
		if !bytes.Equal(m.Encode(), in) {
			t.Fatalf("decoded %x, encodes as %x", in, m.Encode())
		}
	})
}

// FuzzDecodeChunk: any input decodes without panicking, within the
// bounds, and one that decodes encodes back to exactly the input.
func FuzzDecodeChunk(f *testing.F) {
	_, chunks, _ := smallSnapshot(f)
	for _, c := range chunks {
		f.Add(c)
	}
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := DecodeChunk(in)
		if err != nil {
			if !errors.Is(err, ErrChunkMalformed) && !errors.Is(err, ErrChunkTooLarge) {
				t.Fatalf("error %v wraps neither chunk decoding sentinel", err)
			}
			return
		}
		if len(c.Leaves) > MaxChunkLeaves || len(c.Siblings) != c.Depth || c.Depth > MaxDepth {
			t.Fatalf("decoded %d leaves, %d siblings at depth %d", len(c.Leaves), len(c.Siblings), c.Depth)
		}
		if !bytes.Equal(c.Encode(), in) || c.Size() != len(in) {
			t.Fatalf("decoded %x, encodes as %x", in, c.Encode())
		}
	})
}

// FuzzVerifyChunk: against a fixed snapshot, no input panics the
// verification, every refusal says why with one of the sentinels, and
// the only inputs accepted are the snapshot's own chunks, byte for byte.
func FuzzVerifyChunk(f *testing.F) {
	m, chunks, root := smallSnapshot(f)
	for _, c := range chunks {
		f.Add(c)
	}
	reasons := []error{ErrChunkTooLarge, ErrChunkMalformed, ErrChunkStale, ErrChunkIndex, ErrChunkPosition, ErrChunkLeaves, ErrChunkProof, ErrManifestMismatch}
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := VerifyChunk(m, root, in)
		if err != nil {
			n := 0
			for _, r := range reasons {
				if errors.Is(err, r) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %v wraps %d of the chunk sentinels", err, n)
			}
			return
		}
		if int(c.Index) >= len(chunks) || !bytes.Equal(in, chunks[c.Index]) {
			t.Fatalf("accepted %x as chunk %d", in, c.Index)
		}
	})
}

// FuzzRestore feeds a restore a fuzzed sequence of the snapshot's
// chunks, mutated or not: it never panics, never imports a chunk that
// does not verify, and finishes with the right root whenever every
// chunk got in.
func FuzzRestore(f *testing.F) {
	m, chunks, root := smallSnapshot(f)
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
	f.Add([]byte{11, 10, 9, 8, 0x85, 7, 6, 5, 4, 3, 2, 1, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		imp := newMemImporter()
		r, err := NewRestorer(m, root, imp)
		if err != nil {
			t.Fatal(err)
		}
		for i, op := range ops {
			raw := bytesClone(chunks[int(op&0x7f)%len(chunks)])
			if op&0x80 != 0 && i+1 < len(ops) { // mutate one byte, chosen by the next op
				raw[int(ops[i+1])%len(raw)] ^= 1 + ops[i+1]>>4
			}
			before := imp.imported
			if err := r.Add(raw); err != nil && imp.imported != before {
				t.Fatalf("a refused chunk was imported: %v", err)
			}
		}
		err = r.Finish()
		if len(r.Missing()) == 0 {
			if err != nil {
				t.Fatalf("every chunk in, Finish: %v", err)
			}
			want := newMemTree(nil)
			want.leaves = imp.sortedLeaves()
			if want.root() != root {
				t.Fatal("the imported leaves do not make the app hash")
			}
		} else if !errors.Is(err, ErrIncomplete) {
			t.Fatalf("chunks missing, Finish: %v", err)
		}
	})
}
