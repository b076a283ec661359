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
// Everything else (deeper nodes, leaves with large values, nodes of unknown
// position) goes into a two-generation cache keyed by hash: new and
// promoted nodes go into cur; when cur reaches its limit it becomes old and
// the previous old is dropped; a hit in old promotes the node. That
// approximates LRU without per-access list bookkeeping, and serves hot keys.
//
// Nodes are immutable and content-addressed, and a hit must match the hash
// asked for, so caching a node that a discarded commit built is harmless:
// it is reachable only from a root that was never recorded.
type nodeCache struct {
	mu       sync.Mutex
	topDepth int // deepest level cached by position; -1 for none
	top      map[uint32]*node
	topBytes int
	genLimit int // bytes per generation; 0 disables the hash cache
	cur, old map[[32]byte]*node
	curBytes int
	oldBytes int
}

// topSlotBytes bounds what one position slot may hold: a node whose leaf
// value, if any, is at most 32 bytes (an account). Larger leaves go to the
// hash cache.
const topSlotBytes = nodeOverhead + 32

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
	c.cur = make(map[[32]byte]*node)
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

// get returns the node with hash h, if cached. depth and path give its
// position (depth -1 if unknown).
func (c *nodeCache) get(h [32]byte, depth int, path [32]byte) *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.slot(depth, path); ok {
		if n := c.top[i]; n != nil && n.hash == h {
			return n
		}
	}
	if c.genLimit <= 0 {
		return nil
	}
	if n, ok := c.cur[h]; ok {
		return n
	}
	if n, ok := c.old[h]; ok {
		c.insert(n)
		return n
	}
	return nil
}

// add caches n, found at depth on path's way down (depth -1 if unknown).
func (c *nodeCache) add(n *node, depth int, path [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	if _, ok := c.cur[n.hash]; !ok {
		c.insert(n)
	}
}

// insert adds n to cur, rotating generations first if it would not fit.
func (c *nodeCache) insert(n *node) {
	if c.curBytes+n.size() > c.genLimit {
		c.old, c.oldBytes = c.cur, c.curBytes
		c.cur, c.curBytes = make(map[[32]byte]*node, len(c.old)), 0
	}
	c.cur[n.hash] = n
	c.curBytes += n.size()
}

// bytes is the approximate memory held, for tests.
func (c *nodeCache) bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.topBytes + c.curBytes + c.oldBytes
}
