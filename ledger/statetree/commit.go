package statetree

import (
	"bytes"
	"fmt"
	"slices"
	"sort"

	"github.com/ledgerd/ledgerd/ledger/kv"
)

// Commit applies changes on top of version base and records the result as
// version next, returning its root. It only adds operations to b: version
// next is readable once b is written, and if b is discarded the tree is
// exactly as it was. base must be the latest committed version (history is
// linear), or 0 on an empty tree; next must be greater than base.
//
// changes may come in any order; when a key appears more than once the last
// change wins (Meta included). Deleting an absent key is a no-op. The root
// depends only on base's contents and the changes, never on their order.
// The cost is proportional to the number of distinct keys times the tree's
// depth. Beside the new nodes, b receives a stale-index entry for every
// node of base that next no longer uses, the root record of next, and the
// latest-version record.
func (t *Tree) Commit(b kv.Batch, base, next uint64, changes []Change) ([32]byte, error) {
	if next <= base {
		return EmptyRoot, fmt.Errorf("%w: base %d, next %d", ErrVersionOrder, base, next)
	}
	root, err := t.rootRef(base)
	if err != nil {
		return EmptyRoot, fmt.Errorf("statetree: commit base: %w", err)
	}
	switch ok, err := t.db.Has(t.rootKey(next)); {
	case err != nil:
		return EmptyRoot, fmt.Errorf("statetree: check version %d: %w", next, err)
	case ok:
		return EmptyRoot, fmt.Errorf("%w: %d", ErrVersionExists, next)
	}
	latest, err := t.Latest()
	if err != nil {
		return EmptyRoot, err
	}
	if base != latest {
		return EmptyRoot, fmt.Errorf("%w: base %d is not the latest version %d", ErrVersionOrder, base, latest)
	}
	cs, err := normalize(changes)
	if err != nil {
		return EmptyRoot, err
	}
	// Nodes above base in the cache come from a commit whose batch was
	// never written; next may differ from them.
	t.cache.dropAbove(base)
	c := committer{t: t, b: b, version: next}
	res, err := c.update(root, 0, [32]byte{}, cs)
	if err == nil {
		root, err = c.land(res, 0)
	}
	if err != nil {
		return EmptyRoot, fmt.Errorf("statetree: commit version %d: %w", next, err)
	}
	b.Put(t.rootKey(next), encodeRootRecord(root))
	b.Put(t.recordKey(tagLatest), encodeU64(next))
	return root.hash, nil
}

// checkLeafData validates a present value and its meta.
func checkLeafData(key [32]byte, value, meta []byte) error {
	switch {
	case value != nil && len(value) == 0:
		return fmt.Errorf("%w: key %x", ErrEmptyValue, key)
	case len(value) > MaxValueSize:
		return fmt.Errorf("%w: key %x has %d bytes", ErrValueTooLarge, key, len(value))
	case len(meta) > MaxMetaSize:
		return fmt.Errorf("%w: key %x has %d bytes of meta, at most %d", ErrMetaTooLarge, key, len(meta), MaxMetaSize)
	}
	return nil
}

// normalize validates changes and returns a sorted copy holding the last
// change of every key, with values and metas copied so the caller may reuse
// its own. A copied Meta stays nil or non-nil as given.
func normalize(changes []Change) ([]Change, error) {
	cs := make([]Change, len(changes))
	for i, c := range changes {
		if err := checkLeafData(c.Key, c.Value, c.Meta); err != nil {
			return nil, err
		}
		cs[i] = Change{Key: c.Key, Value: slices.Clone(c.Value)}
		if c.Meta != nil {
			cs[i].Meta = append(make([]byte, 0, len(c.Meta)), c.Meta...)
		}
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

// sub is a subtree during a commit: a reference to a stored node, or a leaf
// in hand that may still have to be written where it lands.
type sub struct {
	ref
	// leaf is the leaf's node when the committer holds it (new, changed,
	// or read from the store because it may move). nil for other kinds and
	// for a leaf left where it is stored.
	leaf *node
	// at is the depth a held leaf is stored at, -1 for a leaf not stored
	// yet. A leaf that lands elsewhere is written anew (and its old copy
	// goes to the stale index).
	at int
}

func stored(r ref) sub { return sub{ref: r, at: -1} }

// committer builds the nodes of one commit into a batch.
type committer struct {
	t       *Tree
	b       kv.Batch
	version uint64 // the version being committed
	noCache bool   // an import: leave the cache alone
}

// write adds n, built by this commit, to the batch at depth on path.
func (c *committer) write(n *node, depth int, path [32]byte) {
	c.b.Put(c.t.nodeKey(c.version, depth, path), n.encode())
	if !c.noCache {
		c.t.cache.add(n, depth, path)
	}
}

// stale records that the node stored at version at depth on path is not
// part of the version being committed.
func (c *committer) stale(version uint64, depth int, path [32]byte) {
	c.b.Put(c.t.staleKey(c.version, version, depth, path), nil)
}

// land places s at depth, its final position, and returns its reference:
// a held leaf that is not stored there is written there (and its old copy,
// if any, goes stale). Inner nodes are written where they are built, which
// is where they stay.
func (c *committer) land(s sub, depth int) (ref, error) {
	if s.kind != kindLeaf || s.leaf == nil || s.at == depth {
		return s.ref, nil
	}
	if s.at >= 0 {
		c.stale(s.leaf.version, s.at, s.leaf.key)
	}
	n := s.leaf.at(c.version)
	c.write(n, depth, n.key)
	return n.ref(), nil
}

// update applies changes, sorted and all on path's way, to the stored
// subtree r at depth and returns the new subtree.
func (c *committer) update(r ref, depth int, path [32]byte, changes []Change) (sub, error) {
	if len(changes) == 0 {
		return stored(r), nil
	}
	n, err := c.t.load(r, depth, path, true)
	if err != nil {
		return sub{}, err
	}
	switch {
	case n == nil:
		return c.build(depth, path, c.leaves(nil, depth, changes))
	case n.leaf:
		return c.build(depth, path, c.leaves(n, depth, changes))
	}
	split := splitAt(len(changes), depth, func(i int) [32]byte { return changes[i].Key })
	l, err := c.update(n.left, depth+1, withBit(path, depth, 0), changes[:split])
	if err != nil {
		return sub{}, err
	}
	rt, err := c.update(n.right, depth+1, withBit(path, depth, 1), changes[split:])
	if err != nil {
		return sub{}, err
	}
	if l.unchanged(n.left, depth+1) && rt.unchanged(n.right, depth+1) {
		return stored(r), nil // changes that change nothing: keep the node
	}
	c.stale(n.version, depth, path)
	return c.join(depth, path, l, rt)
}

// unchanged reports whether s is exactly the stored child was, in place.
func (s sub) unchanged(was ref, depth int) bool {
	return s.ref == was && (s.leaf == nil || s.at == depth)
}

// leaves merges the subtree's stored leaf (nil if it was empty), stored at
// depth, with the changes into the sorted leaves of the new subtree.
func (c *committer) leaves(old *node, depth int, changes []Change) []sub {
	out := make([]sub, 0, len(changes)+1)
	keepOld := old != nil
	for _, ch := range changes {
		if keepOld && bytes.Compare(old.key[:], ch.Key[:]) <= 0 {
			keepOld = false
			if old.key != ch.Key {
				out = append(out, sub{ref: old.ref(), leaf: old, at: depth})
			}
		}
		mine := old != nil && old.key == ch.Key
		if ch.Value == nil {
			if mine {
				c.stale(old.version, depth, old.key)
			}
			continue
		}
		meta := ch.Meta
		if mine {
			if old.valueHash == hashValue(ch.Value) && (meta == nil || bytes.Equal(meta, old.meta)) {
				out = append(out, sub{ref: old.ref(), leaf: old, at: depth}) // unchanged
				continue
			}
			if meta == nil {
				meta = old.meta
			}
			c.stale(old.version, depth, old.key)
		}
		if len(meta) == 0 {
			meta = nil
		}
		n := newLeaf(ch.Key, ch.Value, meta)
		n.version = c.version
		out = append(out, sub{ref: n.ref(), leaf: n, at: -1})
	}
	if keepOld {
		out = append(out, sub{ref: old.ref(), leaf: old, at: depth})
	}
	return out
}

// build returns the canonical subtree at depth on path's way holding
// exactly leaves, which are held, sorted and all on that path.
func (c *committer) build(depth int, path [32]byte, leaves []sub) (sub, error) {
	switch len(leaves) {
	case 0:
		return stored(emptyRef), nil
	case 1:
		return leaves[0], nil
	}
	if depth >= KeyBits {
		// Distinct keys on one path differ before bit 256; only a leaf
		// stored off its key's path (a forged store) gets here.
		return sub{}, fmt.Errorf("%w: leaves %x and %x collide at depth %d", ErrCorrupt, leaves[0].leaf.key, leaves[1].leaf.key, depth)
	}
	split := splitAt(len(leaves), depth, func(i int) [32]byte { return leaves[i].leaf.key })
	l, err := c.build(depth+1, withBit(path, depth, 0), leaves[:split])
	if err != nil {
		return sub{}, err
	}
	r, err := c.build(depth+1, withBit(path, depth, 1), leaves[split:])
	if err != nil {
		return sub{}, err
	}
	return c.join(depth, path, l, r)
}

// join returns the canonical subtree at depth on path's way whose halves
// are l and r: empty if both are empty, the leaf itself if that is all the
// two hold (a lone leaf moves up to where its subtree starts), else a new
// inner node, written here.
func (c *committer) join(depth int, path [32]byte, l, r sub) (sub, error) {
	switch {
	case l.kind == kindEmpty && r.kind == kindEmpty:
		return stored(emptyRef), nil
	case l.kind == kindEmpty && r.kind == kindLeaf:
		return c.hold(r, depth+1, withBit(path, depth, 1))
	case r.kind == kindEmpty && l.kind == kindLeaf:
		return c.hold(l, depth+1, withBit(path, depth, 0))
	}
	lr, err := c.land(l, depth+1)
	if err != nil {
		return sub{}, err
	}
	rr, err := c.land(r, depth+1)
	if err != nil {
		return sub{}, err
	}
	n := newInner(lr, rr)
	n.version = c.version
	c.write(n, depth, path)
	return stored(n.ref()), nil
}

// hold returns s, a leaf at depth on path's way that is about to move up,
// with its node in hand: a leaf that was left where it is stored is read.
func (c *committer) hold(s sub, depth int, path [32]byte) (sub, error) {
	if s.leaf != nil {
		return s, nil
	}
	n, err := c.t.load(s.ref, depth, path, false)
	if err != nil {
		return sub{}, err
	}
	return sub{ref: s.ref, leaf: n, at: depth}, nil
}

// splitAt returns the index of the first of n sorted keys, all sharing
// their first depth bits, whose bit at depth is 1.
func splitAt(n, depth int, key func(int) [32]byte) int {
	return sort.Search(n, func(i int) bool { return bit(key(i), depth) == 1 })
}
