package statetree

import (
	"encoding/binary"
	"sync"
)

// nodeCache keeps nodes in memory within a byte budget, in two parts.
//
// The top of the tree is cached by position: one slot for each place at
// depth <= topDepth, holding the last node seen there. Keys are hashes, so
// a block's changes land all over the tree and every level near the root is
// rewritten by every block; an LRU keyed by hash sees each new node only
// once before evicting it, and so keeps no more than the top dozen levels.
// Slots keep exactly the nodes the next commit and the next proof read, and
// their number bounds their memory. (Reading an old version puts its nodes
// in the slots; the next commit then reads the current ones back once.)
//
// Everything else (deeper nodes, leaves with large values) goes into a
// two-generation cache keyed by version and hash: new and promoted nodes go
// into cur; when cur reaches its limit it becomes old and the previous old
// is dropped; a hit in old promotes the node. That approximates LRU without
// per-access list bookkeeping, and serves hot keys.
//
// A node is found by the version that stored it and its hash, which is how
// parents refer to it, and a hit must match both. The hash alone would not
// do: the same subtree stored by two commits has one hash but children
// stored at different versions, and the older copy may be pruned. Within a
// version, a hash names one stored node, with one exception: a commit whose
// batch was discarded built nodes at a version that a later commit builds
// again, maybe differently (another Meta, children from other versions).
// Commit therefore drops every cached node above its base version before
// it starts (dropAbove), and an import resets the cache.
type nodeCache struct {
	mu       sync.Mutex
	topDepth int // deepest level cached by position; -1 for none
	top      map[uint32]*node
	topBytes int
	genLimit int // bytes per generation; 0 disables the version-and-hash cache
	cur, old map[cacheKey]*node
	curBytes int
	oldBytes int
	// maxVersion is at least the version of every cached node, so that
	// dropAbove is free when nothing is above.
	maxVersion uint64
}

// cacheKey is how a parent refers to a stored node.
type cacheKey struct {
	version uint64
	hash    [32]byte
}

// topSlotBytes bounds what one position slot may hold: a node whose leaf
// value and meta, if any, are at most 64 bytes together (an account and its
// address). Larger leaves go to the version-and-hash cache.
const topSlotBytes = nodeOverhead + 64

// maxTopDepth keeps slot indexes within 32 bits.
const maxTopDepth = 24

func newNodeCache(budget int) *nodeCache {
	c := &nodeCache{topDepth: -1}
	if budget <= 0 {
		return c
	}
	// Up to three quarters of the budget for the top levels, the rest for
	// the hash cache.
	for d := 0; d <= maxTopDepth && topSlots(d)*topSlotBytes <= budget/4*3; d++ {
		c.topDepth = d
	}
	c.top = make(map[uint32]*node)
	c.genLimit = (budget - topSlots(c.topDepth)*topSlotBytes) / 2
	c.cur = make(map[cacheKey]*node)
	return c
}

// topSlots is the number of positions at depths 0..d.
func topSlots(d int) int { return 1<<(d+1) - 1 }

// slot returns the position index of the node at depth on path's way down,
// and whether that depth is cached by position.
func (c *nodeCache) slot(depth int, path [32]byte) (uint32, bool) {
	if depth < 0 || depth > c.topDepth {
		return 0, false
	}
	var prefix uint32
	if depth > 0 {
		prefix = binary.BigEndian.Uint32(path[:4]) >> (32 - depth)
	}
	return 1<<depth - 1 + prefix, true
}

// get returns the node stored at version with hash h, if cached. depth and
// path give its position.
func (c *nodeCache) get(version uint64, h [32]byte, depth int, path [32]byte) *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.slot(depth, path); ok {
		if n := c.top[i]; n != nil && n.hash == h && n.version == version {
			return n
		}
	}
	if c.genLimit <= 0 {
		return nil
	}
	k := cacheKey{version, h}
	if n, ok := c.cur[k]; ok {
		return n
	}
	if n, ok := c.old[k]; ok {
		c.insert(n)
		return n
	}
	return nil
}

// add caches n, found at depth on path's way down.
func (c *nodeCache) add(n *node, depth int, path [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxVersion = max(c.maxVersion, n.version)
	if i, ok := c.slot(depth, path); ok && n.size() <= topSlotBytes {
		if prev := c.top[i]; prev != nil {
			c.topBytes -= prev.size()
		}
		c.top[i] = n
		c.topBytes += n.size()
		return
	}
	if c.genLimit <= 0 || n.size() > c.genLimit {
		return
	}
	if _, ok := c.cur[cacheKey{n.version, n.hash}]; !ok {
		c.insert(n)
	}
}

// dropAbove removes every cached node stored at a version above v.
func (c *nodeCache) dropAbove(v uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.maxVersion <= v {
		return
	}
	for i, n := range c.top {
		if n.version > v {
			c.topBytes -= n.size()
			delete(c.top, i)
		}
	}
	for _, gen := range []struct {
		m     map[cacheKey]*node
		bytes *int
	}{{c.cur, &c.curBytes}, {c.old, &c.oldBytes}} {
		for k, n := range gen.m {
			if k.version > v {
				*gen.bytes -= n.size()
				delete(gen.m, k)
			}
		}
	}
	c.maxVersion = v
}

// reset empties the cache.
func (c *nodeCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.top != nil {
		c.top = make(map[uint32]*node)
	}
	if c.cur != nil {
		c.cur = make(map[cacheKey]*node)
	}
	c.old = nil
	c.topBytes, c.curBytes, c.oldBytes, c.maxVersion = 0, 0, 0, 0
}

// insert adds n to cur, rotating generations first if it would not fit.
func (c *nodeCache) insert(n *node) {
	if c.curBytes+n.size() > c.genLimit {
		c.old, c.oldBytes = c.cur, c.curBytes
		c.cur, c.curBytes = make(map[cacheKey]*node, len(c.old)), 0
	}
	c.cur[cacheKey{n.version, n.hash}] = n
	c.curBytes += n.size()
}

// bytes is the approximate memory held, for tests.
func (c *nodeCache) bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.topBytes + c.curBytes + c.oldBytes
}
