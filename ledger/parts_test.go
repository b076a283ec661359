package ledger_test

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// bigBlock is a block whose encoding spans at least minParts parts.
func bigBlock(r *rand.Rand, minParts int) *ledger.Block {
	n := minParts*ledger.BlockPartSize/140 + 1 // a transaction encodes to at least 142 bytes
	return randBlock(r, n, 2, true, 3)
}

func clonePart(p *ledger.Part) *ledger.Part {
	c := *p
	c.Bytes = bytes.Clone(p.Bytes)
	c.Proof.Aunts = slices.Clone(p.Proof.Aunts)
	return &c
}

func TestSplitBlockCutsIntoFullPartsAndALastOne(t *testing.T) {
	r, seed := testRand(t)
	cases := []struct {
		name string
		size int
		want int
	}{
		{"one byte", 1, 1},
		{"exactly one part", ledger.BlockPartSize, 1},
		{"one byte over one part", ledger.BlockPartSize + 1, 2},
		{"three and a half parts", 3*ledger.BlockPartSize + ledger.BlockPartSize/2, 4},
		{"exactly three parts", 3 * ledger.BlockPartSize, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			enc := randBytes(r, tc.size)
			h, parts := ledger.SplitBlock(enc)
			if int(h.Total) != tc.want || len(parts) != tc.want {
				t.Fatalf("seed %d: %d bytes: header total %d, %d parts, want %d", seed, tc.size, h.Total, len(parts), tc.want)
			}
			var joined []byte
			for i, p := range parts {
				if p.Index != uint32(i) {
					t.Fatalf("part %d has index %d", i, p.Index)
				}
				if i < len(parts)-1 && len(p.Bytes) != ledger.BlockPartSize {
					t.Fatalf("middle part %d has %d bytes", i, len(p.Bytes))
				}
				if err := p.Proof.Verify(h.Root, p.Bytes); err != nil {
					t.Fatalf("part %d: %v", i, err)
				}
				joined = append(joined, p.Bytes...)
			}
			if !bytes.Equal(joined, enc) {
				t.Fatalf("seed %d: the parts do not join into the encoding", seed)
			}
		})
	}
}

func TestPartSetReassemblesInAnyOrder(t *testing.T) {
	r, seed := testRand(t)
	b := bigBlock(r, 3)
	enc := b.Encode()
	h, parts := ledger.SplitBlock(enc)
	if h.Total < 3 {
		t.Fatalf("fixture block has only %d parts", h.Total)
	}
	for round := range 8 {
		order := r.Perm(len(parts))
		if round == 0 {
			slices.Reverse(order) // last part first
		}
		ps, err := ledger.NewPartSet(h)
		if err != nil {
			t.Fatal(err)
		}
		for n, i := range order {
			if ps.Complete() {
				t.Fatalf("seed %d order %v: complete after %d parts", seed, order, n)
			}
			if _, err := ps.Block(); err == nil {
				t.Fatalf("seed %d: Block() succeeded with %d of %d parts", seed, n, len(parts))
			}
			// Parts as they arrive from the network: decoded from their encoding.
			p, err := ledger.DecodePart(parts[i].Encode())
			if err != nil {
				t.Fatal(err)
			}
			added, err := ps.Add(p)
			if err != nil || !added {
				t.Fatalf("seed %d order %v: part %d: added %v, err %v", seed, order, i, added, err)
			}
			if !ps.Has(uint32(i)) || ps.Count() != n+1 {
				t.Fatalf("seed %d: after part %d: Has %v, Count %d", seed, i, ps.Has(uint32(i)), ps.Count())
			}
		}
		if !ps.Complete() {
			t.Fatalf("seed %d: incomplete after all parts", seed)
		}
		got, err := ps.Block()
		if err != nil {
			t.Fatalf("seed %d order %v: %v", seed, order, err)
		}
		if got.Hash() != b.Hash() || !bytes.Equal(got.Encode(), enc) {
			t.Fatalf("seed %d order %v: reassembled a different block", seed, order)
		}
	}
}

func TestPartSetRefusesBadParts(t *testing.T) {
	r, seed := testRand(t)
	b := bigBlock(r, 3)
	h, parts := ledger.SplitBlock(b.Encode())
	// Another block of the same size, so its proofs have the same total.
	other := *b
	other.Txs = slices.Clone(b.Txs)
	tx := *b.Txs[0]
	tx.Amount++
	other.Txs[0] = &tx
	otherH, otherParts := ledger.SplitBlock(other.Encode())
	if otherH.Total != h.Total || otherH.Root == h.Root {
		t.Fatal("the other block does not split into as many parts with another root")
	}
	last := len(parts) - 1
	cases := []struct {
		name   string
		part   func() *ledger.Part
		reason string
	}{
		{"tampered byte in a middle part", func() *ledger.Part {
			p := clonePart(parts[1])
			p.Bytes[r.IntN(len(p.Bytes))] ^= 1 << r.IntN(8)
			return p
		}, "merkle proof"},
		{"tampered byte in the last part", func() *ledger.Part {
			p := clonePart(parts[last])
			p.Bytes[r.IntN(len(p.Bytes))] ^= 1 << r.IntN(8)
			return p
		}, "merkle proof"},
		{"byte appended to the last part", func() *ledger.Part {
			p := clonePart(parts[last])
			p.Bytes = append(p.Bytes, 0)
			return p
		}, "merkle proof"},
		{"tampered aunt", func() *ledger.Part {
			p := clonePart(parts[0])
			p.Proof.Aunts[0][0] ^= 1
			return p
		}, "merkle proof"},
		{"index differs from the proof's", func() *ledger.Part {
			p := clonePart(parts[0])
			p.Index = 1
			return p
		}, "index"},
		{"index and proof index of another part", func() *ledger.Part {
			p := clonePart(parts[0])
			p.Index, p.Proof.Index = 1, 1
			return p
		}, "merkle proof"},
		{"index beyond the total", func() *ledger.Part {
			p := clonePart(parts[last])
			p.Index, p.Proof.Index = h.Total, uint64(h.Total)
			return p
		}, "index"},
		{"proof for another total", func() *ledger.Part {
			p := clonePart(parts[0])
			p.Proof.Total++
			return p
		}, "index or total"},
		{"middle part one byte short", func() *ledger.Part {
			p := clonePart(parts[1])
			p.Bytes = p.Bytes[:len(p.Bytes)-1]
			return p
		}, "bytes"},
		{"middle part one byte long", func() *ledger.Part {
			p := clonePart(parts[1])
			p.Bytes = append(p.Bytes, 0)
			return p
		}, "bytes"},
		{"middle part of last-part size", func() *ledger.Part {
			p := clonePart(parts[0])
			p.Bytes = bytes.Clone(parts[last].Bytes)
			return p
		}, "bytes"},
		{"part of another block (proof for another root)", func() *ledger.Part {
			return clonePart(otherParts[1])
		}, "merkle proof"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := ledger.NewPartSet(h)
			if err != nil {
				t.Fatal(err)
			}
			p := tc.part()
			added, err := ps.Add(p)
			if err == nil || added {
				t.Fatalf("seed %d: added %v, err %v; want refused", seed, added, err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("seed %d: err %q does not mention %q", seed, err, tc.reason)
			}
			if ps.Count() != 0 || ps.Has(p.Index) {
				t.Fatalf("a refused part was kept: Count %d", ps.Count())
			}
			// The genuine part is still accepted afterwards.
			if i := int(p.Index); i < len(parts) {
				if added, err := ps.Add(parts[i]); err != nil || !added {
					t.Fatalf("genuine part %d after a refused one: added %v, err %v", i, added, err)
				}
			}
		})
	}
}

func TestPartSetDuplicatesAreNotNew(t *testing.T) {
	r, seed := testRand(t)
	b := bigBlock(r, 3)
	h, parts := ledger.SplitBlock(b.Encode())
	ps, err := ledger.NewPartSet(h)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if added, err := ps.Add(p); !added || err != nil {
			t.Fatalf("first add of part %d: %v, %v", p.Index, added, err)
		}
		if added, err := ps.Add(clonePart(p)); added || err != nil {
			t.Fatalf("seed %d: second add of part %d: added %v, err %v; want not new", seed, p.Index, added, err)
		}
		// A forged copy of a part already held changes nothing either.
		forged := clonePart(p)
		forged.Bytes[0] ^= 1
		if added, _ := ps.Add(forged); added {
			t.Fatalf("a forged duplicate of part %d was added", p.Index)
		}
	}
	if ps.Count() != len(parts) || !ps.Complete() {
		t.Fatalf("Count %d of %d after duplicates", ps.Count(), len(parts))
	}
	got, err := ps.Block()
	if err != nil || got.Hash() != b.Hash() {
		t.Fatalf("seed %d: block after duplicates: %v", seed, err)
	}
}

// A part with no bytes (which a faulty proposer can commit to as the last
// part) is held like any other: adding it again is not new and does not
// count twice towards completion.
func TestPartSetEmptyLastPartCountsOnce(t *testing.T) {
	r, _ := testRand(t)
	chunks := [][]byte{randBytes(r, ledger.BlockPartSize), nil}
	root, proofs := crypto.MerkleProofs(chunks)
	h := ledger.PartSetHeader{Total: 2, Root: root}
	ps, err := ledger.NewPartSet(h)
	if err != nil {
		t.Fatal(err)
	}
	empty, err := ledger.DecodePart((&ledger.Part{Index: 1, Proof: proofs[1]}).Encode())
	if err != nil {
		t.Fatal(err)
	}
	if added, err := ps.Add(empty); !added || err != nil {
		t.Fatalf("empty last part: added %v, err %v", added, err)
	}
	if !ps.Has(1) {
		t.Fatal("Has(1) is false after adding part 1")
	}
	if added, err := ps.Add(empty); added || err != nil {
		t.Fatalf("empty last part again: added %v, err %v; want not new", added, err)
	}
	if ps.Count() != 1 || ps.Complete() {
		t.Fatalf("after one part of two (added twice): Count %d, Complete %v", ps.Count(), ps.Complete())
	}
}

func TestNewPartSetBoundsTotal(t *testing.T) {
	for _, total := range []uint32{0, ledger.MaxBlockParts + 1, ^uint32(0)} {
		if _, err := ledger.NewPartSet(ledger.PartSetHeader{Total: total}); err == nil {
			t.Errorf("NewPartSet accepted %d parts", total)
		}
	}
	for _, total := range []uint32{1, ledger.MaxBlockParts} {
		if _, err := ledger.NewPartSet(ledger.PartSetHeader{Total: total}); err != nil {
			t.Errorf("NewPartSet(%d parts): %v", total, err)
		}
	}
}
