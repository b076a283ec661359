package statetree

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/ledgerd/ledgerd/ledger/kv"
)

// fuzzSeeds are encodings of real proofs of every kind plus near misses.
func fuzzSeeds(f *testing.F) [][]byte {
	db := kv.NewMem()
	tr := New(db, nil)
	b := db.NewBatch()
	var cs []Change
	for i := range 64 {
		cs = append(cs, Change{Key: [32]byte{byte(i * 4), byte(i)}, Value: []byte{byte(i) + 1}})
	}
	if _, err := tr.Commit(b, 0, 1, cs); err != nil {
		f.Fatal(err)
	}
	if err := db.Write(b, false); err != nil {
		f.Fatal(err)
	}
	var seeds [][]byte
	for _, k := range [][32]byte{{0, 0}, {4, 1}, {1}, {0xff}, {0, 0, 1}} {
		for _, v := range []uint64{0, 1} {
			_, p, err := tr.Prove(v, k)
			if err != nil {
				f.Fatal(err)
			}
			enc, err := p.MarshalBinary()
			if err != nil {
				f.Fatal(err)
			}
			seeds = append(seeds, enc)
		}
	}
	seeds = append(seeds, nil, []byte{1}, []byte{1, 0, 0, 0}, []byte{1, 1}, []byte{2, 0, 0, 0},
		[]byte{1, 0, 1, 0}, []byte{1, 0, 0, 1}, append([]byte{1, 0, 0, 1}, make([]byte, 32)...))
	return seeds
}

// FuzzUnmarshalProof: decoding never panics; what decodes re-encodes to the
// same bytes (one proof, one encoding), survives a JSON round trip, and can
// be handed to Verify safely.
func FuzzUnmarshalProof(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := UnmarshalProof(in)
		if err != nil {
			if p != nil {
				t.Fatal("a proof returned along with an error")
			}
			return
		}
		out, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded proof does not encode: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", in, out)
		}
		js, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
		var q Proof
		if err := json.Unmarshal(js, &q); err != nil {
			t.Fatalf("UnmarshalJSON(%s): %v", js, err)
		}
		if again, _ := q.MarshalBinary(); !bytes.Equal(again, in) {
			t.Fatal("JSON round trip changed the proof")
		}
		var key [32]byte
		if p.Leaf != nil {
			key = p.Leaf.Key
		}
		_ = Verify(EmptyRoot, key, nil, p)
		_ = Verify(EmptyRoot, key, []byte{1}, p)
	})
}

// storedSeeds returns what a real tree stores: every node, root record and
// stale-index entry of a few versions, keyed by record tag (prefix and tag
// stripped from the keys).
func storedSeeds(f *testing.F) (nodes, roots, stale [][]byte) {
	db := kv.NewMem()
	tr := New(db, []byte("s/"))
	for v := uint64(1); v <= 3; v++ {
		var cs []Change
		for i := range 20 {
			cs = append(cs, Change{Key: [32]byte{byte(i * 12), byte(v)}, Value: []byte{byte(i), byte(v)}, Meta: []byte{byte(i)}[:i%2]})
		}
		b := db.NewBatch()
		if _, err := tr.Commit(b, v-1, v, cs); err != nil {
			f.Fatal(err)
		}
		if err := db.Write(b, false); err != nil {
			f.Fatal(err)
		}
	}
	for tag, into := range map[byte]*[][]byte{tagNode: &nodes, tagRoot: &roots, tagStale: &stale} {
		if err := db.Iterate([]byte{'s', '/', tag}, func(k, v []byte) bool {
			if tag == tagStale {
				*into = append(*into, bytes.Clone(k[3:]))
			} else {
				*into = append(*into, bytes.Clone(v))
			}
			return true
		}); err != nil {
			f.Fatal(err)
		}
	}
	return nodes, roots, stale
}

// FuzzDecodeNode: decoding a stored node never panics; what decodes
// re-encodes to the same bytes (one node, one encoding) and stays within
// the bounds (a value, meta within MaxMetaSize, children that are valid
// refs over two leaves at least).
func FuzzDecodeNode(f *testing.F) {
	nodes, _, _ := storedSeeds(f)
	for _, n := range nodes {
		f.Add(n)
	}
	f.Add([]byte{tagLeaf})
	f.Add(append(append([]byte{tagLeaf}, make([]byte, 32)...), 0x01, 0x01))
	f.Add(make([]byte, innerSize))
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := decodeNode(in)
		if err != nil {
			if n != nil {
				t.Fatal("a node returned along with an error")
			}
			return
		}
		if out := n.encode(); !bytes.Equal(out, in) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", in, out)
		}
		if n.leaf {
			if len(n.value) == 0 || len(n.meta) > MaxMetaSize || (n.meta != nil && len(n.meta) == 0) {
				t.Fatalf("leaf with %d bytes of value and %d of meta", len(n.value), len(n.meta))
			}
			return
		}
		for _, r := range []ref{n.left, n.right} {
			if err := r.check(); err != nil {
				t.Fatal(err)
			}
		}
		if n.left.leaves+n.right.leaves < 2 {
			t.Fatal("an inner node over fewer than two leaves")
		}
		// Checking it at a position never panics either.
		_ = checkNode(n, n.ref(), 3, n.key)
	})
}

// FuzzDecodeRootRecord: a root record decodes only when it is exactly a
// valid ref no later than its version, and then re-encodes to itself.
func FuzzDecodeRootRecord(f *testing.F) {
	_, roots, _ := storedSeeds(f)
	for _, r := range roots {
		f.Add(uint64(3), r)
	}
	f.Add(uint64(0), make([]byte, rootRecordSize))
	f.Fuzz(func(t *testing.T, version uint64, in []byte) {
		r, err := decodeRootRecord(version, in)
		if err != nil {
			return
		}
		if err := r.check(); err != nil || r.version > version {
			t.Fatalf("decoded an invalid root %+v (%v)", r, err)
		}
		if out := encodeRootRecord(r); !bytes.Equal(out, in) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", in, out)
		}
	})
}

// FuzzParseStaleEntry: a stale-index key (without prefix and tag) parses
// only when its position is canonical and older than the version it is
// stale since, and then it is exactly the key staleKey builds.
func FuzzParseStaleEntry(f *testing.F) {
	_, _, stale := storedSeeds(f)
	for _, s := range stale {
		f.Add(s)
	}
	f.Add(make([]byte, 18))
	f.Add(append(encodeU64(5), 0, 0, 0, 0, 0, 0, 0, 1, 1, 0))
	tr := New(kv.NewMem(), nil)
	f.Fuzz(func(t *testing.T, in []byte) {
		since, position, err := parseStaleEntry(in)
		if err != nil {
			return
		}
		version, depth, err := parsePosition(position)
		if err != nil {
			t.Fatalf("an entry parsed with a bad position: %v", err)
		}
		if version >= since {
			t.Fatalf("node of version %d stale since %d", version, since)
		}
		var path [32]byte
		copy(path[:], position[10:])
		if k := tr.staleKey(since, version, depth, path); !bytes.Equal(k[1:], in) {
			t.Fatalf("not the canonical key:\n in  %x\n out %x", in, k[1:])
		}
	})
}
