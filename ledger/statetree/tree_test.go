package statetree

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"maps"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ledgerd/ledgerd/ledger/kv"
)

// TestRootMatchesSpecification pins the hash construction on small trees
// whose roots are written out by hand.
func TestRootMatchesSpecification(t *testing.T) {
	h := func(parts ...[]byte) [32]byte { return sha256.Sum256(slices.Concat(parts...)) }
	leaf := func(k [32]byte, v string) [32]byte {
		vh := h([]byte(v))
		return h([]byte{0}, k[:], vh[:])
	}
	inner := func(l, r [32]byte) [32]byte { return h([]byte{1}, l[:], r[:]) }
	key := func(b ...byte) (k [32]byte) { copy(k[:], b); return k }
	zero := [32]byte{}

	tests := []struct {
		name string
		m    model
		want [32]byte
	}{
		{"empty tree is all zeros", model{}, zero},
		{"one leaf is the root", model{key(0xff): []byte("a")}, leaf(key(0xff), "a")},
		{"keys split at bit 0", model{key(0x00): []byte("a"), key(0x80): []byte("b")},
			inner(leaf(key(0x00), "a"), leaf(key(0x80), "b"))},
		{"keys split at bit 2 hang under two one-sided inner nodes",
			model{key(0x00): []byte("a"), key(0x20): []byte("b")},
			inner(inner(inner(leaf(key(0x00), "a"), leaf(key(0x20), "b")), zero), zero)},
		{"keys under the right half",
			model{key(0xc0): []byte("a"), key(0x80): []byte("b"), key(0x00): []byte("c")},
			inner(leaf(key(0x00), "c"), inner(leaf(key(0x80), "b"), leaf(key(0xc0), "a")))},
		{"keys split at the last bit",
			model{key(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0): []byte("a"),
				key(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1): []byte("b")},
			func() [32]byte {
				r := inner(leaf(key(), "a"), leaf(key(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), "b"))
				for range 255 {
					r = inner(r, zero)
				}
				return r
			}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := kv.NewMem()
			tr := New(db, []byte("s/"))
			got := commit(t, db, tr, 0, 1, tc.m.changes())
			if got != tc.want {
				t.Fatalf("root %x, want %x", got, tc.want)
			}
			if ref := referenceRoot(tc.m); ref != tc.want {
				t.Fatalf("reference model computes %x, want %x", ref, tc.want)
			}
			if r, err := tr.Root(1); err != nil || r != tc.want {
				t.Fatalf("Root(1) = %x, %v", r, err)
			}
		})
	}
}

// TestCommitMatchesModel applies random change sets and checks after every
// version that Get agrees with a map and the root equals both the reference
// computation and a from-scratch rebuild of the same map.
func TestCommitMatchesModel(t *testing.T) {
	caches := []struct {
		name  string
		bytes int
	}{
		{"default cache", DefaultCacheBytes},
		{"no cache", 0},
		{"tiny cache", 20 * nodeOverhead},
	}
	for _, st := range stores {
		for _, c := range caches {
			t.Run(st.name+"/"+c.name, func(t *testing.T) {
				r, seed := testRand(t)
				db := st.open(t)
				tr := New(db, []byte("s/"), WithCacheBytes(c.bytes))
				g := &keyGen{r: r}
				m := model{}
				for v := uint64(1); v <= 40; v++ {
					cs := randChanges(r, g, 60)
					m.apply(cs)
					root := commit(t, db, tr, v-1, v, cs)
					if want := referenceRoot(m); root != want {
						t.Fatalf("seed %d version %d: root %x, reference %x", seed, v, root, want)
					}
					if rebuilt := rebuildRoot(t, m); root != rebuilt {
						t.Fatalf("seed %d version %d: root %x, rebuilt from scratch %x", seed, v, root, rebuilt)
					}
					checkVersion(t, tr, v, m, g.seen, seed)
				}
			})
		}
	}
}

// TestShapeIsCanonical reaches the same final map through different
// histories (one commit; many commits in random order with detours through
// other values and keys that are later deleted) and expects one root.
func TestShapeIsCanonical(t *testing.T) {
	r, seed := testRand(t)
	for trial := range 20 {
		g := &keyGen{r: r}
		final := model{}
		for range 1 + r.IntN(80) {
			final[g.next()] = randValue(r)
		}
		want := rebuildRoot(t, final)

		db := kv.NewMem()
		tr := New(db, []byte("s/"))
		cur := model{}
		var root [32]byte
		v := uint64(0)
		for {
			var cs []Change
			for range 1 + r.IntN(15) {
				switch x := r.IntN(4); {
				case x == 0: // a temporary key
					cs = append(cs, Change{Key: g.next(), Value: randValue(r)})
				case x == 1: // a detour value for a final key
					k := final.sortedKeys()[r.IntN(len(final))]
					cs = append(cs, Change{Key: k, Value: randValue(r)})
				default: // move one key to its final state
					k := g.existing()
					cs = append(cs, Change{Key: k, Value: final[k]})
				}
			}
			cur.apply(cs)
			root = commit(t, db, tr, v, v+1, cs)
			v++
			if v > 30 {
				break
			}
		}
		// Settle whatever still differs.
		var fix []Change
		for _, k := range g.seen {
			if !bytes.Equal(cur[k], final[k]) {
				fix = append(fix, Change{Key: k, Value: final[k]})
			}
		}
		r.Shuffle(len(fix), func(i, j int) { fix[i], fix[j] = fix[j], fix[i] })
		root = commit(t, db, tr, v, v+1, fix)
		if root != want {
			t.Fatalf("seed %d trial %d: root after %d commits %x, built in one %x", seed, trial, v+1, root, want)
		}
		// Deleting everything returns to the empty tree.
		var del []Change
		for k := range final {
			del = append(del, Change{Key: k})
		}
		if root := commit(t, db, tr, v+1, v+2, del); root != EmptyRoot {
			t.Fatalf("seed %d trial %d: deleting every key leaves root %x", seed, trial, root)
		}
	}
}

// TestChangeOrderAndDuplicates: the order of a change set does not matter,
// and of two changes to one key the later wins.
func TestChangeOrderAndDuplicates(t *testing.T) {
	r, seed := testRand(t)
	g := &keyGen{r: r}
	var cs []Change
	m := model{}
	for len(m) < 50 {
		c := Change{Key: g.next(), Value: randValue(r)}
		if _, dup := m[c.Key]; dup {
			continue // each key once: here the order must not matter
		}
		cs = append(cs, c)
		m.apply([]Change{c})
	}
	want := referenceRoot(m)
	for trial := range 10 {
		shuffled := slices.Clone(cs)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		db := kv.NewMem()
		if root := commit(t, db, New(db, nil), 0, 1, shuffled); root != want {
			t.Fatalf("seed %d trial %d: shuffled change set gives %x, want %x", seed, trial, root, want)
		}
	}

	k := g.next()
	tests := []struct {
		name    string
		changes []Change
		want    []byte
	}{
		{"later value wins", []Change{{Key: k, Value: []byte("a")}, {Key: k, Value: []byte("b")}}, []byte("b")},
		{"later delete wins", []Change{{Key: k, Value: []byte("a")}, {Key: k, Value: nil}}, nil},
		{"later insert wins over delete", []Change{{Key: k, Value: nil}, {Key: k, Value: []byte("c")}}, []byte("c")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := kv.NewMem()
			tr := New(db, nil)
			commit(t, db, tr, 0, 1, tc.changes)
			got, err := tr.Get(1, k)
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("Get = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestOldVersionsStayReadable checks every version's contents and proofs
// after all later versions have been committed.
func TestOldVersionsStayReadable(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			r, seed := testRand(t)
			db := st.open(t)
			tr := New(db, []byte("s/"))
			g := &keyGen{r: r}
			m := model{}
			snaps := []model{{}}
			roots := [][32]byte{EmptyRoot}
			for v := uint64(1); v <= 25; v++ {
				cs := randChanges(r, g, 40)
				m.apply(cs)
				roots = append(roots, commit(t, db, tr, v-1, v, cs))
				snaps = append(snaps, m.clone())
			}
			// A fresh Tree (empty cache) reads only what the store holds.
			fresh := New(db, []byte("s/"))
			for v, snap := range snaps {
				for _, tree := range []*Tree{tr, fresh} {
					root, err := tree.Root(uint64(v))
					if err != nil || root != roots[v] {
						t.Fatalf("seed %d: Root(%d) = %x, %v; want %x", seed, v, root, err, roots[v])
					}
					checkVersion(t, tree, uint64(v), snap, g.seen, seed)
				}
				for _, k := range g.seen {
					val, p, err := fresh.Prove(uint64(v), k)
					if err != nil {
						t.Fatalf("seed %d version %d: Prove(%x): %v", seed, v, k, err)
					}
					if !bytes.Equal(val, snap[k]) {
						t.Fatalf("seed %d version %d: Prove(%x) value %x, want %x", seed, v, k, val, snap[k])
					}
					if err := Verify(roots[v], k, snap[k], p); err != nil {
						t.Fatalf("seed %d version %d: proof of %x: %v", seed, v, k, err)
					}
				}
			}
		})
	}
}

// TestUnwrittenCommitLeavesBase: a commit whose batch is discarded, or whose
// write fails, leaves the tree at its base version, and the same version can
// then be committed with other changes.
func TestUnwrittenCommitLeavesBase(t *testing.T) {
	tests := []struct {
		name    string
		abandon func(t *testing.T, db *kv.Mem, b kv.Batch)
	}{
		{"batch discarded", func(t *testing.T, db *kv.Mem, b kv.Batch) {}},
		{"write fails", func(t *testing.T, db *kv.Mem, b kv.Batch) {
			db.FailNextWrite = true
			if err := db.Write(b, true); !errors.Is(err, kv.ErrInjected) {
				t.Fatalf("write: %v, want injected failure", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, seed := testRand(t)
			db := kv.NewMem()
			tr := New(db, []byte("s/"))
			g := &keyGen{r: r}
			m := model{}
			for range 100 {
				m[g.next()] = randValue(r)
			}
			base := commit(t, db, tr, 0, 1, m.changes())
			before := db.Len()

			b := db.NewBatch()
			lost := randChanges(r, g, 50)
			lostRoot, err := tr.Commit(b, 1, 2, lost)
			if err != nil {
				t.Fatal(err)
			}
			tc.abandon(t, db, b)

			if db.Len() != before {
				t.Fatalf("seed %d: store grew from %d to %d keys", seed, before, db.Len())
			}
			if _, err := tr.Root(2); !errors.Is(err, ErrVersionNotFound) {
				t.Fatalf("seed %d: Root(2) after abandoned commit: %v, want ErrVersionNotFound", seed, err)
			}
			if _, err := tr.Get(2, g.seen[0]); !errors.Is(err, ErrVersionNotFound) {
				t.Fatalf("seed %d: Get(2) after abandoned commit: %v, want ErrVersionNotFound", seed, err)
			}
			if root, _ := tr.Root(1); root != base {
				t.Fatalf("seed %d: Root(1) changed", seed)
			}
			checkVersion(t, tr, 1, m, g.seen, seed)

			// Version 2 again, with other changes; nodes the lost commit left
			// in the cache must not leak into it.
			other := randChanges(r, g, 50)
			m.apply(other)
			root := commit(t, db, tr, 1, 2, other)
			if want := referenceRoot(m); root != want {
				t.Fatalf("seed %d: root %x, reference %x (lost commit had %x)", seed, root, want, lostRoot)
			}
			checkVersion(t, New(db, []byte("s/")), 2, m, g.seen, seed)
		})
	}
}

// TestCommitRejects covers the arguments Commit refuses; a refused commit
// adds nothing to the batch.
func TestCommitRejects(t *testing.T) {
	db := kv.NewMem()
	tr := New(db, []byte("s/"))
	commit(t, db, tr, 0, 1, []Change{{Key: [32]byte{1}, Value: []byte("v")}})
	commit(t, db, tr, 1, 2, []Change{{Key: [32]byte{2}, Value: []byte("v")}})

	tests := []struct {
		name       string
		base, next uint64
		changes    []Change
		want       error
	}{
		{"next equals base", 2, 2, nil, ErrVersionOrder},
		{"next below base", 2, 1, nil, ErrVersionOrder},
		{"base never committed", 5, 6, nil, ErrVersionNotFound},
		{"next already committed", 1, 2, nil, ErrVersionExists},
		{"empty value", 2, 3, []Change{{Key: [32]byte{3}, Value: []byte{}}}, ErrEmptyValue},
		{"value too large", 2, 3, []Change{{Key: [32]byte{3}, Value: make([]byte, MaxValueSize+1)}}, ErrValueTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &countingBatch{}
			_, err := tr.Commit(b, tc.base, tc.next, tc.changes)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if b.Len() != 0 {
				t.Fatalf("refused commit queued %d operations", b.Len())
			}
		})
	}
	// A value of exactly MaxValueSize is fine.
	big := make([]byte, MaxValueSize)
	commit(t, db, tr, 2, 3, []Change{{Key: [32]byte{3}, Value: big}})
	if got, err := tr.Get(3, [32]byte{3}); err != nil || len(got) != MaxValueSize {
		t.Fatalf("Get of a maximal value: %d bytes, %v", len(got), err)
	}
}

// TestCommitWritesOnlyTouchedPaths: updating one key writes exactly its leaf,
// the inner nodes on its path, a stale-index entry for each node they
// replace, the root record and the latest-version record, so the cost of a
// commit follows the depth (~log n), never the size of the state.
func TestCommitWritesOnlyTouchedPaths(t *testing.T) {
	r, seed := testRand(t)
	db := kv.NewMem()
	tr := New(db, []byte("s/"))
	m := model{}
	v := uint64(0)
	for _, size := range []int{1000, 4000, 16000} {
		var cs []Change
		for len(m) < size {
			var k [32]byte
			for i := range k {
				k[i] = byte(r.Uint32())
			}
			c := Change{Key: k, Value: randValue(r)}
			m.apply([]Change{c})
			cs = append(cs, c)
		}
		commit(t, db, tr, v, v+1, cs)
		v++
		keys := m.sortedKeys()
		maxDepth := 0
		for range 50 {
			k := keys[r.IntN(len(keys))]
			_, p, err := tr.Prove(v, k)
			if err != nil {
				t.Fatal(err)
			}
			b := &countingBatch{}
			if _, err := tr.Commit(b, v, v+1, []Change{{Key: k, Value: randValue(r)}}); err != nil {
				t.Fatal(err)
			}
			depth := len(p.Siblings)
			maxDepth = max(maxDepth, depth)
			want := map[byte]int{tagNode: depth + 1, tagStale: depth + 1, tagRoot: 1, tagLatest: 1}
			if !maps.Equal(b.byTag, want) || b.dels != 0 {
				t.Fatalf("seed %d size %d: updating a key at depth %d wrote %d deletes and puts by record tag %v; want %v",
					seed, size, depth, b.dels, b.byTag, want)
			}
		}
		// Random keys keep the tree balanced: depth stays near log2(n).
		if limit := 2*bits.Len(uint(size)) + 8; maxDepth > limit {
			t.Fatalf("seed %d size %d: a leaf at depth %d, expected at most %d", seed, size, maxDepth, limit)
		}
	}
}

// TestConcurrentReaders proves and reads committed versions from several
// goroutines while one goroutine commits new ones (run it with -race).
func TestConcurrentReaders(t *testing.T) {
	r, seed := testRand(t)
	db := kv.NewMem()
	tr := New(db, []byte("s/"), WithCacheBytes(200*nodeOverhead))
	g := &keyGen{r: r}
	m := model{}
	for range 200 {
		m[g.next()] = randValue(r)
	}
	commit(t, db, tr, 0, 1, m.changes())
	keys := m.sortedKeys()
	root1, _ := tr.Root(1)

	// Pre-generate the writer's changes so r is not shared between goroutines.
	var batches [][]Change
	for range 30 {
		batches = append(batches, randChanges(r, g, 30))
	}
	var latest atomic.Uint64
	latest.Store(1)
	done := make(chan struct{})
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				k := keys[(i*7+w)%len(keys)]
				val, p, err := tr.Prove(1, k)
				if err == nil {
					err = Verify(root1, k, val, p)
				}
				if err == nil && !bytes.Equal(val, m[k]) {
					err = errors.New("version 1 changed under a concurrent commit")
				}
				if err == nil {
					v := latest.Load()
					var root [32]byte
					if root, err = tr.Root(v); err == nil {
						if val, p, err = tr.Prove(v, k); err == nil {
							err = Verify(root, k, val, p)
						}
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i, cs := range batches {
		v := uint64(i + 1)
		commit(t, db, tr, v, v+1, cs)
		latest.Store(v + 1)
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("seed %d: reader: %v", seed, err)
	}
}

// TestCacheStaysBounded: the node cache never holds more than its budget.
func TestCacheStaysBounded(t *testing.T) {
	r, _ := testRand(t)
	for _, budget := range []int{0, 10 * nodeOverhead, 1000 * nodeOverhead} {
		db := kv.NewMem()
		tr := New(db, nil, WithCacheBytes(budget))
		g := &keyGen{r: r}
		m := model{}
		for v := uint64(1); v <= 10; v++ {
			var cs []Change
			for range 300 {
				cs = append(cs, Change{Key: g.next(), Value: randValue(r)})
			}
			m.apply(cs)
			commit(t, db, tr, v-1, v, cs)
			if got := tr.cache.bytes(); got > budget {
				t.Fatalf("budget %d: cache holds %d bytes after commit %d", budget, got, v)
			}
		}
		checkVersion(t, tr, 10, m, nil, 0)
		if got := tr.cache.bytes(); got > budget {
			t.Fatalf("budget %d: cache holds %d bytes after reads", budget, got)
		}
	}
}

// TestCorruptStoreIsReported: damaged or missing nodes and roots produce
// ErrCorrupt from reads and commits, never a panic or a wrong answer.
func TestCorruptStoreIsReported(t *testing.T) {
	keyA, keyB := [32]byte{0x00, 1}, [32]byte{0x80, 2}
	setup := func(t *testing.T) (*kv.Mem, *Tree, [32]byte) {
		db := kv.NewMem()
		tr := New(db, []byte("s/"), WithCacheBytes(0))
		root := commit(t, db, tr, 0, 1, []Change{{Key: keyA, Value: []byte("a")}, {Key: keyB, Value: []byte("b")}})
		return db, tr, root
	}
	put := func(db *kv.Mem, k, v []byte) {
		b := db.NewBatch()
		if v == nil {
			b.Delete(k)
		} else {
			b.Put(k, v)
		}
		if err := db.Write(b, false); err != nil {
			panic(err)
		}
	}
	leafA := newLeaf(keyA, []byte("a"), nil).at(1).ref()
	rootNode := func(tr *Tree) []byte { return tr.nodeKey(1, 0, [32]byte{}) }
	leafNode := func(tr *Tree) []byte { return tr.nodeKey(1, 1, keyA) }
	tests := []struct {
		name   string
		damage func(db *kv.Mem, tr *Tree, root [32]byte)
	}{
		{"root node missing", func(db *kv.Mem, tr *Tree, root [32]byte) { put(db, rootNode(tr), nil) }},
		{"leaf missing", func(db *kv.Mem, tr *Tree, root [32]byte) { put(db, leafNode(tr), nil) }},
		{"node truncated", func(db *kv.Mem, tr *Tree, root [32]byte) { put(db, rootNode(tr), []byte{tagInner, 1, 2}) }},
		{"unknown node tag", func(db *kv.Mem, tr *Tree, root [32]byte) {
			put(db, rootNode(tr), append([]byte{7}, make([]byte, innerSize-1)...))
		}},
		{"leaf value altered", func(db *kv.Mem, tr *Tree, root [32]byte) {
			put(db, leafNode(tr), append(append([]byte{tagLeaf}, keyA[:]...), 0, 0, 'x'))
		}},
		{"inner node swapped for another", func(db *kv.Mem, tr *Tree, root [32]byte) {
			put(db, rootNode(tr), newInner(leafA, leafA).encode())
		}},
		{"inner node claims a child from a later version", func(db *kv.Mem, tr *Tree, root [32]byte) {
			n, err := decodeNode(mustGet(db, rootNode(tr)))
			if err != nil {
				panic(err)
			}
			n.left.version = 2
			put(db, rootNode(tr), n.encode())
		}},
		{"inner node miscounts its leaves", func(db *kv.Mem, tr *Tree, root [32]byte) {
			b := mustGet(db, rootNode(tr))
			b[len(b)-1]++ // the right child's leaf count; hashes unchanged
			put(db, rootNode(tr), b)
		}},
		{"root record truncated", func(db *kv.Mem, tr *Tree, root [32]byte) { put(db, tr.rootKey(1), root[:31]) }},
		{"root record names a later version", func(db *kv.Mem, tr *Tree, root [32]byte) {
			put(db, tr.rootKey(1), encodeRootRecord(ref{hash: root, version: 2, kind: kindInner, leaves: 2}))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, tr, root := setup(t)
			tc.damage(db, tr, root)
			if _, err := tr.Get(1, keyA); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Get: %v, want ErrCorrupt", err)
			}
			if _, _, err := tr.Prove(1, keyA); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Prove: %v, want ErrCorrupt", err)
			}
			if _, err := tr.Commit(db.NewBatch(), 1, 2, []Change{{Key: keyA, Value: nil}}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Commit: %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestPrefixIsolation: two trees under different prefixes of one store do
// not see each other, and every key a tree writes carries its prefix.
func TestPrefixIsolation(t *testing.T) {
	db := kv.NewMem()
	a, b := New(db, []byte("a/")), New(db, []byte("b/"))
	k := [32]byte{9}
	commit(t, db, a, 0, 1, []Change{{Key: k, Value: []byte("in a")}})
	if _, err := b.Root(1); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("tree b sees tree a's version: %v", err)
	}
	commit(t, db, b, 0, 1, []Change{{Key: k, Value: []byte("in b")}})
	for _, tc := range []struct {
		tr   *Tree
		want string
	}{{a, "in a"}, {b, "in b"}} {
		if got, err := tc.tr.Get(1, k); err != nil || string(got) != tc.want {
			t.Fatalf("Get = %q, %v; want %q", got, err, tc.want)
		}
	}
	total := 0
	for _, p := range []string{"a/", "b/"} {
		if err := db.Iterate([]byte(p), func(_, _ []byte) bool { total++; return true }); err != nil {
			t.Fatal(err)
		}
	}
	if total != db.Len() {
		t.Fatalf("%d of %d keys carry a tree prefix", total, db.Len())
	}
}

// TestCacheServesCommits: the cache keeps what the next commit reads. The
// tree that built a state commits updates without reading the store; a
// fresh tree reads a path once, and then no more.
func TestCacheServesCommits(t *testing.T) {
	r, seed := testRand(t)
	db := kv.NewMem()
	reads := &countingReader{Reader: db}
	tr := New(reads, []byte("s/"))
	m := model{}
	for len(m) < 5000 {
		var k [32]byte
		for i := range k {
			k[i] = byte(r.Uint32())
		}
		m[k] = randValue(r)
	}
	commit(t, db, tr, 0, 1, m.changes())
	keys := m.sortedKeys()
	updates := func() []Change {
		var cs []Change
		for range 300 {
			cs = append(cs, Change{Key: keys[r.IntN(len(keys))], Value: randValue(r)})
		}
		return cs
	}
	tests := []struct {
		name      string
		tree      *Tree
		wantReads func(n int64) bool
		want      string
	}{
		{"builder, first commit", tr, func(n int64) bool { return n == 0 }, "none"},
		{"fresh tree, first commit", New(reads, []byte("s/")), func(n int64) bool { return n > 0 }, "some"},
	}
	v := uint64(1)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := updates()
			before := reads.gets.Load()
			commit(t, db, tc.tree, v, v+1, cs)
			v++
			if n := reads.gets.Load() - before; !tc.wantReads(n) {
				t.Fatalf("seed %d: %d store reads, want %s", seed, n, tc.want)
			}
			// Touching the same keys again reads nothing: the commit cached
			// the new paths.
			for i := range cs {
				cs[i].Value = randValue(r)
			}
			before = reads.gets.Load()
			commit(t, db, tc.tree, v, v+1, cs)
			v++
			if n := reads.gets.Load() - before; n != 0 {
				t.Fatalf("seed %d: recommitting the same keys read %d nodes from the store", seed, n)
			}
		})
	}
}
