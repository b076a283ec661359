package statetree

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/ledgerd/ledgerd/ledger/kv"
)

// MaxValueSize bounds a value's length.
const MaxValueSize = 1 << 20

// DefaultCacheBytes is the node cache budget New uses unless told otherwise.
// It holds the top 18 levels of the tree (up to 262,143 nodes, everything
// down to depth 17; a tree of 1,000,000 random keys has its leaves around
// depth 20) plus up to about 250,000 other recently used nodes.
const DefaultCacheBytes = 128 << 20

var (
	// ErrVersionNotFound is returned for a version that was never committed
	// (or whose batch was not written yet).
	ErrVersionNotFound = errors.New("statetree: version not found")
	// ErrVersionExists is returned by Commit when next is already recorded.
	ErrVersionExists = errors.New("statetree: version already committed")
	// ErrVersionOrder is returned by Commit when next is not above base.
	ErrVersionOrder = errors.New("statetree: next version must be greater than base")
	// ErrEmptyValue is returned by Commit for a zero-length, non-nil value.
	// Present values are never empty, so a nil value always means absent.
	ErrEmptyValue = errors.New("statetree: empty value (use nil to delete)")
	// ErrValueTooLarge is returned by Commit for a value over MaxValueSize.
	ErrValueTooLarge = errors.New("statetree: value too large")
	// ErrCorrupt is returned when the store holds a node or root that is
	// missing, malformed or does not match its hash.
	ErrCorrupt = errors.New("statetree: corrupt store")
)

// Change sets Key to Value in a commit; a nil Value deletes Key.
type Change struct {
	Key   [32]byte
	Value []byte
}

// Tree is the versioned Merkle map over a kv store. It holds no mutable
// state besides a bounded cache of immutable nodes, so any number of
// goroutines may read (Root, Get, Prove) while another commits.
type Tree struct {
	db     kv.Reader
	prefix []byte
	cache  *nodeCache
}

// Option configures a Tree.
type Option func(*Tree)

// WithCacheBytes sets the node cache budget in bytes; 0 disables the cache.
func WithCacheBytes(n int) Option {
	return func(t *Tree) { t.cache = newNodeCache(n) }
}

// New returns the tree stored in db under prefix. Every key the tree reads
// or writes starts with prefix, so the tree can share db with other stores.
func New(db kv.Reader, prefix []byte, opts ...Option) *Tree {
	t := &Tree{db: db, prefix: slices.Clone(prefix), cache: newNodeCache(DefaultCacheBytes)}
	for _, o := range opts {
		o(t)
	}
	return t
}

func (t *Tree) nodeKey(h [32]byte) []byte {
	k := make([]byte, 0, len(t.prefix)+1+32)
	k = append(k, t.prefix...)
	k = append(k, 'n')
	return append(k, h[:]...)
}

func (t *Tree) rootKey(version uint64) []byte {
	k := make([]byte, 0, len(t.prefix)+1+8)
	k = append(k, t.prefix...)
	k = append(k, 'r')
	return binary.BigEndian.AppendUint64(k, version)
}

// Root returns the root hash of a committed version. Version 0 is the empty
// tree (EmptyRoot) and always exists. A version whose batch has not been
// written yields ErrVersionNotFound.
func (t *Tree) Root(version uint64) ([32]byte, error) {
	v, err := t.db.Get(t.rootKey(version))
	switch {
	case errors.Is(err, kv.ErrNotFound):
		if version == 0 {
			return EmptyRoot, nil
		}
		return EmptyRoot, fmt.Errorf("%w: %d", ErrVersionNotFound, version)
	case err != nil:
		return EmptyRoot, fmt.Errorf("statetree: read root of version %d: %w", version, err)
	case len(v) != 32:
		return EmptyRoot, fmt.Errorf("%w: root of version %d has %d bytes", ErrCorrupt, version, len(v))
	}
	return [32]byte(v), nil
}

// load returns the node with hash h, or nil for the empty subtree. depth
// and path say where the node sits (any key whose path passes through it),
// for the cache; depth is -1 when unknown.
func (t *Tree) load(h [32]byte, depth int, path [32]byte) (*node, error) {
	if h == EmptyRoot {
		return nil, nil
	}
	if n := t.cache.get(h, depth, path); n != nil {
		return n, nil
	}
	b, err := t.db.Get(t.nodeKey(h))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, fmt.Errorf("%w: node %x missing", ErrCorrupt, h)
	}
	if err != nil {
		return nil, fmt.Errorf("statetree: read node %x: %w", h, err)
	}
	n, err := decodeNode(h, b)
	if err != nil {
		return nil, err
	}
	t.cache.add(n, depth, path)
	return n, nil
}

// Get returns the value of key in version, or nil if key is absent. The
// returned slice is the caller's own.
func (t *Tree) Get(version uint64, key [32]byte) ([]byte, error) {
	v, _, err := t.walk(version, key, false)
	return v, err
}

// Prove returns the value of key in version (nil if absent) and a proof of
// that answer against Root(version), which Verify checks.
func (t *Tree) Prove(version uint64, key [32]byte) ([]byte, *Proof, error) {
	return t.walk(version, key, true)
}

// walk descends from the root of version along key's path to a leaf or an
// empty subtree, collecting the siblings when prove is set.
func (t *Tree) walk(version uint64, key [32]byte, prove bool) ([]byte, *Proof, error) {
	h, err := t.Root(version)
	if err != nil {
		return nil, nil, err
	}
	var p *Proof
	if prove {
		p = &Proof{}
	}
	for depth := 0; ; depth++ {
		n, err := t.load(h, depth, key)
		if err != nil {
			return nil, nil, err
		}
		if n == nil {
			return nil, p, nil
		}
		if n.leaf {
			if prove {
				p.Leaf = &ProofLeaf{Key: n.key, ValueHash: n.valueHash}
			}
			if n.key != key {
				return nil, p, nil
			}
			return slices.Clone(n.value), p, nil
		}
		if depth >= KeyBits {
			return nil, nil, fmt.Errorf("%w: inner node %x below depth %d", ErrCorrupt, n.hash, KeyBits)
		}
		sib := n.right
		h = n.left
		if bit(key, depth) == 1 {
			h, sib = n.right, n.left
		}
		if prove {
			p.Siblings = append(p.Siblings, sib)
		}
	}
}

// Commit applies changes on top of version base and records the result as
// version next, returning its root. It only adds Puts to b: version next is
// readable once b is written, and if b is discarded the tree is exactly as
// it was. base must be committed (its batch written), or 0; next must be
// greater than base and not yet committed.
//
// changes may come in any order; when a key appears more than once the last
// change wins. Deleting an absent key is a no-op. The result depends only on
// base's contents and the changes, never on their order. The cost is
// proportional to the number of distinct keys times the tree's depth.
func (t *Tree) Commit(b kv.Batch, base, next uint64, changes []Change) ([32]byte, error) {
	if next <= base {
		return EmptyRoot, fmt.Errorf("%w: base %d, next %d", ErrVersionOrder, base, next)
	}
	root, err := t.Root(base)
	if err != nil {
		return EmptyRoot, fmt.Errorf("statetree: commit base: %w", err)
	}
	switch ok, err := t.db.Has(t.rootKey(next)); {
	case err != nil:
		return EmptyRoot, fmt.Errorf("statetree: check version %d: %w", next, err)
	case ok:
		return EmptyRoot, fmt.Errorf("%w: %d", ErrVersionExists, next)
	}
	cs, err := normalize(changes)
	if err != nil {
		return EmptyRoot, err
	}
	c := committer{t: t, b: b}
	res, err := c.update(subtree{hash: root}, 0, cs)
	if err != nil {
		return EmptyRoot, fmt.Errorf("statetree: commit version %d: %w", next, err)
	}
	b.Put(t.rootKey(next), res.hash[:])
	return res.hash, nil
}

// normalize validates changes and returns a sorted copy holding the last
// change of every key, with values copied so the caller may reuse its own.
func normalize(changes []Change) ([]Change, error) {
	cs := make([]Change, len(changes))
	for i, c := range changes {
		switch {
		case c.Value != nil && len(c.Value) == 0:
			return nil, fmt.Errorf("%w: key %x", ErrEmptyValue, c.Key)
		case len(c.Value) > MaxValueSize:
			return nil, fmt.Errorf("%w: key %x has %d bytes", ErrValueTooLarge, c.Key, len(c.Value))
		}
		cs[i] = Change{Key: c.Key, Value: slices.Clone(c.Value)}
	}
	slices.SortStableFunc(cs, func(a, b Change) int { return bytes.Compare(a.Key[:], b.Key[:]) })
	out := cs[:0]
	for i, c := range cs {
		if i+1 < len(cs) && cs[i+1].Key == c.Key {
			continue // a later change to the same key wins
		}
		out = append(out, c)
	}
	return out, nil
}

// kind says what a subtree is, as far as the committer knows.
type kind uint8

const (
	kindUnknown kind = iota // an untouched child: load it to find out
	kindEmpty
	kindLeaf
	kindInner
)

// subtree is a reference to a subtree during a commit.
type subtree struct {
	hash [32]byte
	kind kind
}

func (s subtree) empty() bool { return s.hash == EmptyRoot }

// committer builds the nodes of one commit into a batch.
type committer struct {
	t *Tree
	b kv.Batch
}

// write adds a new node to the batch.
func (c *committer) write(n *node) { c.b.Put(c.t.nodeKey(n.hash), n.encode()) }

// update applies changes, sorted and all on s's path, to the subtree s at
// depth and returns the new subtree.
func (c *committer) update(s subtree, depth int, changes []Change) (subtree, error) {
	if len(changes) == 0 {
		return s, nil
	}
	n, err := c.t.load(s.hash, depth, changes[0].Key)
	if err != nil {
		return subtree{}, err
	}
	switch {
	case n == nil:
		return c.build(depth, c.leaves(nil, changes))
	case n.leaf:
		return c.build(depth, c.leaves(n, changes))
	case depth >= KeyBits:
		return subtree{}, fmt.Errorf("%w: inner node %x below depth %d", ErrCorrupt, n.hash, KeyBits)
	}
	split := splitAt(len(changes), depth, func(i int) [32]byte { return changes[i].Key })
	l, err := c.update(subtree{hash: n.left}, depth+1, changes[:split])
	if err != nil {
		return subtree{}, err
	}
	r, err := c.update(subtree{hash: n.right}, depth+1, changes[split:])
	if err != nil {
		return subtree{}, err
	}
	return c.join(depth, changes[0].Key, l, r)
}

// leaves merges the subtree's existing leaf (nil if it was empty) with the
// changes into the sorted leaves of the new subtree, writing new leaves.
func (c *committer) leaves(old *node, changes []Change) []*node {
	out := make([]*node, 0, len(changes)+1)
	keepOld := old != nil
	for _, ch := range changes {
		if keepOld && bytes.Compare(old.key[:], ch.Key[:]) <= 0 {
			keepOld = false
			if old.key != ch.Key {
				out = append(out, old)
			}
		}
		if ch.Value == nil {
			continue
		}
		if old != nil && old.key == ch.Key && old.valueHash == hashValue(ch.Value) {
			out = append(out, old) // unchanged value: the node exists already
			continue
		}
		n := newLeaf(ch.Key, ch.Value)
		c.write(n)
		out = append(out, n)
	}
	if keepOld {
		out = append(out, old)
	}
	return out
}

// build returns the canonical subtree at depth holding exactly leaves,
// which are sorted and all on its path.
func (c *committer) build(depth int, leaves []*node) (subtree, error) {
	switch len(leaves) {
	case 0:
		return subtree{hash: EmptyRoot, kind: kindEmpty}, nil
	case 1:
		c.t.cache.add(leaves[0], depth, leaves[0].key)
		return subtree{hash: leaves[0].hash, kind: kindLeaf}, nil
	}
	if depth >= KeyBits {
		// Distinct keys on one path differ before bit 256; only a leaf
		// stored off its key's path (a forged store) gets here.
		return subtree{}, fmt.Errorf("%w: leaves %x and %x collide at depth %d", ErrCorrupt, leaves[0].key, leaves[1].key, depth)
	}
	split := splitAt(len(leaves), depth, func(i int) [32]byte { return leaves[i].key })
	l, err := c.build(depth+1, leaves[:split])
	if err != nil {
		return subtree{}, err
	}
	r, err := c.build(depth+1, leaves[split:])
	if err != nil {
		return subtree{}, err
	}
	return c.join(depth, leaves[0].key, l, r)
}

// join returns the canonical subtree at depth on path's way down whose
// halves are l and r: empty if both are empty, the leaf itself if that is
// all the two hold, else a new inner node.
func (c *committer) join(depth int, path [32]byte, l, r subtree) (subtree, error) {
	switch {
	case l.empty() && r.empty():
		return subtree{hash: EmptyRoot, kind: kindEmpty}, nil
	case l.empty() || r.empty():
		only := l
		if l.empty() {
			only = r
		}
		if only.kind == kindUnknown {
			n, err := c.t.load(only.hash, -1, path)
			if err != nil {
				return subtree{}, err
			}
			only.kind = kindInner
			if n.leaf {
				only.kind = kindLeaf
			}
		}
		if only.kind == kindLeaf {
			return only, nil // a lone leaf moves up to where its subtree starts
		}
	}
	n := newInner(l.hash, r.hash)
	c.write(n)
	c.t.cache.add(n, depth, path)
	return subtree{hash: n.hash, kind: kindInner}, nil
}

// splitAt returns the index of the first of n sorted keys, all sharing
// their first depth bits, whose bit at depth is 1.
func splitAt(n, depth int, key func(int) [32]byte) int {
	return sort.Search(n, func(i int) bool { return bit(key(i), depth) == 1 })
}
