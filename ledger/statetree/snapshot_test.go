package statetree

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ledgerd/ledgerd/ledger/kv"
)

// clusteredKeys returns n distinct keys in tight clusters: groups sharing
// prefixes of up to 250 bits, so that partitions meet long chains of
// one-sided inner nodes.
func clusteredKeys(r *rand.Rand, n int) [][32]byte {
	seen := map[[32]byte]bool{}
	var out [][32]byte
	for len(out) < n {
		var base [32]byte
		for i := range base {
			base[i] = byte(r.Uint32())
		}
		shared := []int{8, 64, 200, 250}[r.IntN(4)]
		for range 1 + r.IntN(12) {
			k := base
			for b := shared; b < KeyBits; b++ {
				if r.IntN(2) == 0 {
					k = withBit(k, b, 1-bit(k, b))
				}
			}
			if !seen[k] && len(out) < n {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

// randomTree commits a random tree: keys from keyGen or clustered, values
// and metas random, in a few commits with deletes, and returns its models.
func randomTree(t testing.TB, r *rand.Rand, db kv.DB, tr *Tree, size int, clustered bool) (uint64, model, metaModel, [][32]byte) {
	t.Helper()
	var keys [][32]byte
	if clustered {
		keys = clusteredKeys(r, size)
	} else {
		g := &keyGen{r: r}
		for range size {
			keys = append(keys, g.next())
		}
	}
	m, mm := model{}, metaModel{}
	v := uint64(0)
	for len(keys) > 0 || v < 3 {
		n := min(len(keys), 1+r.IntN(size/2+1))
		var cs []Change
		for _, k := range keys[:n] {
			cs = append(cs, Change{Key: k, Value: randValue(r)})
		}
		keys = keys[n:]
		if len(m) > 0 && r.IntN(2) == 0 { // delete a few
			for range 1 + r.IntN(3) {
				ks := m.sortedKeys()
				cs = append(cs, Change{Key: ks[r.IntN(len(ks))]})
			}
		}
		cs = withMeta(r, cs)
		applyAll(m, mm, cs)
		commit(t, db, tr, v, v+1, cs)
		v++
	}
	return v, m, mm, m.sortedKeys()
}

// keyRange returns the first key under a part and the first key after it,
// as integers (the end of the last part is 2^256).
func keyRange(p Subtree) (*big.Int, *big.Int) {
	lo := new(big.Int).SetBytes(p.Prefix[:])
	size := new(big.Int).Lsh(big.NewInt(1), uint(KeyBits-p.Depth))
	return lo, new(big.Int).Add(lo, size)
}

// checkPartition checks parts of version v (root) against the model: in
// key order, tiling the key space, each within maxLeaves (or one leaf or
// a node that may not be split), its leaves exactly the model's keys in its
// range, hashing to its Hash and folding to the root; and SubtreeHash of
// those leaves agrees.
func checkPartition(t *testing.T, tr *Tree, v uint64, root [32]byte, parts []Subtree, maxLeaves uint64, m model, mm metaModel, seed uint64) [][]Leaf {
	t.Helper()
	keys := m.sortedKeys()
	end := new(big.Int)
	var total uint64
	var all [][]Leaf
	next := 0
	for i, p := range parts {
		lo, hi := keyRange(p)
		if lo.Cmp(end) != 0 {
			t.Fatalf("seed %d: part %d starts at %x, the previous ended at %x", seed, i, lo, end)
		}
		end = hi
		if truncate(p.Prefix, p.Depth) != p.Prefix || len(p.Siblings) != p.Depth {
			t.Fatalf("seed %d: part %d: prefix %x with bits beyond depth %d, or %d siblings", seed, i, p.Prefix, p.Depth, len(p.Siblings))
		}
		if p.Leaves > maxLeaves {
			t.Fatalf("seed %d: part %d has %d leaves, more than %d", seed, i, p.Leaves, maxLeaves)
		}
		var leaves []Leaf
		if err := tr.Leaves(v, p.Depth, p.Prefix, func(l Leaf) error { leaves = append(leaves, l); return nil }); err != nil {
			t.Fatalf("seed %d: part %d: Leaves: %v", seed, i, err)
		}
		if uint64(len(leaves)) != p.Leaves {
			t.Fatalf("seed %d: part %d counts %d leaves, Leaves gave %d", seed, i, p.Leaves, len(leaves))
		}
		for _, l := range leaves {
			if next == len(keys) || l.Key != keys[next] || !bytes.Equal(l.Value, m[l.Key]) || !bytes.Equal(l.Meta, mm[l.Key]) {
				t.Fatalf("seed %d: part %d: leaf %x out of place or wrong", seed, i, l.Key)
			}
			next++
		}
		h, err := SubtreeHash(p.Depth, leaves)
		if err != nil || h != p.Hash {
			t.Fatalf("seed %d: part %d: SubtreeHash %x, %v; part says %x", seed, i, h, err, p.Hash)
		}
		if got := FoldSiblings(p.Depth, p.Prefix, h, p.Siblings); got != root {
			t.Fatalf("seed %d: part %d folds to %x, root %x", seed, i, got, root)
		}
		total += p.Leaves
		all = append(all, leaves)
	}
	if want := new(big.Int).Lsh(big.NewInt(1), KeyBits); end.Cmp(want) != 0 {
		t.Fatalf("seed %d: the parts end at %x, before the end of the key space", seed, end)
	}
	if next != len(keys) || total != uint64(len(m)) {
		t.Fatalf("seed %d: the parts hold %d leaves (counted %d), the version %d", seed, next, total, len(m))
	}
	return all
}

// TestPartitionCoversTheTree: for random trees, plain and adversarially
// clustered, and many part sizes, the partition tiles the key space in
// order, each part's leaves rebuild its hash and fold to the root, and
// the partition is the same from any Tree over the store.
func TestPartitionCoversTheTree(t *testing.T) {
	r, seed := testRand(t)
	for trial := range 12 {
		db := kv.NewMem()
		tr := New(db, []byte("s/"))
		size := []int{0, 1, 2, 3, 40, 300}[trial%6]
		v, m, mm, _ := randomTree(t, r, db, tr, size, trial%2 == 1)
		root, err := tr.Root(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, maxLeaves := range []uint64{1, 2, 3, 7, 64, 1000} {
			parts, err := tr.Partition(v, maxLeaves)
			if err != nil {
				t.Fatalf("seed %d: Partition(%d, %d): %v", seed, v, maxLeaves, err)
			}
			if uint64(len(m)) <= maxLeaves && (len(parts) != 1 || parts[0].Depth != 0 || parts[0].Hash != root) {
				t.Fatalf("seed %d: a tree of %d leaves cut in parts of %d: %d parts, want the root alone", seed, len(m), maxLeaves, len(parts))
			}
			checkPartition(t, tr, v, root, parts, maxLeaves, m, mm, seed)
			again, err := New(db, []byte("s/"), WithCacheBytes(0)).Partition(v, maxLeaves)
			if err != nil || !slices.EqualFunc(parts, again, func(a, b Subtree) bool {
				return a.Depth == b.Depth && a.Prefix == b.Prefix && a.Hash == b.Hash && a.Leaves == b.Leaves && slices.Equal(a.Siblings, b.Siblings)
			}) {
				t.Fatalf("seed %d: a second Partition differs (%v)", seed, err)
			}
		}
	}
	if _, err := New(kv.NewMem(), nil).Partition(0, 0); err == nil {
		t.Fatal("Partition into parts of 0 leaves succeeded")
	}
}

// TestLeavesOfAnyPosition: Leaves at any position (inside a part, across a
// compressed leaf, beside it, below the tree's depth) gives exactly the
// model's keys under that prefix, in order.
func TestLeavesOfAnyPosition(t *testing.T) {
	r, seed := testRand(t)
	db := kv.NewMem()
	tr := New(db, []byte("s/"))
	v, m, _, keys := randomTree(t, r, db, tr, 200, true)
	for range 300 {
		depth := r.IntN(KeyBits + 1)
		var prefix [32]byte
		if len(keys) > 0 && r.IntN(4) != 0 {
			prefix = keys[r.IntN(len(keys))]
			if r.IntN(3) == 0 && depth > 0 {
				prefix = withBit(prefix, depth-1, 1-bit(prefix, depth-1)) // a neighbour
			}
		} else {
			for i := range prefix {
				prefix[i] = byte(r.Uint32())
			}
		}
		var want [][32]byte
		for _, k := range keys {
			if sharesPrefix(k, prefix, depth) {
				want = append(want, k)
			}
		}
		var got [][32]byte
		if err := tr.Leaves(v, depth, prefix, func(l Leaf) error {
			if !bytes.Equal(l.Value, m[l.Key]) {
				t.Fatalf("seed %d: leaf %x has value %x", seed, l.Key, l.Value)
			}
			got = append(got, l.Key)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d: Leaves(depth %d, %x): %d keys, want %d", seed, depth, prefix, len(got), len(want))
		}
	}
	stop := errors.New("enough")
	n := 0
	if err := tr.Leaves(v, 0, [32]byte{}, func(Leaf) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("an error from fn: %v after %d leaves, want it at once", err, n)
	}
	for _, d := range []int{-1, KeyBits + 1} {
		if err := tr.Leaves(v, d, [32]byte{}, func(Leaf) error { return nil }); err == nil {
			t.Fatalf("Leaves at depth %d succeeded", d)
		}
	}
}

// TestSubtreeHashRejects: leaves that cannot form a subtree are refused
// with ErrInvalidLeaves (or the value and meta errors); FoldSiblings with
// the wrong number of siblings matches no root.
func TestSubtreeHashRejects(t *testing.T) {
	a, b := Leaf{Key: [32]byte{0x10}, Value: []byte("a")}, Leaf{Key: [32]byte{0x20}, Value: []byte("b")}
	c := Leaf{Key: [32]byte{0x90}, Value: []byte("c")}
	tests := []struct {
		name   string
		depth  int
		leaves []Leaf
		want   error
	}{
		{"out of order", 0, []Leaf{b, a}, ErrInvalidLeaves},
		{"duplicate", 0, []Leaf{a, a}, ErrInvalidLeaves},
		{"not sharing the prefix", 1, []Leaf{a, c}, ErrInvalidLeaves},
		{"depth below 0", -1, []Leaf{a}, ErrInvalidLeaves},
		{"depth beyond the key", KeyBits + 1, nil, ErrInvalidLeaves},
		{"no value", 0, []Leaf{{Key: a.Key}}, ErrInvalidLeaves},
		{"empty value", 0, []Leaf{{Key: a.Key, Value: []byte{}}}, ErrEmptyValue},
		{"value too large", 0, []Leaf{{Key: a.Key, Value: make([]byte, MaxValueSize+1)}}, ErrValueTooLarge},
		{"meta too large", 0, []Leaf{{Key: a.Key, Value: a.Value, Meta: make([]byte, MaxMetaSize+1)}}, ErrMetaTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := SubtreeHash(tc.depth, tc.leaves); !errors.Is(err, tc.want) {
				t.Fatalf("SubtreeHash: %v, want %v", err, tc.want)
			}
			if _, err := New(kv.NewMem(), nil).ImportSubtree(kv.NewMem().NewBatch(), 1, tc.depth, firstKey(tc.leaves), tc.leaves); !errors.Is(err, tc.want) {
				t.Fatalf("ImportSubtree: %v, want %v", err, tc.want)
			}
		})
	}
	if h, err := SubtreeHash(2, []Leaf{a, b}); err != nil || h != hashInner(hashLeaf(a.Key, hashValue(a.Value)), hashLeaf(b.Key, hashValue(b.Value))) {
		t.Fatalf("SubtreeHash of two leaves splitting at depth 2 (bits 2 and 3): %x, %v", h, err)
	}
	h := hashLeaf(a.Key, hashValue(a.Value))
	if FoldSiblings(1, a.Key, h, nil) != invalidFold || FoldSiblings(0, a.Key, h, [][32]byte{{1}}) != invalidFold || FoldSiblings(-1, a.Key, h, nil) != invalidFold {
		t.Fatal("FoldSiblings with the wrong number of siblings returned a root")
	}
	if FoldSiblings(0, a.Key, h, nil) != h {
		t.Fatal("FoldSiblings of the root alone changed it")
	}
}

// firstKey is the first leaf's key, or zero: a prefix every leaf of a
// valid part shares.
func firstKey(leaves []Leaf) [32]byte {
	if len(leaves) == 0 {
		return [32]byte{}
	}
	return leaves[0].Key
}

// importParts imports parts (with their leaves) into tr at version, in a
// random order and in random groups per batch, and returns the refs in key
// order.
func importParts(t *testing.T, r *rand.Rand, db kv.DB, tr *Tree, version uint64, parts []Subtree, leaves [][]Leaf) []SubtreeRef {
	t.Helper()
	refs := make([]SubtreeRef, len(parts))
	order := r.Perm(len(parts))
	b := db.NewBatch()
	for i, j := range order {
		ref, err := tr.ImportSubtree(b, version, parts[j].Depth, parts[j].Prefix, leaves[j])
		if err != nil {
			t.Fatalf("ImportSubtree of part %d: %v", j, err)
		}
		if ref.Hash != parts[j].Hash || ref.Leaves != parts[j].Leaves || ref.Depth != parts[j].Depth || ref.Prefix != parts[j].Prefix {
			t.Fatalf("ImportSubtree of part %d: ref %+v, part %+v", j, ref, parts[j])
		}
		refs[j] = ref
		if r.IntN(3) == 0 || i == len(order)-1 {
			if err := db.Write(b, false); err != nil {
				t.Fatal(err)
			}
			b = db.NewBatch()
		}
	}
	return refs
}

// TestImportReproducesTheTree: a tree imported part by part, in random
// order, from its partition has the source's root, answers every read the
// same, stores exactly the nodes the source's version reaches, and takes
// commits afterwards like any tree.
func TestImportReproducesTheTree(t *testing.T) {
	r, seed := testRand(t)
	for trial := range 8 {
		src := kv.NewMem()
		st := New(src, []byte("s/"))
		v, m, mm, keys := randomTree(t, r, src, st, []int{1, 2, 50, 300}[trial%4], trial%2 == 0)
		root, _ := st.Root(v)
		maxLeaves := []uint64{1, 3, 16, 1000}[r.IntN(4)]
		parts, err := st.Partition(v, maxLeaves)
		if err != nil {
			t.Fatal(err)
		}
		leaves := checkPartition(t, st, v, root, parts, maxLeaves, m, mm, seed)

		db := kv.NewMem()
		tr := New(db, []byte("s/"))
		refs := importParts(t, r, db, tr, v, parts, leaves)
		if _, err := tr.Root(v); !errors.Is(err, ErrVersionNotFound) {
			t.Fatalf("seed %d: Root before FinishImport: %v, want ErrVersionNotFound", seed, err)
		}
		b := db.NewBatch()
		got, err := tr.FinishImport(b, v, refs)
		if err != nil || got != root {
			t.Fatalf("seed %d trial %d: FinishImport = %x, %v; source root %x", seed, trial, got, err, root)
		}
		if err := db.Write(b, false); err != nil {
			t.Fatal(err)
		}
		for _, rec := range []func() (uint64, error){tr.Latest, tr.Oldest} {
			if got, err := rec(); err != nil || got != v {
				t.Fatalf("seed %d: Latest or Oldest after import: %d, %v; want %d", seed, got, err, v)
			}
		}
		fresh := New(db, []byte("s/"), WithCacheBytes(0))
		checkFull(t, fresh, v, m, mm, keys, seed)
		checkNoGarbage(t, db, "s/", v, v, seed)
		if _, err := tr.Root(v - 1); !errors.Is(err, ErrVersionPruned) {
			t.Fatalf("seed %d: Root below the imported version: %v", seed, err)
		}
		// The imported tree takes commits.
		g := &keyGen{r: r, seen: keys}
		for next := v + 1; next <= v+5; next++ {
			cs := withMeta(r, randChanges(r, g, 30))
			applyAll(m, mm, cs)
			commit(t, db, tr, next-1, next, cs)
			checkFull(t, fresh, next, m, mm, g.seen, seed)
		}
		if _, err := tr.Prune(context.Background(), db, v+5, 7); err != nil {
			t.Fatal(err)
		}
		checkNoGarbage(t, db, "s/", v+5, v+5, seed)
	}
}

// TestImportOverAnOldTree: importing into a store that holds older
// versions discards them; the next Prune removes every node they had.
func TestImportOverAnOldTree(t *testing.T) {
	r, seed := testRand(t)
	src := kv.NewMem()
	st := New(src, []byte("s/"))
	v, m, mm, keys := randomTree(t, r, src, st, 200, false)
	// The source goes on a while, so the snapshot is of a later version.
	g := &keyGen{r: r, seen: keys}
	for range 5 {
		cs := withMeta(r, randChanges(r, g, 30))
		applyAll(m, mm, cs)
		commit(t, src, st, v, v+1, cs)
		v++
	}
	root, _ := st.Root(v)
	parts, err := st.Partition(v, 20)
	if err != nil {
		t.Fatal(err)
	}
	var leaves [][]Leaf
	for _, p := range parts {
		var ls []Leaf
		if err := st.Leaves(v, p.Depth, p.Prefix, func(l Leaf) error { ls = append(ls, l); return nil }); err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, ls)
	}

	db := kv.NewMem()
	tr := New(db, []byte("s/"))
	oldV, _, _, _ := randomTree(t, r, db, tr, 150, true) // a stale local state
	if oldV >= v {
		t.Fatalf("the local tree reached version %d, the snapshot is %d", oldV, v)
	}
	refs := importParts(t, r, db, tr, v, parts, leaves)
	if _, err := tr.Root(oldV); err != nil {
		t.Fatalf("seed %d: the old version is unreadable before FinishImport: %v", seed, err)
	}
	b := db.NewBatch()
	if got, err := tr.FinishImport(b, v, refs); err != nil || got != root {
		t.Fatalf("seed %d: FinishImport = %x, %v; want %x", seed, got, err, root)
	}
	if err := db.Write(b, false); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Root(oldV); !errors.Is(err, ErrVersionPruned) {
		t.Fatalf("seed %d: Root of the discarded version: %v", seed, err)
	}
	n, err := tr.Prune(context.Background(), db, v, 5)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d: pruning after the import deleted %d nodes", seed, n)
	checkNoGarbage(t, db, "s/", v, v, seed)
	checkFull(t, New(db, []byte("s/"), WithCacheBytes(0)), v, m, mm, g.seen, seed)
	if err := db.Iterate([]byte("s/F"), func(_, _ []byte) bool { t.Fatal("the floor record outlived the prune"); return false }); err != nil {
		t.Fatal(err)
	}
}

// TestUnfinishedImport: an import cut off before FinishImport leaves the
// tree as it was; a new import at the same version overwrites the garbage,
// one at a higher version outgrows it (Prune removes it), and one at a
// lower version is refused until AbortImport removes it.
func TestUnfinishedImport(t *testing.T) {
	r, seed := testRand(t)
	src := kv.NewMem()
	st := New(src, []byte("s/"))
	var m model
	var mm metaModel
	v, m, mm, keys := randomTree(t, r, src, st, 120, false)
	snapshot := func(v uint64) ([]Subtree, [][]Leaf) {
		parts, err := st.Partition(v, 10)
		if err != nil {
			t.Fatal(err)
		}
		var leaves [][]Leaf
		for _, p := range parts {
			var ls []Leaf
			if err := st.Leaves(v, p.Depth, p.Prefix, func(l Leaf) error { ls = append(ls, l); return nil }); err != nil {
				t.Fatal(err)
			}
			leaves = append(leaves, ls)
		}
		return parts, leaves
	}
	low := v
	lowModel, lowMeta := m.clone(), mm.clone()
	g := &keyGen{r: r, seen: keys}
	for range 3 {
		cs := randChanges(r, g, 20)
		applyAll(m, mm, cs)
		commit(t, src, st, v, v+1, cs)
		v++
	}
	high := v

	db := kv.NewMem()
	tr := New(db, []byte("s/"))
	// Half of the high snapshot, then a "crash".
	parts, leaves := snapshot(high)
	for i := range len(parts) / 2 {
		b := db.NewBatch()
		if _, err := tr.ImportSubtree(b, high, parts[i].Depth, parts[i].Prefix, leaves[i]); err != nil {
			t.Fatal(err)
		}
		if err := db.Write(b, false); err != nil {
			t.Fatal(err)
		}
	}
	if l, _ := tr.Latest(); l != 0 {
		t.Fatalf("an unfinished import moved Latest to %d", l)
	}
	if _, err := tr.Root(high); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("Root of an unfinished import: %v", err)
	}
	// A lower version is refused while the garbage is there.
	lparts, lleaves := snapshot(low)
	if _, err := tr.ImportSubtree(db.NewBatch(), low, lparts[0].Depth, lparts[0].Prefix, lleaves[0]); !errors.Is(err, ErrImportConflict) {
		t.Fatalf("seed %d: import below an unfinished one: %v, want ErrImportConflict", seed, err)
	}
	if _, err := tr.FinishImport(db.NewBatch(), low, []SubtreeRef{{Version: low}}); !errors.Is(err, ErrImportConflict) {
		t.Fatalf("seed %d: FinishImport below an unfinished import: %v, want ErrImportConflict", seed, err)
	}
	n, err := tr.AbortImport(context.Background(), db, 4)
	if err != nil || n == 0 {
		t.Fatalf("AbortImport: %d nodes, %v", n, err)
	}
	if got := storedNodes(t, db, "s/"); len(got) != 0 {
		t.Fatalf("%d nodes left after AbortImport", len(got))
	}
	refs := importParts(t, r, db, tr, low, lparts, lleaves)
	b := db.NewBatch()
	lowRoot, _ := st.Root(low)
	if got, err := tr.FinishImport(b, low, refs); err != nil || got != lowRoot {
		t.Fatalf("seed %d: import at the lower version: %x, %v", seed, got, err)
	}
	if err := db.Write(b, false); err != nil {
		t.Fatal(err)
	}
	checkFull(t, New(db, []byte("s/"), WithCacheBytes(0)), low, lowModel, lowMeta, g.seen, seed)

	// Now half of the high snapshot again, abandoned, and the full one at
	// the same version over it.
	db2 := kv.NewMem()
	tr2 := New(db2, []byte("s/"))
	for i := range len(parts) / 2 {
		b := db2.NewBatch()
		if _, err := tr2.ImportSubtree(b, high, parts[i].Depth, parts[i].Prefix, leaves[i]); err != nil {
			t.Fatal(err)
		}
		if err := db2.Write(b, false); err != nil {
			t.Fatal(err)
		}
	}
	refs = importParts(t, r, db2, tr2, high, parts, leaves)
	b = db2.NewBatch()
	highRoot, _ := st.Root(high)
	if got, err := tr2.FinishImport(b, high, refs); err != nil || got != highRoot {
		t.Fatalf("seed %d: import over an unfinished one at the same version: %x, %v", seed, got, err)
	}
	if err := db2.Write(b, false); err != nil {
		t.Fatal(err)
	}
	checkNoGarbage(t, db2, "s/", high, high, seed)
}

// TestFinishImportRejects: parts that do not tile the key space, or that
// would join into a non-canonical node, are refused.
func TestFinishImportRejects(t *testing.T) {
	r, _ := testRand(t)
	src := kv.NewMem()
	st := New(src, []byte("s/"))
	v, _, _, _ := randomTree(t, r, src, st, 100, false)
	parts, err := st.Partition(v, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) < 3 {
		t.Fatalf("a partition of %d parts", len(parts))
	}
	refs := make([]SubtreeRef, len(parts))
	for i, p := range parts {
		refs[i] = SubtreeRef{Version: v, Depth: p.Depth, Prefix: p.Prefix, Hash: p.Hash, Leaves: p.Leaves}
	}
	emptyHalves := []SubtreeRef{{Version: v, Depth: 1}, {Version: v, Depth: 1, Prefix: [32]byte{0x80}}}
	leafAndEmpty := []SubtreeRef{{Version: v, Depth: 1, Hash: [32]byte{1}, Leaves: 1}, {Version: v, Depth: 1, Prefix: [32]byte{0x80}}}
	tests := []struct {
		name  string
		parts []SubtreeRef
	}{
		{"no parts", nil},
		{"a part missing", append(slices.Clone(refs[:1]), refs[2:]...)},
		{"the last part missing", refs[:len(refs)-1]},
		{"a part twice", append(slices.Clone(refs[:2]), refs[1:]...)},
		{"out of order", append([]SubtreeRef{refs[1], refs[0]}, refs[2:]...)},
		{"a part of another version", append([]SubtreeRef{{Version: v + 1, Depth: refs[0].Depth, Prefix: refs[0].Prefix, Hash: refs[0].Hash, Leaves: refs[0].Leaves}}, refs[1:]...)},
		{"a prefix with bits beyond its depth", []SubtreeRef{{Version: v, Depth: 0, Prefix: [32]byte{1}, Hash: [32]byte{1}, Leaves: 2}}},
		{"leaves without a hash", []SubtreeRef{{Version: v, Leaves: 2}}},
		{"two empty halves", emptyHalves},
		{"a leaf beside an empty half", leafAndEmpty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &countingBatch{}
			if _, err := New(kv.NewMem(), []byte("s/")).FinishImport(b, v, tc.parts); !errors.Is(err, ErrInvalidLeaves) {
				t.Fatalf("FinishImport: %v, want ErrInvalidLeaves", err)
			}
		})
	}
	tr := New(kv.NewMem(), []byte("s/"))
	if _, err := tr.FinishImport(&countingBatch{}, v, refs); err != nil {
		t.Fatalf("FinishImport of the true parts: %v", err)
	}
	if _, err := tr.FinishImport(&countingBatch{}, 0, []SubtreeRef{{}}); !errors.Is(err, ErrVersionOrder) {
		t.Fatalf("FinishImport of version 0: %v", err)
	}
}
