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
