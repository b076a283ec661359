package crypto_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
)

// --- a reference Merkle tree, written straight from RFC 6962 §2.1 ---

func refLeaf(item []byte) crypto.Hash {
	return sha256.Sum256(append([]byte{0x00}, item...))
}

func refInner(l, r crypto.Hash) crypto.Hash {
	return sha256.Sum256(append(append([]byte{0x01}, l[:]...), r[:]...))
}

// refSplit is the largest power of two strictly less than n (n >= 2).
func refSplit(n int) int {
	k := 1
	for 2*k < n {
		k *= 2
	}
	return k
}

func refRoot(items [][]byte) crypto.Hash {
	switch len(items) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return refLeaf(items[0])
	}
	k := refSplit(len(items))
	return refInner(refRoot(items[:k]), refRoot(items[k:]))
}

// refPath is the route from the root to leaf index of a tree of total
// leaves: true where the path goes left. Two (index, total) pairs with the
// same route have proofs of the same shape.
func refPath(index, total int) []bool {
	var path []bool
	for total > 1 {
		k := refSplit(total)
		if index < k {
			path = append(path, true)
			total = k
		} else {
			path = append(path, false)
			index, total = index-k, total-k
		}
	}
	return path
}

// merkleItems returns n distinct items of random length (empty included):
// a two-byte index followed by random bytes.
func merkleItems(r *rand.Rand, n int) [][]byte {
	items := make([][]byte, n)
	for i := range items {
		it := binary.BigEndian.AppendUint16(nil, uint16(i))
		for range r.IntN(40) {
			it = append(it, byte(r.Uint32()))
		}
		items[i] = it
	}
	if n > 0 && r.IntN(2) == 0 {
		items[r.IntN(n)] = nil // an empty item is an item like any other
	}
	return items
}

func cloneProof(p crypto.MerkleProof) crypto.MerkleProof {
	p.Aunts = slices.Clone(p.Aunts)
	return p
}

func TestMerkleRootMatchesReference(t *testing.T) {
	r, seed := testRand(t)
	for n := 0; n <= 140; n++ {
		items := merkleItems(r, n)
		if got, want := crypto.MerkleRoot(items), refRoot(items); got != want {
			t.Fatalf("seed %d: MerkleRoot of %d items = %s, reference says %s", seed, n, got, want)
		}
	}
}

func TestMerkleRootKnownShapes(t *testing.T) {
	a, b, c := []byte("a"), []byte("b"), []byte("c")
	cases := []struct {
		name  string
		items [][]byte
		want  crypto.Hash
	}{
		{"empty list is SHA-256 of nothing", nil, sha256.Sum256(nil)},
		{"one item is its leaf hash", [][]byte{a}, refLeaf(a)},
		{"one empty item is the leaf hash of nothing", [][]byte{{}}, sha256.Sum256([]byte{0x00})},
		{"two items", [][]byte{a, b}, refInner(refLeaf(a), refLeaf(b))},
		{"three items split 2+1", [][]byte{a, b, c}, refInner(refInner(refLeaf(a), refLeaf(b)), refLeaf(c))},
		{"five items split 4+1", [][]byte{a, b, c, a, b},
			refInner(refInner(refInner(refLeaf(a), refLeaf(b)), refInner(refLeaf(c), refLeaf(a))), refLeaf(b))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := crypto.MerkleRoot(tc.items); got != tc.want {
				t.Fatalf("MerkleRoot = %s, want %s", got, tc.want)
			}
		})
	}
	if crypto.MerkleRoot(nil) == crypto.MerkleRoot([][]byte{{}}) {
		t.Fatal("the empty list and a list of one empty item have the same root")
	}
}

// A leaf can never pass for an inner node: the bytes an inner node hashes
// (without its prefix) taken as a single item give a different root.
func TestMerkleLeafCannotPassAsInnerNode(t *testing.T) {
	r, seed := testRand(t)
	for range 50 {
		items := merkleItems(r, 2)
		two := crypto.MerkleRoot(items)
		l, rt := refLeaf(items[0]), refLeaf(items[1])
		if want := sha256.Sum256(append(append([]byte{0x01}, l[:]...), rt[:]...)); two != want {
			t.Fatalf("seed %d: the root of two items is not H(0x01 || l || r)", seed)
		}
		forged := append(append([]byte(nil), l[:]...), rt[:]...)
		if got := crypto.MerkleRoot([][]byte{forged}); got == two {
			t.Fatalf("seed %d: the single item l||r has the same root as the two-item tree", seed)
		}
		// Nor can a one-item proof for the forged item verify against it.
		_, proofs := crypto.MerkleProofs([][]byte{forged})
		if err := proofs[0].Verify(two, forged); err == nil {
			t.Fatalf("seed %d: a proof for l||r verified against the two-item root", seed)
		}
		// Nor the inner node of the pair as a leaf of a one-level-smaller tree.
		if crypto.MerkleRootOfHashes([]crypto.Hash{two}) == two {
			t.Fatalf("seed %d: a root hashed as a leaf equals itself", seed)
		}
	}
}

func TestMerkleRootOfHashesIsMerkleRootOfTheirBytes(t *testing.T) {
	r, seed := testRand(t)
	for n := 0; n <= 70; n++ {
		hs := make([]crypto.Hash, n)
		items := make([][]byte, n)
		for i := range hs {
			for j := range hs[i] {
				hs[i][j] = byte(r.Uint32())
			}
			items[i] = hs[i][:]
		}
		if got, want := crypto.MerkleRootOfHashes(hs), crypto.MerkleRoot(items); got != want {
			t.Fatalf("seed %d: %d hashes: MerkleRootOfHashes = %s, MerkleRoot of their bytes = %s", seed, n, got, want)
		}
	}
}

func TestMerkleProofsVerifyEveryIndex(t *testing.T) {
	r, seed := testRand(t)
	for n := 1; n <= 70; n++ {
		items := merkleItems(r, n)
		root, proofs := crypto.MerkleProofs(items)
		if want := refRoot(items); root != want {
			t.Fatalf("seed %d: MerkleProofs root over %d items = %s, reference %s", seed, n, root, want)
		}
		if len(proofs) != n {
			t.Fatalf("seed %d: %d proofs for %d items", seed, len(proofs), n)
		}
		for i, p := range proofs {
			if p.Index != uint64(i) || p.Total != uint64(n) || len(p.Aunts) != len(refPath(i, n)) {
				t.Fatalf("seed %d: proof %d of %d has index %d, total %d, %d aunts", seed, i, n, p.Index, p.Total, len(p.Aunts))
			}
			if err := p.Verify(root, items[i]); err != nil {
				t.Fatalf("seed %d: proof %d of %d: %v", seed, i, n, err)
			}
		}
	}
	if root, proofs := crypto.MerkleProofs(nil); root != sha256.Sum256(nil) || proofs != nil {
		t.Fatalf("MerkleProofs(nil) = %s, %v", root, proofs)
	}
}

// Every way of altering a valid proof, item or root makes Verify fail.
func TestMerkleProofTamperingFails(t *testing.T) {
	r, seed := testRand(t)
	type tamper struct {
		name  string
		apply func(p *crypto.MerkleProof, item *[]byte, root *crypto.Hash, items [][]byte) bool // false: not applicable
	}
	tampers := []tamper{
		{"flipped bit in each aunt", nil}, // expanded below
		{"next index", func(p *crypto.MerkleProof, _ *[]byte, _ *crypto.Hash, _ [][]byte) bool {
			if p.Total < 2 {
				return false
			}
			p.Index = (p.Index + 1) % p.Total
			return true
		}},
		{"index equal to total", func(p *crypto.MerkleProof, _ *[]byte, _ *crypto.Hash, _ [][]byte) bool {
			p.Index = p.Total
			return true
		}},
		{"huge index", func(p *crypto.MerkleProof, _ *[]byte, _ *crypto.Hash, _ [][]byte) bool {
			p.Index = 1 << 63
			return true
		}},
		{"total zero", func(p *crypto.MerkleProof, _ *[]byte, _ *crypto.Hash, _ [][]byte) bool {
			p.Total = 0
			return true
		}},
		{"item of another index", func(p *crypto.MerkleProof, item *[]byte, _ *crypto.Hash, items [][]byte) bool {
			if p.Total < 2 {
				return false
			}
			*item = items[(p.Index+1)%p.Total]
			return true
		}},
		{"item with a byte appended", func(_ *crypto.MerkleProof, item *[]byte, _ *crypto.Hash, _ [][]byte) bool {
			*item = append(slices.Clone(*item), 0)
			return true
		}},
		{"item with first byte changed", func(_ *crypto.MerkleProof, item *[]byte, _ *crypto.Hash, _ [][]byte) bool {
			if len(*item) == 0 {
				return false
			}
			*item = slices.Clone(*item)
			(*item)[0] ^= 0x80
			return true
		}},
		{"item replaced by its leaf hash", func(_ *crypto.MerkleProof, item *[]byte, _ *crypto.Hash, _ [][]byte) bool {
			h := refLeaf(*item)
			*item = h[:]
			return true
		}},
		{"extra aunt on top", func(p *crypto.MerkleProof, _ *[]byte, root *crypto.Hash, _ [][]byte) bool {
			p.Aunts = append(p.Aunts, *root)
			return true
		}},
		{"extra aunt at the bottom", func(p *crypto.MerkleProof, _ *[]byte, _ *crypto.Hash, _ [][]byte) bool {
			p.Aunts = append([]crypto.Hash{{}}, p.Aunts...)
			return true
		}},
		{"top aunt missing", func(p *crypto.MerkleProof, _ *[]byte, _ *crypto.Hash, _ [][]byte) bool {
			if len(p.Aunts) == 0 {
				return false
			}
			p.Aunts = p.Aunts[:len(p.Aunts)-1]
			return true
		}},
		{"bottom aunt missing", func(p *crypto.MerkleProof, _ *[]byte, _ *crypto.Hash, _ [][]byte) bool {
			if len(p.Aunts) == 0 {
				return false
			}
			p.Aunts = p.Aunts[1:]
			return true
		}},
		{"aunts reversed", func(p *crypto.MerkleProof, _ *[]byte, _ *crypto.Hash, _ [][]byte) bool {
			if len(p.Aunts) < 2 || p.Aunts[0] == p.Aunts[len(p.Aunts)-1] {
				return false
			}
			slices.Reverse(p.Aunts)
			return true
		}},
		{"more aunts than the depth limit", func(p *crypto.MerkleProof, _ *[]byte, _ *crypto.Hash, _ [][]byte) bool {
			p.Aunts = make([]crypto.Hash, crypto.MaxMerkleProofDepth+1)
			return true
		}},
		{"root of another list", func(_ *crypto.MerkleProof, _ *[]byte, root *crypto.Hash, items [][]byte) bool {
			*root = refRoot(append(slices.Clone(items), []byte("another")))
			return true
		}},
		{"zero root", func(_ *crypto.MerkleProof, _ *[]byte, root *crypto.Hash, _ [][]byte) bool {
			*root = crypto.Hash{}
			return true
		}},
	}
	for n := 1; n <= 70; n++ {
		items := merkleItems(r, n)
		root, proofs := crypto.MerkleProofs(items)
		for i := range proofs {
			for a := range proofs[i].Aunts {
				p := cloneProof(proofs[i])
				bit := r.IntN(8 * crypto.HashSize)
				p.Aunts[a][bit/8] ^= 1 << (bit % 8)
				if err := p.Verify(root, items[i]); err == nil {
					t.Fatalf("seed %d: n=%d index %d: aunt %d with bit %d flipped verified", seed, n, i, a, bit)
				}
			}
			for _, tc := range tampers[1:] {
				p, item, rt := cloneProof(proofs[i]), items[i], root
				if !tc.apply(&p, &item, &rt, items) {
					continue
				}
				if err := p.Verify(rt, item); err == nil {
					t.Fatalf("seed %d: n=%d index %d: %s: tampered proof verified", seed, n, i, tc.name)
				}
			}
			if err := proofs[i].Verify(root, items[i]); err != nil {
				t.Fatalf("seed %d: n=%d index %d: tampering changed the original proof: %v", seed, n, i, err)
			}
		}
	}
}

// The root does not commit to the number of items, so a proof binds its
// Total only through the shape of the path: it verifies under another total
// exactly when the route to its index is the same (for example index 0 of 3
// and index 0 of 4). Whoever needs the count bound must check Total against
// a signed value, as PartSet does against the proposal's PartSetHeader.
func TestMerkleProofWrongTotalFailsUnlessPathIsTheSame(t *testing.T) {
	r, seed := testRand(t)
	failed, passed := 0, 0
	for n := 1; n <= 40; n++ {
		items := merkleItems(r, n)
		root, proofs := crypto.MerkleProofs(items)
		for i := range proofs {
			for total := 1; total <= n+10; total++ {
				if total == n || i >= total {
					continue
				}
				p := cloneProof(proofs[i])
				p.Total = uint64(total)
				err := p.Verify(root, items[i])
				same := slices.Equal(refPath(i, total), refPath(i, n))
				if (err == nil) != same {
					t.Fatalf("seed %d: index %d of %d verified as total %d: err = %v, but same path = %v", seed, i, n, total, err, same)
				}
				if same {
					passed++
				} else {
					failed++
				}
			}
		}
	}
	if failed == 0 || passed == 0 {
		t.Fatalf("checked %d failing and %d passing wrong totals; the test no longer covers both", failed, passed)
	}
}

func TestMerkleProofMarshalRoundTrip(t *testing.T) {
	r, seed := testRand(t)
	for _, n := range []int{1, 2, 3, 7, 64, 65, 300} {
		_, proofs := crypto.MerkleProofs(merkleItems(r, n))
		for _, p := range proofs {
			b, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			got, err := crypto.UnmarshalMerkleProof(b)
			if err != nil {
				t.Fatalf("seed %d: unmarshal proof %d of %d: %v", seed, p.Index, n, err)
			}
			if got.Index != p.Index || got.Total != p.Total || !slices.Equal(got.Aunts, p.Aunts) {
				t.Fatalf("seed %d: proof %d of %d came back as %+v", seed, p.Index, n, got)
			}
		}
	}
}

func TestUnmarshalMerkleProofRejects(t *testing.T) {
	_, proofs := crypto.MerkleProofs(merkleItems(rand.New(rand.NewPCG(1, 2)), 5))
	valid, _ := proofs[4].MarshalBinary() // version, index 4, total 5, 1 aunt
	if !bytes.Equal(valid[:4], []byte{1, 4, 5, 1}) || len(valid) != 4+crypto.HashSize {
		t.Fatalf("proof 4 of 5 encodes as %x, not the documented layout", valid)
	}
	tooMany := []byte{1, 0, 1, crypto.MaxMerkleProofDepth + 1}
	tooMany = append(tooMany, make([]byte, (crypto.MaxMerkleProofDepth+1)*crypto.HashSize)...)
	cases := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"version 0", append([]byte{0}, valid[1:]...)},
		{"version 2", append([]byte{2}, valid[1:]...)},
		{"trailing byte", append(slices.Clone(valid), 0)},
		{"one aunt byte missing", valid[:len(valid)-1]},
		{"no aunt bytes", valid[:4]},
		{"no aunt count", valid[:3]},
		{"non-minimal index", append([]byte{1, 0x84, 0x00}, valid[2:]...)},
		{"non-minimal total", append([]byte{1, 4, 0x85, 0x00}, valid[3:]...)},
		{"non-minimal aunt count", append([]byte{1, 4, 5, 0x81, 0x00}, valid[4:]...)},
		{"varint over 64 bits", append([]byte{1}, bytes.Repeat([]byte{0xff}, 10)...)},
		{"more aunts than the depth limit", tooMany},
		{"huge aunt count on a short buffer", []byte{1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := crypto.UnmarshalMerkleProof(tc.in); err == nil {
				t.Fatalf("UnmarshalMerkleProof(%x) = %+v, want an error", tc.in, p)
			}
		})
	}
}

// FuzzUnmarshalMerkleProof: never panics, and whatever it accepts has at
// most MaxMerkleProofDepth aunts and marshals back to exactly the input.
func FuzzUnmarshalMerkleProof(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, n := range []int{1, 2, 3, 5, 8, 70} {
		_, proofs := crypto.MerkleProofs(merkleItems(r, n))
		for _, p := range []crypto.MerkleProof{proofs[0], proofs[n-1]} {
			b, _ := p.MarshalBinary()
			f.Add(b)
		}
	}
	big, _ := (&crypto.MerkleProof{Index: 1 << 62, Total: 1<<63 + 5, Aunts: make([]crypto.Hash, crypto.MaxMerkleProofDepth)}).MarshalBinary()
	f.Add(big)
	f.Add([]byte{1, 0, 0, 0})
	f.Add([]byte{1, 0x80, 0x00, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := crypto.UnmarshalMerkleProof(in)
		if err != nil {
			return
		}
		if len(p.Aunts) > crypto.MaxMerkleProofDepth {
			t.Fatalf("accepted %d aunts", len(p.Aunts))
		}
		out, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("accepted %x, which marshals back as %x", in, out)
		}
		_ = p.Verify(crypto.Hash{}, in) // must not panic whatever the index and total
	})
}
