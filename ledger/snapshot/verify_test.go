package snapshot

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/internal/testkit/testseed"
	"github.com/ledgerd/ledgerd/ledger"
)

// fixture is a snapshot of a random state of n accounts (plus records)
// held in memory.
func fixture(t testing.TB, n int) (*memTree, *built) {
	t.Helper()
	r, _ := testseed.Rand(t)
	tree := newMemTree(randomLeaves(r, n))
	b, err := buildMem(tree, 42, tree.root())
	if err != nil {
		t.Fatal(err)
	}
	return tree, b
}

func TestBuildChunksVerify(t *testing.T) {
	tree, b := fixture(t, 40_000)
	if err := VerifyManifest(b.m, 42, tree.root()); err != nil {
		t.Fatal(err)
	}
	if len(b.m.Chunks) < 6 {
		t.Fatalf("%d chunks for %d leaves", len(b.m.Chunks), len(tree.leaves))
	}
	if got := b.m.TotalLeaves(); got != uint64(len(tree.leaves)) {
		t.Fatalf("manifest counts %d leaves, the tree has %d", got, len(tree.leaves))
	}
	var all []Leaf
	for i, raw := range b.chunks {
		c, err := VerifyChunk(b.m, tree.root(), raw)
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if len(c.Leaves) > MaxChunkLeaves || len(raw) > MaxChunkBytes {
			t.Fatalf("chunk %d: %d leaves, %d bytes", i, len(c.Leaves), len(raw))
		}
		all = append(all, c.Leaves...)
	}
	if !equalLeaves(all, tree.leaves) {
		t.Fatal("the chunks' leaves, in order, are not the tree's")
	}
}

func equalLeaves(a, b []Leaf) bool {
	return slices.EqualFunc(a, b, func(x, y Leaf) bool {
		return x.Key == y.Key && bytes.Equal(x.Value, y.Value) && bytes.Equal(x.Meta, y.Meta)
	})
}

// Every node must cut the same state into the same bytes, whichever way
// its partition is computed: splitting the whole tree by Build's own rule
// gives the snapshot that the tree's halving partition gives.
func TestBuildIsDeterministic(t *testing.T) {
	tree, b := fixture(t, 30_000)
	again, err := buildMem(newMemTree(tree.leaves), 42, tree.root())
	if err != nil {
		t.Fatal(err)
	}
	whole := newMemTree(tree.leaves)
	whole.wholePartition = true
	split, err := buildMem(whole, 42, tree.root())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []*built{again, split} {
		if o.m.ID() != b.m.ID() || !slices.EqualFunc(o.chunks, b.chunks, bytes.Equal) {
			t.Fatal("two snapshots of one state differ")
		}
	}
}

// A subtree whose chunk would pass MaxChunkBytes is split until every
// part fits, and the parts still prove themselves.
func TestBuildSplitsLargeSubtrees(t *testing.T) {
	var leaves []Leaf
	for i := range 9 {
		v := bytes.Repeat([]byte{byte(i + 1)}, MaxValueSize)
		leaves = append(leaves, recordLeaf([]byte{'r', byte(i)}, v))
	}
	for i := range 50 {
		leaves = append(leaves, recordLeaf([]byte{'s', byte(i)}, []byte{byte(i)}))
	}
	tree := newMemTree(leaves)
	b, err := buildMem(tree, 3, tree.root())
	if err != nil {
		t.Fatal(err)
	}
	if len(b.m.Chunks) < 3 {
		t.Fatalf("%d chunks for 9 MiB of values", len(b.m.Chunks))
	}
	for i, raw := range b.chunks {
		if len(raw) > MaxChunkBytes {
			t.Fatalf("chunk %d has %d bytes", i, len(raw))
		}
		if _, err := VerifyChunk(b.m, tree.root(), raw); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	imp := restoreAll(t, b, tree.root(), nil)
	if !equalLeaves(imp.sortedLeaves(), tree.leaves) {
		t.Fatal("restored leaves differ")
	}
}

func TestBuildRefusesAWrongAppHash(t *testing.T) {
	tree, _ := fixture(t, 100)
	wrong := tree.root()
	wrong[0] ^= 1
	if _, err := buildMem(tree, 42, wrong); err == nil {
		t.Fatal("built a snapshot whose chunks do not prove against its app hash")
	}
}

func TestBuildEmptyState(t *testing.T) {
	tree := newMemTree(nil)
	b, err := buildMem(tree, 1, tree.root())
	if err != nil {
		t.Fatal(err)
	}
	if len(b.m.Chunks) != 1 || b.m.Chunks[0].Leaves != 0 {
		t.Fatalf("manifest %+v", b.m.Chunks)
	}
	restoreAll(t, b, tree.root(), nil)
}

// mutate decodes chunk raw, lets edit change it, and encodes it again.
func mutate(t *testing.T, raw []byte, edit func(c *Chunk)) []byte {
	t.Helper()
	c, err := DecodeChunk(bytesClone(raw))
	if err != nil {
		t.Fatal(err)
	}
	c.Leaves = slices.Clone(c.Leaves)
	c.Siblings = slices.Clone(c.Siblings)
	edit(c)
	return c.Encode()
}

func TestVerifyChunkRejects(t *testing.T) {
	tree, b := fixture(t, 40_000)
	root := tree.root()
	const i = 2
	raw := b.chunks[i]
	flip := func(s []byte, at int) []byte {
		s = bytesClone(s)
		s[at%len(s)] ^= 0x01
		return s
	}
	// A snapshot of the same accounts one height later, after one more
	// account was credited.
	later := newMemTree(append(slices.Clone(tree.leaves), accountLeaf(crypto.Address{1, 2, 3}, ledger.Account{Balance: 5})))
	next, err := buildMem(later, 43, later.root())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		raw  []byte
		m    *Manifest
		want error
	}{
		{"value byte", mutate(t, raw, func(c *Chunk) { c.Leaves[10].Value = flip(c.Leaves[10].Value, 3) }), nil, ErrChunkProof},
		{"meta byte", mutate(t, raw, func(c *Chunk) { c.Leaves[10].Meta = flip(c.Leaves[10].Meta, 5) }), nil, ErrChunkLeaves},
		{"key byte", mutate(t, raw, func(c *Chunk) { c.Leaves[10].Key[31] ^= 1 }), nil, ErrChunkLeaves},
		{"key out of the subtree", mutate(t, raw, func(c *Chunk) { c.Leaves[10].Key[0] ^= 0x80 }), nil, ErrChunkLeaves},
		{"leaves swapped", mutate(t, raw, func(c *Chunk) { c.Leaves[3], c.Leaves[4] = c.Leaves[4], c.Leaves[3] }), nil, ErrChunkLeaves},
		{"another account under the prefix, key and meta consistent", mutate(t, raw, func(c *Chunk) {
			c.Leaves[len(c.Leaves)-1] = accountUnder(t, c)
			slices.SortFunc(c.Leaves, func(a, b Leaf) int { return bytes.Compare(a.Key[:], b.Key[:]) })
		}), nil, ErrChunkProof},
		{"leaf dropped", mutate(t, raw, func(c *Chunk) { c.Leaves = slices.Delete(c.Leaves, 7, 8) }), nil, ErrChunkProof},
		{"leaf duplicated", mutate(t, raw, func(c *Chunk) { c.Leaves = slices.Insert(c.Leaves, 7, c.Leaves[7]) }), nil, ErrChunkLeaves},
		{"empty value", mutate(t, raw, func(c *Chunk) { c.Leaves[0].Value = nil }), nil, ErrChunkLeaves},
		{"sibling byte", mutate(t, raw, func(c *Chunk) { c.Siblings[len(c.Siblings)-1][0] ^= 1 }), nil, ErrChunkProof},
		{"truncated", raw[:len(raw)-1], nil, ErrChunkMalformed},
		{"cut in a leaf", raw[:len(raw)/2], nil, ErrChunkMalformed},
		{"oversized", append(bytesClone(raw), make([]byte, MaxChunkBytes)...), nil, ErrChunkTooLarge},
		{"wrong index", mutate(t, raw, func(c *Chunk) { c.Index = i + 1 }), nil, ErrChunkPosition},
		{"index out of range", mutate(t, raw, func(c *Chunk) { c.Index = uint32(len(b.m.Chunks)) }), nil, ErrChunkIndex},
		{"stale height", next.chunks[i], nil, ErrChunkStale},
		{"stale chunk relabelled", mutate(t, next.chunks[0], func(c *Chunk) { c.Height = 42 }), nil, ErrChunkProof},
		{"manifest undercounts", raw, withEntry(b.m, i, func(e *ChunkInfo) { e.Leaves-- }), ErrManifestMismatch},
		{"manifest hash", raw, withEntry(b.m, i, func(e *ChunkInfo) { e.Hash[0] ^= 1 }), ErrManifestMismatch},
		{"manifest size", raw, withEntry(b.m, i, func(e *ChunkInfo) { e.Size++ }), ErrManifestMismatch},
		{"manifest of another state", raw, next.m, ErrManifestNotTrusted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := b.m
			if tc.m != nil {
				m = tc.m
			}
			_, err := VerifyChunk(m, root, tc.raw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := VerifyChunk(b.m, root, raw); err != nil {
		t.Fatalf("the good chunk: %v", err)
	}
}

// withEntry returns a copy of m with entry i edited.
func withEntry(m *Manifest, i int, edit func(e *ChunkInfo)) *Manifest {
	c := *m
	c.Chunks = slices.Clone(m.Chunks)
	edit(&c.Chunks[i])
	return &c
}

func TestVerifyManifest(t *testing.T) {
	tree, b := fixture(t, 1000)
	root := tree.root()
	if err := VerifyManifest(b.m, 42, root); err != nil {
		t.Fatal(err)
	}
	other := root
	other[5] ^= 1
	if err := VerifyManifest(b.m, 42, other); !errors.Is(err, ErrManifestNotTrusted) {
		t.Fatalf("another app hash: %v", err)
	}
	if err := VerifyManifest(b.m, 41, root); !errors.Is(err, ErrManifestNotTrusted) {
		t.Fatalf("another height: %v", err)
	}
	gap := withEntry(b.m, 0, func(e *ChunkInfo) { e.Depth++ })
	if err := VerifyManifest(gap, 42, root); !errors.Is(err, ErrManifestPartition) {
		t.Fatalf("a manifest with a gap: %v", err)
	}
}

// accountUnder returns the leaf of an account that is not in c but
// whose key is under c's prefix.
func accountUnder(t *testing.T, c *Chunk) Leaf {
	t.Helper()
	for i := range 1 << 20 {
		l := accountLeaf(crypto.Address{byte(i), byte(i >> 8), byte(i >> 16), 0xee}, ledger.Account{Balance: 1})
		if underPrefix(l.Key, c.Prefix, c.Depth) && !slices.ContainsFunc(c.Leaves, func(o Leaf) bool { return o.Key == l.Key }) {
			return l
		}
	}
	t.Fatal("no address found under the prefix")
	return Leaf{}
}

// The byte bound is exact: a subtree whose chunk takes MaxChunkBytes is one
// chunk, and one byte more splits it.
func TestBuildByteBoundIsExact(t *testing.T) {
	leavesOf := func(last int) []Leaf {
		var ls []Leaf
		for i := range 3 {
			ls = append(ls, recordLeaf([]byte{'b', byte(i)}, bytes.Repeat([]byte{byte(i + 1)}, MaxValueSize)))
		}
		return append(ls, recordLeaf([]byte{'b', 9}, bytes.Repeat([]byte{9}, last)))
	}
	size := func(ls []Leaf) int { return (&Chunk{Leaves: ls}).Size() }
	last := MaxValueSize
	for size(leavesOf(last)) > MaxChunkBytes {
		last -= size(leavesOf(last)) - MaxChunkBytes
	}
	if size(leavesOf(last)) != MaxChunkBytes {
		t.Fatalf("no value length makes the chunk exactly %d bytes (%d)", MaxChunkBytes, size(leavesOf(last)))
	}
	for _, tc := range []struct {
		last   int
		chunks int
	}{{last, 1}, {last + 1, 2}} {
		tree := newMemTree(leavesOf(tc.last))
		b, err := buildMem(tree, 1, tree.root())
		if err != nil {
			t.Fatal(err)
		}
		if len(b.chunks) < tc.chunks || (tc.chunks == 1 && len(b.chunks) != 1) {
			t.Fatalf("a last value of %d bytes: %d chunks", tc.last, len(b.chunks))
		}
		if tc.chunks == 1 && len(b.chunks[0]) != MaxChunkBytes {
			t.Fatalf("the chunk has %d bytes", len(b.chunks[0]))
		}
	}
}
