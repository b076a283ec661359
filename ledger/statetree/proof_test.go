package statetree

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/ledgerd/ledgerd/ledger/kv"
)

func cloneProof(p *Proof) *Proof {
	q := &Proof{Siblings: slices.Clone(p.Siblings)}
	if p.Leaf != nil {
		l := *p.Leaf
		q.Leaf = &l
	}
	return q
}

// provenState is a random tree with two committed versions, the model of
// each, and keys to ask about: present ones, absent ones whose path ends in
// another leaf (a neighbour differing in a low bit) and random absent ones.
type provenState struct {
	tr      *Tree
	roots   [3][32]byte
	models  [3]model
	present [][32]byte
	absent  [][32]byte
}

func newProvenState(t *testing.T, seedRand func() ([]Change, []Change, [][32]byte)) *provenState {
	t.Helper()
	db := kv.NewMem()
	s := &provenState{tr: New(db, []byte("s/")), models: [3]model{{}, {}, {}}}
	first, second, extra := seedRand()
	s.models[1].apply(first)
	s.models[2] = s.models[1].clone()
	s.models[2].apply(second)
	s.roots[1] = commit(t, db, s.tr, 0, 1, first)
	s.roots[2] = commit(t, db, s.tr, 1, 2, second)
	s.present = s.models[2].sortedKeys()
	for _, k := range s.present {
		n := k
		n[31] ^= 1
		if _, ok := s.models[2][n]; !ok {
			s.absent = append(s.absent, n)
		}
	}
	for _, k := range extra {
		if _, ok := s.models[2][k]; !ok {
			s.absent = append(s.absent, k)
		}
	}
	return s
}

// deepPair returns two keys that differ only in the last bit, so they hang
// under a chain of one-sided inner nodes, and a key that leaves the chain
// halfway down, whose path ends in an empty subtree.
func deepPair(g *keyGen) (pair []Change, off [32]byte) {
	deep := g.next()
	twin := deep
	twin[31] ^= 1
	off = deep
	off[12] ^= 0x10
	return []Change{{Key: deep, Value: []byte("deep")}, {Key: twin, Value: []byte("twin")}}, off
}

// TestProofsVerify: every present key proves its value and every absent key
// proves its absence, in both kinds (empty subtree, other leaf), in the
// latest and in an older version.
func TestProofsVerify(t *testing.T) {
	r, seed := testRand(t)
	for trial := range 10 {
		s := newProvenState(t, func() ([]Change, []Change, [][32]byte) {
			g := &keyGen{r: r}
			var first []Change
			for range 1 + r.IntN(300) {
				first = append(first, Change{Key: g.next(), Value: randValue(r)})
			}
			pair, off := deepPair(g)
			first = append(first, pair...)
			second := append(randChanges(r, g, 100), pair...)
			extra := [][32]byte{off}
			for range 50 {
				var k [32]byte
				for i := range k {
					k[i] = byte(r.Uint32())
				}
				extra = append(extra, k)
			}
			return first, second, extra
		})
		var kinds [3]int // membership, absent at empty subtree, absent at other leaf
		for v := 1; v <= 2; v++ {
			m := s.models[v]
			for _, k := range slices.Concat(s.present, s.absent) {
				val, p, err := s.tr.Prove(uint64(v), k)
				if err != nil {
					t.Fatalf("seed %d trial %d version %d: Prove(%x): %v", seed, trial, v, k, err)
				}
				if !bytes.Equal(val, m[k]) {
					t.Fatalf("seed %d trial %d version %d: Prove(%x) value %x, want %x", seed, trial, v, k, val, m[k])
				}
				if err := Verify(s.roots[v], k, val, p); err != nil {
					t.Fatalf("seed %d trial %d version %d: Verify(%x): %v", seed, trial, v, k, err)
				}
				switch {
				case val != nil:
					kinds[0]++
				case p.Leaf == nil:
					kinds[1]++
				default:
					kinds[2]++
				}
			}
		}
		if kinds[0] == 0 || kinds[1] == 0 || kinds[2] == 0 {
			t.Fatalf("seed %d trial %d: proof kinds exercised %v (present, empty, other leaf); want all", seed, trial, kinds)
		}
	}
}

// TestProofsOfEmptyAndSingleLeafTrees covers the trees with no inner node.
func TestProofsOfEmptyAndSingleLeafTrees(t *testing.T) {
	db := kv.NewMem()
	tr := New(db, nil)
	k, other := [32]byte{1}, [32]byte{2}
	root := commit(t, db, tr, 0, 1, []Change{{Key: k, Value: []byte("v")}})
	tests := []struct {
		name    string
		version uint64
		root    [32]byte
		key     [32]byte
		value   []byte
	}{
		{"absent from the empty tree", 0, EmptyRoot, k, nil},
		{"the single leaf", 1, root, k, []byte("v")},
		{"absent beside the single leaf", 1, root, other, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			val, p, err := tr.Prove(tc.version, tc.key)
			if err != nil || !bytes.Equal(val, tc.value) {
				t.Fatalf("Prove = %q, %v; want %q", val, err, tc.value)
			}
			if len(p.Siblings) != 0 {
				t.Fatalf("%d siblings, want none", len(p.Siblings))
			}
			if err := Verify(tc.root, tc.key, tc.value, p); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestForgedProofsFail: every way of altering a valid proof, or of asking it
// a question it does not answer, fails Verify.
func TestForgedProofsFail(t *testing.T) {
	r, seed := testRand(t)
	s := newProvenState(t, func() ([]Change, []Change, [][32]byte) {
		g := &keyGen{r: r}
		var first []Change
		for range 200 {
			first = append(first, Change{Key: g.next(), Value: randValue(r)})
		}
		pair, off := deepPair(g)
		first = append(first, pair...)
		second := append(randChanges(r, g, 60), pair...) // keep the pair in version 2
		return first, second, [][32]byte{off, {}, {0xff, 0xff}}
	})
	m := s.models[2]

	type forgery struct {
		name  string
		key   [32]byte
		value []byte
		root  [32]byte
		proof *Proof
	}
	var forgeries []forgery
	add := func(name string, key [32]byte, value []byte, root [32]byte, p *Proof) {
		forgeries = append(forgeries, forgery{name, key, value, root, p})
	}
	// Some present keys, and absent keys of both kinds.
	targets := slices.Clone(s.present[:min(20, len(s.present))])
	var atEmpty, atLeaf int
	for _, k := range s.absent {
		_, p, err := s.tr.Prove(2, k)
		if err != nil {
			t.Fatal(err)
		}
		if p.Leaf == nil && atEmpty < 8 {
			atEmpty++
			targets = append(targets, k)
		}
		if p.Leaf != nil && atLeaf < 8 {
			atLeaf++
			targets = append(targets, k)
		}
	}
	for _, k := range targets {
		val, p, err := s.tr.Prove(2, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(s.roots[2], k, val, p); err != nil {
			t.Fatalf("seed %d: genuine proof of %x fails: %v", seed, k, err)
		}
		// Every sibling, a few of its bytes (keys from keyGen share long
		// prefixes, so paths run up to 256 deep).
		for i := range p.Siblings {
			for range 3 {
				q := cloneProof(p)
				q.Siblings[i][r.IntN(32)] ^= 1 << r.IntN(8)
				add("sibling byte flipped", k, val, s.roots[2], q)
			}
		}
		if p.Leaf != nil {
			for j := range 32 {
				q := cloneProof(p)
				q.Leaf.Key[j] ^= 1 << r.IntN(8)
				add("leaf key flipped", k, val, s.roots[2], q)
				q = cloneProof(p)
				q.Leaf.ValueHash[j] ^= 1 << r.IntN(8)
				add("leaf value hash flipped", k, val, s.roots[2], q)
			}
			q := cloneProof(p)
			q.Leaf = nil
			add("leaf removed", k, val, s.roots[2], q)
		} else {
			q := cloneProof(p)
			q.Leaf = &ProofLeaf{Key: k, ValueHash: hashValue([]byte("x"))}
			add("leaf invented", k, []byte("x"), s.roots[2], q)
		}
		if n := len(p.Siblings); n > 0 {
			add("first sibling dropped", k, val, s.roots[2], &Proof{Leaf: p.Leaf, Siblings: p.Siblings[1:]})
			add("last sibling dropped", k, val, s.roots[2], &Proof{Leaf: p.Leaf, Siblings: p.Siblings[:n-1]})
		}
		add("sibling appended", k, val, s.roots[2], &Proof{Leaf: p.Leaf, Siblings: append(slices.Clone(p.Siblings), [32]byte{1})})
		add("empty sibling prepended", k, val, s.roots[2], &Proof{Leaf: p.Leaf, Siblings: append([][32]byte{{}}, p.Siblings...)})
		if s.roots[1] != s.roots[2] {
			add("other version's root", k, val, s.roots[1], p)
		}
		add("empty root", k, val, EmptyRoot, p)
		if val != nil {
			add("wrong value", k, append(slices.Clone(val), 0), s.roots[2], p)
			add("absence claimed for a present key", k, nil, s.roots[2], p)
			add("empty value claimed for a present key", k, []byte{}, s.roots[2], p)
		} else {
			add("presence claimed for an absent key", k, []byte("v"), s.roots[2], p)
		}
		// The proof of one key does not prove another (unless the other is
		// the leaf the proof ends in: then it is that key's proof, too).
		o := s.present[r.IntN(len(s.present))]
		if o != k && (p.Leaf == nil || p.Leaf.Key != o) {
			add("proof of another key", o, m[o], s.roots[2], p)
		}
	}
	add("nil proof", s.present[0], m[s.present[0]], s.roots[2], nil)
	seen := map[string]bool{}
	for _, f := range forgeries {
		seen[f.name] = true
		err := Verify(f.root, f.key, f.value, f.proof)
		if err == nil {
			t.Fatalf("seed %d: %s: forged proof for %x verified (leaf %+v, %d siblings, value %x)", seed, f.name, f.key, f.proof.Leaf, len(f.proof.Siblings), f.value)
		}
		if !errors.Is(err, ErrInvalidProof) {
			t.Fatalf("seed %d: %s: error %v does not wrap ErrInvalidProof", seed, f.name, err)
		}
	}
	for _, name := range []string{"sibling byte flipped", "leaf key flipped", "leaf value hash flipped",
		"leaf removed", "leaf invented", "other version's root", "wrong value",
		"absence claimed for a present key", "presence claimed for an absent key", "proof of another key"} {
		if !seen[name] {
			t.Errorf("seed %d: forgery %q never exercised", seed, name)
		}
	}
}

// TestProofEncodingRoundTrips: binary and JSON forms decode to the same
// proof, the binary form re-encodes to the same bytes, and decoded proofs
// still verify.
func TestProofEncodingRoundTrips(t *testing.T) {
	r, seed := testRand(t)
	s := newProvenState(t, func() ([]Change, []Change, [][32]byte) {
		g := &keyGen{r: r}
		var first []Change
		for range 100 {
			first = append(first, Change{Key: g.next(), Value: randValue(r)})
		}
		return first, randChanges(r, g, 30), [][32]byte{{}, {0xff}}
	})
	for _, k := range slices.Concat(s.present, s.absent) {
		val, p, err := s.tr.Prove(2, k)
		if err != nil {
			t.Fatal(err)
		}
		bin, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		fromBin, err := UnmarshalProof(bin)
		if err != nil {
			t.Fatalf("seed %d: UnmarshalProof: %v", seed, err)
		}
		again, _ := fromBin.MarshalBinary()
		if !bytes.Equal(again, bin) {
			t.Fatalf("seed %d: binary round trip changed the encoding", seed)
		}
		js, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var fromJSON Proof
		if err := json.Unmarshal(js, &fromJSON); err != nil {
			t.Fatalf("seed %d: UnmarshalJSON(%s): %v", seed, js, err)
		}
		for name, q := range map[string]*Proof{"binary": fromBin, "json": &fromJSON} {
			if err := Verify(s.roots[2], k, val, q); err != nil {
				t.Fatalf("seed %d: proof decoded from %s: %v", seed, name, err)
			}
			if b, _ := q.MarshalBinary(); !bytes.Equal(b, bin) {
				t.Fatalf("seed %d: proof decoded from %s differs from the original", seed, name)
			}
		}
	}
}

// TestProofDecodingRejects: every non-canonical or out-of-bounds input is
// refused with ErrInvalidProof.
func TestProofDecodingRejects(t *testing.T) {
	sib := bytes.Repeat([]byte{0xab}, 32)
	leaf := bytes.Repeat([]byte{0xcd}, 64)
	cat := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	valid := cat([]byte{1, 1}, leaf, []byte{0, 1}, sib)
	if _, err := UnmarshalProof(valid); err != nil {
		t.Fatalf("the valid base case fails: %v", err)
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty input", nil},
		{"version only", []byte{1}},
		{"unknown version", cat([]byte{2, 0}, []byte{0, 0})},
		{"version zero", cat([]byte{0, 0}, []byte{0, 0})},
		{"unknown leaf flag", cat([]byte{1, 2}, leaf, []byte{0, 0})},
		{"truncated leaf", cat([]byte{1, 1}, leaf[:63])},
		{"missing count", cat([]byte{1, 1}, leaf)},
		{"half a count", cat([]byte{1, 0}, []byte{0})},
		{"count beyond siblings", cat([]byte{1, 0}, []byte{0, 2}, sib)},
		{"trailing byte", cat(valid, []byte{0})},
		{"truncated sibling", valid[:len(valid)-1]},
		{"257 siblings", cat([]byte{1, 0}, []byte{1, 1}, bytes.Repeat(sib, 257))},
		{"count overflowing 16 bits", cat([]byte{1, 0}, []byte{0xff, 0xff})},
		{"deepest sibling empty", cat([]byte{1, 0}, []byte{0, 2}, sib, make([]byte, 32))},
		{"far too long", make([]byte, maxProofLength+1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := UnmarshalProof(tc.in); !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("UnmarshalProof = %+v, %v; want ErrInvalidProof", p, err)
			}
		})
	}
	// 256 siblings is the maximum and decodes.
	max := cat([]byte{1, 0}, []byte{1, 0}, bytes.Repeat(sib, 256))
	if _, err := UnmarshalProof(max); err != nil {
		t.Fatalf("256 siblings: %v", err)
	}

	jsonTests := []struct{ name, in string }{
		{"not JSON", `{`},
		{"short hash", `{"leaf":null,"siblings":["ab"]}`},
		{"non-hex hash", `{"leaf":null,"siblings":["` + string(bytes.Repeat([]byte("zz"), 32)) + `"]}`},
		{"deepest sibling empty", `{"leaf":null,"siblings":["` + string(bytes.Repeat([]byte("00"), 32)) + `"]}`},
		{"257 siblings", `{"siblings":[` + string(bytes.Repeat([]byte(`"`+string(bytes.Repeat([]byte("ab"), 32))+`",`), 256)) + `"` + string(bytes.Repeat([]byte("ab"), 32)) + `"]}`},
		{"too large", `{"siblings":[],"x":"` + string(bytes.Repeat([]byte("a"), maxProofJSON)) + `"}`},
	}
	for _, tc := range jsonTests {
		t.Run("json/"+tc.name, func(t *testing.T) {
			var p Proof
			if err := json.Unmarshal([]byte(tc.in), &p); err == nil {
				t.Fatalf("UnmarshalJSON accepted %.80s", tc.in)
			}
		})
	}
	// A proof outside the bounds does not encode either.
	if _, err := (&Proof{Siblings: make([][32]byte, 257)}).MarshalBinary(); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("MarshalBinary of 257 siblings: %v", err)
	}
}
