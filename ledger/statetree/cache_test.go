package statetree

import (
	"fmt"
	"testing"

	"github.com/ledgerd/ledgerd/ledger/kv"
)

// TestNodeCacheSlots: every position at depth <= topDepth has its own slot,
// slots stay within the bound, and deeper or unknown positions have none.
func TestNodeCacheSlots(t *testing.T) {
	c := newNodeCache(1 << 20)
	if c.topDepth < 4 {
		t.Fatalf("a 1 MiB cache keeps %d levels by position, want at least 5", c.topDepth+1)
	}
	seen := map[uint32]string{}
	for depth := 0; depth <= c.topDepth; depth++ {
		for prefix := range 1 << depth {
			var path [32]byte
			// The depth bits of prefix, then noise that must not matter.
			v := uint32(prefix)<<(32-depth) | (0x5a5a5a5a >> depth)
			if depth == 0 {
				v = 0xa5a5a5a5
			}
			path[0], path[1], path[2], path[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
			path[31] = 0xff
			i, ok := c.slot(depth, path)
			if !ok {
				t.Fatalf("depth %d: no slot", depth)
			}
			if int(i) >= topSlots(c.topDepth) {
				t.Fatalf("depth %d prefix %d: slot %d beyond %d slots", depth, prefix, i, topSlots(c.topDepth))
			}
			where := fmt.Sprintf("%d/%d", depth, prefix)
			if other, dup := seen[i]; dup {
				t.Fatalf("positions %s and %s share slot %d", other, where, i)
			}
			seen[i] = where
		}
	}
	for _, depth := range []int{-1, c.topDepth + 1, KeyBits} {
		if _, ok := c.slot(depth, [32]byte{}); ok {
			t.Fatalf("depth %d has a slot", depth)
		}
	}
}

// TestNodeCacheHitsOnlyTheAskedNode: a slot answers only for the node it
// holds (its version and hash), a newer node at the same position replaces
// it, and nodes too big for a slot go to the version-and-hash cache.
func TestNodeCacheHitsOnlyTheAskedNode(t *testing.T) {
	c := newNodeCache(1 << 20)
	path := [32]byte{0x80}
	leafRef := func(b byte) ref { return ref{hash: [32]byte{b}, version: 1, kind: kindLeaf, leaves: 1} }
	a, b := newInner(leafRef(1), leafRef(2)).at(3), newInner(leafRef(3), leafRef(4)).at(3)
	c.add(a, 1, path)
	if got := c.get(3, a.hash, 1, path); got != a {
		t.Fatal("the slot's own node misses")
	}
	if got := c.get(3, b.hash, 1, path); got != nil {
		t.Fatal("a different hash hits the slot")
	}
	if got := c.get(4, a.hash, 1, path); got != nil {
		t.Fatal("the same hash at another version hits the slot")
	}
	c.add(b, 1, path)
	if c.get(3, b.hash, 1, path) != b || c.get(3, a.hash, 1, path) != nil {
		t.Fatal("a newer node at the same position does not replace the old one")
	}
	big := newLeaf([32]byte{9}, make([]byte, 4096), nil).at(3)
	c.add(big, 1, path)
	if c.get(3, b.hash, 1, path) != b {
		t.Fatal("a leaf too big for a slot evicted the slot's node")
	}
	if c.get(3, big.hash, -1, path) != big {
		t.Fatal("a leaf too big for a slot is not in the version-and-hash cache")
	}
	if c.get(2, big.hash, -1, path) != nil {
		t.Fatal("a leaf is found under another version")
	}
	if got := c.bytes(); got > 1<<20 {
		t.Fatalf("cache holds %d bytes, budget %d", got, 1<<20)
	}
}

// TestNodeCacheDropAbove: dropAbove forgets exactly the nodes stored above
// the version, in slots and in the generations, and their bytes.
func TestNodeCacheDropAbove(t *testing.T) {
	c := newNodeCache(1 << 20)
	leafRef := func(b byte) ref { return ref{hash: [32]byte{b}, version: 1, kind: kindLeaf, leaves: 1} }
	low := newInner(leafRef(1), leafRef(2)).at(5)
	high := newInner(leafRef(3), leafRef(4)).at(6)
	lowBig := newLeaf([32]byte{7}, make([]byte, 4096), nil).at(5)
	highBig := newLeaf([32]byte{8}, make([]byte, 4096), nil).at(6)
	c.add(low, 1, [32]byte{})
	c.add(high, 1, [32]byte{0x80})
	c.add(lowBig, -1, [32]byte{})
	c.add(highBig, -1, [32]byte{})
	want := low.size() + lowBig.size()
	c.dropAbove(5)
	if c.get(5, low.hash, 1, [32]byte{}) != low || c.get(5, lowBig.hash, -1, [32]byte{}) != lowBig {
		t.Fatal("dropAbove(5) dropped a node of version 5")
	}
	if c.get(6, high.hash, 1, [32]byte{0x80}) != nil || c.get(6, highBig.hash, -1, [32]byte{}) != nil {
		t.Fatal("dropAbove(5) kept a node of version 6")
	}
	if got := c.bytes(); got != want {
		t.Fatalf("cache counts %d bytes after dropAbove, holds %d", got, want)
	}
	c.reset()
	if c.bytes() != 0 || c.get(5, low.hash, 1, [32]byte{}) != nil {
		t.Fatal("reset kept something")
	}
}

// TestDiscardedCommitLeavesNoTrace: a commit whose batch is discarded built
// nodes at a version that the next commit builds again, with the same
// hashes but other children and metas; the cache must not serve the lost
// ones. (A and B share their first 24 bits, so the node joining them sits
// below the levels cached by position.)
func TestDiscardedCommitLeavesNoTrace(t *testing.T) {
	db := kv.NewMem()
	tr := New(db, []byte("s/"))
	a, b, c := [32]byte{1, 2, 3, 0x00}, [32]byte{1, 2, 3, 0x80}, [32]byte{0x80}
	commit(t, db, tr, 0, 1, []Change{
		{Key: a, Value: []byte("a"), Meta: []byte("meta a")},
		{Key: b, Value: []byte("b"), Meta: []byte("meta b")},
		{Key: c, Value: []byte("c")},
	})
	// Lost: A's meta changes (A and every node above it are rebuilt at 2
	// with their old hashes).
	if _, err := tr.Commit(db.NewBatch(), 1, 2, []Change{{Key: a, Value: []byte("a"), Meta: []byte("lost")}}); err != nil {
		t.Fatal(err)
	}
	// Written: B's meta changes instead.
	commit(t, db, tr, 1, 2, []Change{{Key: b, Value: []byte("b"), Meta: []byte("new b")}})
	want := map[[32]byte]string{a: "meta a", b: "new b", c: ""}
	for _, tree := range []*Tree{tr, New(db, []byte("s/"))} {
		n := 0
		if err := tree.Leaves(2, 0, [32]byte{}, func(l Leaf) error {
			if string(l.Meta) != want[l.Key] {
				return fmt.Errorf("leaf %x has meta %q, want %q", l.Key, l.Meta, want[l.Key])
			}
			n++
			return nil
		}); err != nil || n != 3 {
			t.Fatalf("Leaves(2): %d leaves, %v", n, err)
		}
		if got, err := tree.Get(2, a); err != nil || string(got) != "a" {
			t.Fatalf("Get(2, a) = %q, %v", got, err)
		}
	}
}
