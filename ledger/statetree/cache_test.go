package statetree

import (
	"fmt"
	"testing"
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

// TestNodeCacheHitsOnlyTheAskedHash: a slot answers only for the node it
// holds, a newer node at the same position replaces it, and nodes too big
// for a slot go to the hash cache.
func TestNodeCacheHitsOnlyTheAskedHash(t *testing.T) {
	c := newNodeCache(1 << 20)
	path := [32]byte{0x80}
	a, b := newInner([32]byte{1}, [32]byte{2}), newInner([32]byte{3}, [32]byte{4})
	c.add(a, 1, path)
	if got := c.get(a.hash, 1, path); got != a {
		t.Fatal("the slot's own node misses")
	}
	if got := c.get(b.hash, 1, path); got != nil {
		t.Fatal("a different hash hits the slot")
	}
	c.add(b, 1, path)
	if c.get(b.hash, 1, path) != b || c.get(a.hash, 1, path) != nil {
		t.Fatal("a newer node at the same position does not replace the old one")
	}
	big := newLeaf([32]byte{9}, make([]byte, 4096))
	c.add(big, 1, path)
	if c.get(b.hash, 1, path) != b {
		t.Fatal("a leaf too big for a slot evicted the slot's node")
	}
	if c.get(big.hash, -1, path) != big {
		t.Fatal("a leaf too big for a slot is not in the hash cache")
	}
	if got := c.bytes(); got > 1<<20 {
		t.Fatalf("cache holds %d bytes, budget %d", got, 1<<20)
	}
}
