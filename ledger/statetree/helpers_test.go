package statetree

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ledgerd/ledgerd/internal/testkit/testseed"

	"github.com/ledgerd/ledgerd/ledger/kv"
)

// testRand returns a seeded generator; the seed is printed and replays
// with -seed (see internal/testkit/testseed).
func testRand(t testing.TB) (*rand.Rand, uint64) { return testseed.Rand(t) }

// stores are the kv implementations every storage test runs on.
var stores = []struct {
	name string
	open func(t testing.TB) kv.DB
}{
	{"mem", func(t testing.TB) kv.DB { return kv.NewMem() }},
	{"level", func(t testing.TB) kv.DB {
		db, err := kv.OpenLevel(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}},
}

// model is the reference the tree is checked against: a plain map.
type model map[[32]byte][]byte

func (m model) clone() model {
	c := make(model, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (m model) apply(changes []Change) {
	for _, c := range changes {
		if c.Value == nil {
			delete(m, c.Key)
		} else {
			m[c.Key] = slices.Clone(c.Value)
		}
	}
}

func (m model) sortedKeys() [][32]byte {
	keys := make([][32]byte, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	return keys
}

// changes lists m as insertions, sorted.
func (m model) changes() []Change {
	var cs []Change
	for _, k := range m.sortedKeys() {
		cs = append(cs, Change{Key: k, Value: m[k]})
	}
	return cs
}

// referenceRoot computes the root of m straight from the specification in
// the package comment, with no code from the package: the canonical compact
// tree, empty = 32 zero bytes, leaf = H(0 || key || H(value)),
// inner = H(1 || left || right).
func referenceRoot(m model) [32]byte {
	return refSubtree(m, m.sortedKeys(), 0)
}

func refSubtree(m model, keys [][32]byte, depth int) [32]byte {
	switch len(keys) {
	case 0:
		return [32]byte{}
	case 1:
		vh := sha256.Sum256(m[keys[0]])
		return sha256.Sum256(slices.Concat([]byte{0}, keys[0][:], vh[:]))
	}
	var left, right [][32]byte
	for _, k := range keys {
		if k[depth/8]&(0x80>>(depth%8)) == 0 {
			left = append(left, k)
		} else {
			right = append(right, k)
		}
	}
	l, r := refSubtree(m, left, depth+1), refSubtree(m, right, depth+1)
	return sha256.Sum256(slices.Concat([]byte{1}, l[:], r[:]))
}

// keyGen makes keys that often share long prefixes with earlier ones, so
// deep paths, compression and re-compression all get exercised.
type keyGen struct {
	r    *rand.Rand
	seen [][32]byte
}

func (g *keyGen) next() [32]byte {
	var k [32]byte
	if len(g.seen) == 0 || g.r.IntN(2) == 0 {
		for i := range k {
			k[i] = byte(g.r.Uint32())
		}
	} else {
		k = g.seen[g.r.IntN(len(g.seen))]
		// Mostly a near neighbour in the top levels; sometimes one that
		// shares a long prefix (up to all 255 bits), which builds a long
		// chain of one-sided inner nodes.
		b := g.r.IntN(16)
		if g.r.IntN(8) == 0 {
			b = g.r.IntN(KeyBits)
		}
		k[b/8] ^= 0x80 >> (b % 8)
	}
	g.seen = append(g.seen, k)
	return k
}

// existing returns a key that has been generated before (maybe deleted).
func (g *keyGen) existing() [32]byte {
	if len(g.seen) == 0 {
		return g.next()
	}
	return g.seen[g.r.IntN(len(g.seen))]
}

func randValue(r *rand.Rand) []byte {
	v := make([]byte, 1+r.IntN(40))
	for i := range v {
		v[i] = byte(r.Uint32())
	}
	return v
}

// randChanges returns up to max changes mixing inserts of new keys, updates
// and deletes of known keys, deletes of unknown keys, and repeated keys.
func randChanges(r *rand.Rand, g *keyGen, max int) []Change {
	n := 1 + r.IntN(max)
	cs := make([]Change, 0, n)
	for range n {
		switch x := r.IntN(10); {
		case x < 4:
			cs = append(cs, Change{Key: g.next(), Value: randValue(r)})
		case x < 6:
			cs = append(cs, Change{Key: g.existing(), Value: randValue(r)})
		case x < 9:
			cs = append(cs, Change{Key: g.existing()})
		default:
			cs = append(cs, Change{Key: g.next()})
		}
		if len(cs) > 1 && r.IntN(20) == 0 {
			cs = append(cs, Change{Key: cs[r.IntN(len(cs))].Key, Value: randValue(r)})
		}
	}
	return cs
}

// commit commits changes from base to next and writes the batch.
func commit(t testing.TB, db kv.DB, tr *Tree, base, next uint64, changes []Change) [32]byte {
	t.Helper()
	b := db.NewBatch()
	root, err := tr.Commit(b, base, next, changes)
	if err != nil {
		t.Fatalf("commit %d -> %d: %v", base, next, err)
	}
	if err := db.Write(b, false); err != nil {
		t.Fatalf("write version %d: %v", next, err)
	}
	return root
}

// rebuildRoot commits m from scratch into a fresh store and returns the root.
func rebuildRoot(t testing.TB, m model) [32]byte {
	t.Helper()
	db := kv.NewMem()
	return commit(t, db, New(db, []byte("x/")), 0, 1, m.changes())
}

// checkVersion checks that version v of tr holds exactly m: Get for every
// key of m and for the given absent candidates.
func checkVersion(t testing.TB, tr *Tree, v uint64, m model, absent [][32]byte, seed uint64) {
	t.Helper()
	for k, want := range m {
		got, err := tr.Get(v, k)
		if err != nil {
			t.Fatalf("seed %d version %d: Get(%x): %v", seed, v, k, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("seed %d version %d: Get(%x) = %x, want %x", seed, v, k, got, want)
		}
	}
	for _, k := range absent {
		if _, ok := m[k]; ok {
			continue
		}
		got, err := tr.Get(v, k)
		if err != nil || got != nil {
			t.Fatalf("seed %d version %d: Get(absent %x) = %x, %v; want nil, nil", seed, v, k, got, err)
		}
	}
}

// countingBatch is a kv.Batch that counts its operations, and the puts by
// record tag (the byte after the prefix "s/"), for tests that inspect what
// a commit writes without a store.
type countingBatch struct {
	puts, dels int
	byTag      map[byte]int
}

func (b *countingBatch) Put(key, value []byte) {
	b.puts++
	if len(key) > 2 {
		if b.byTag == nil {
			b.byTag = map[byte]int{}
		}
		b.byTag[key[2]]++
	}
}
func (b *countingBatch) Delete(key []byte) { b.dels++ }
func (b *countingBatch) Len() int          { return b.puts + b.dels }
func (b *countingBatch) Reset()            { *b = countingBatch{} }

// mustGet reads key from db, which must hold it.
func mustGet(db kv.Reader, key []byte) []byte {
	b, err := db.Get(key)
	if err != nil {
		panic(fmt.Sprintf("get %q: %v", key, err))
	}
	return b
}

// metaModel is the reference for the Meta the tree keeps with each leaf.
type metaModel map[[32]byte][]byte

func (mm metaModel) clone() metaModel {
	c := make(metaModel, len(mm))
	for k, v := range mm {
		c[k] = v
	}
	return c
}

// lastPerKey returns the last change of every key, as Commit applies them.
func lastPerKey(cs []Change) []Change {
	last := map[[32]byte]int{}
	for i, c := range cs {
		last[c.Key] = i
	}
	var out []Change
	for i, c := range cs {
		if last[c.Key] == i {
			out = append(out, c)
		}
	}
	return out
}

// applyAll applies one commit's changes to the value and meta models: the
// last change of a key wins, Meta included; a nil Meta keeps the key's
// Meta, a new key without Meta has none.
func applyAll(m model, mm metaModel, cs []Change) {
	for _, c := range lastPerKey(cs) {
		_, had := m[c.Key]
		switch {
		case c.Value == nil:
			delete(mm, c.Key)
		case len(c.Meta) > 0:
			mm[c.Key] = slices.Clone(c.Meta)
		case c.Meta != nil || !had:
			delete(mm, c.Key)
		}
	}
	m.apply(lastPerKey(cs))
}

// withMeta gives about half of the changes a random Meta (some empty,
// which clears it).
func withMeta(r *rand.Rand, cs []Change) []Change {
	for i := range cs {
		switch r.IntN(6) {
		case 0, 1:
			cs[i].Meta = make([]byte, 1+r.IntN(MaxMetaSize))
			for j := range cs[i].Meta {
				cs[i].Meta[j] = byte(r.Uint32())
			}
		case 2:
			cs[i].Meta = []byte{}
		}
	}
	return cs
}

// storedNodes returns the keys of every node stored under prefix.
func storedNodes(t testing.TB, db kv.Reader, prefix string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	if err := db.Iterate([]byte(prefix+"N"), func(k, _ []byte) bool {
		out[string(k)] = true
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// reachable adds to into the key of every node reachable from version's
// root, reading each from the store.
func reachable(t testing.TB, tr *Tree, version uint64, into map[string]bool) {
	t.Helper()
	root, err := tr.rootRef(version)
	if err != nil {
		t.Fatalf("version %d: %v", version, err)
	}
	var walk func(r ref, depth int, path [32]byte)
	walk = func(r ref, depth int, path [32]byte) {
		if r.kind == kindEmpty {
			return
		}
		n, err := tr.load(r, depth, path, false)
		if err != nil {
			t.Fatalf("version %d: %v", version, err)
		}
		into[string(tr.nodeKey(r.version, depth, path))] = true
		if !n.leaf {
			walk(n.left, depth+1, withBit(path, depth, 0))
			walk(n.right, depth+1, withBit(path, depth, 1))
		}
	}
	walk(root, 0, [32]byte{})
}

// checkNoGarbage checks that the nodes stored are exactly those reachable
// from the versions from..to (all committed): nothing missing, nothing left
// over.
func checkNoGarbage(t testing.TB, db kv.Reader, prefix string, from, to uint64, seed uint64) {
	t.Helper()
	tr := New(db, []byte(prefix), WithCacheBytes(0))
	want := map[string]bool{}
	for v := max(from, 1); v <= to; v++ {
		reachable(t, tr, v, want)
	}
	got := storedNodes(t, db, prefix)
	if len(got) != len(want) {
		t.Fatalf("seed %d: %d nodes stored, %d reachable from versions %d..%d", seed, len(got), len(want), from, to)
	}
	for k := range want {
		if !got[k] {
			t.Fatalf("seed %d: reachable node %x not stored", seed, k)
		}
	}
}

// checkFull checks version v of tr against the models: Get of every key in
// keys, a verified proof of every present key and of some absent ones, and
// every leaf with its Meta through Leaves.
func checkFull(t testing.TB, tr *Tree, v uint64, m model, mm metaModel, keys [][32]byte, seed uint64) {
	t.Helper()
	root, err := tr.Root(v)
	if err != nil {
		t.Fatalf("seed %d: Root(%d): %v", seed, v, err)
	}
	if want := referenceRoot(m); root != want {
		t.Fatalf("seed %d: Root(%d) = %x, reference %x", seed, v, root, want)
	}
	checkVersion(t, tr, v, m, keys, seed)
	for i, k := range keys {
		if _, ok := m[k]; !ok && i%4 != 0 {
			continue
		}
		val, p, err := tr.Prove(v, k)
		if err != nil {
			t.Fatalf("seed %d version %d: Prove(%x): %v", seed, v, k, err)
		}
		if err := Verify(root, k, m[k], p); err != nil || !bytes.Equal(val, m[k]) {
			t.Fatalf("seed %d version %d: proof of %x: value %x, %v", seed, v, k, val, err)
		}
	}
	var got []Leaf
	if err := tr.Leaves(v, 0, [32]byte{}, func(l Leaf) error { got = append(got, l); return nil }); err != nil {
		t.Fatalf("seed %d version %d: Leaves: %v", seed, v, err)
	}
	want := m.sortedKeys()
	if len(got) != len(want) {
		t.Fatalf("seed %d version %d: Leaves gave %d leaves, want %d", seed, v, len(got), len(want))
	}
	for i, l := range got {
		if l.Key != want[i] || !bytes.Equal(l.Value, m[l.Key]) || !bytes.Equal(l.Meta, mm[l.Key]) {
			t.Fatalf("seed %d version %d: leaf %d is %x=%x (meta %x), want %x=%x (meta %x)",
				seed, v, i, l.Key, l.Value, l.Meta, want[i], m[want[i]], mm[want[i]])
		}
	}
}
