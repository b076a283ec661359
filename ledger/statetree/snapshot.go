package statetree

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/ledgerd/ledgerd/ledger/kv"
)

// ErrInvalidLeaves is wrapped by the errors SubtreeHash, ImportSubtree and
// FinishImport return for leaves or parts that cannot form the subtree or
// the partition asked for.
var ErrInvalidLeaves = errors.New("statetree: invalid leaves")

// MaxPartitionParts bounds the number of subtrees a partition may have, in
// Partition and FinishImport: a state cut into parts of a few thousand
// leaves has thousands of parts, not millions.
const MaxPartitionParts = 1 << 20

// Leaf is one key of a version with its value and meta, as a snapshot
// carries it.
type Leaf struct {
	Key   [32]byte
	Value []byte
	Meta  []byte
}

// Subtree is one part of a partition of a version's key space.
type Subtree struct {
	Depth    int        // number of leading key bits fixed
	Prefix   [32]byte   // those bits (the rest zero)
	Hash     [32]byte   // hash of the subtree at that position (EmptyRoot if empty)
	Leaves   uint64     // leaves under it
	Siblings [][32]byte // sibling hashes from the root down to Depth (len == Depth), root side first
}

// Partition splits version's tree into subtrees of at most maxLeaves leaves
// each, in key order, covering the whole key space exactly: starting from
// the root, an inner node with more than maxLeaves leaves is replaced by its
// two children. Deterministic: every node computes the same partition of
// the same version. The root alone when the tree has <= maxLeaves leaves.
//
// It reads only the inner nodes it splits (inner nodes record their
// children's leaf counts), so its cost follows the number of parts, not the
// number of leaves. maxLeaves must be at least 1, and a partition of more
// than MaxPartitionParts parts is refused.
func (t *Tree) Partition(version uint64, maxLeaves uint64) ([]Subtree, error) {
	if maxLeaves < 1 {
		return nil, fmt.Errorf("statetree: partition into parts of at most %d leaves", maxLeaves)
	}
	root, err := t.rootRef(version)
	if err != nil {
		return nil, err
	}
	var out []Subtree
	var sibs [][32]byte
	var split func(r ref, depth int, prefix [32]byte) error
	split = func(r ref, depth int, prefix [32]byte) error {
		if r.kind != kindInner || r.leaves <= maxLeaves {
			if len(out) == MaxPartitionParts {
				return fmt.Errorf("statetree: partition of version %d into parts of %d leaves has more than %d parts", version, maxLeaves, MaxPartitionParts)
			}
			out = append(out, Subtree{Depth: depth, Prefix: prefix, Hash: r.hash, Leaves: r.leaves, Siblings: slices.Clone(sibs)})
			return nil
		}
		n, err := t.load(r, depth, prefix, true)
		if err != nil {
			return err
		}
		sibs = append(sibs, n.right.hash)
		if err := split(n.left, depth+1, prefix); err != nil {
			return err
		}
		sibs[len(sibs)-1] = n.left.hash
		if err := split(n.right, depth+1, withBit(prefix, depth, 1)); err != nil {
			return err
		}
		sibs = sibs[:len(sibs)-1]
		return nil
	}
	if err := split(root, 0, [32]byte{}); err != nil {
		return nil, t.explain(version, err)
	}
	return out, nil
}

// Leaves calls fn for every leaf under the subtree at (depth, prefix) of
// version, in key order. Only the first depth bits of prefix count. The
// leaf's slices are fn's own. An error from fn stops the walk and is
// returned as it is.
func (t *Tree) Leaves(version uint64, depth int, prefix [32]byte, fn func(Leaf) error) error {
	if depth < 0 || depth > KeyBits {
		return fmt.Errorf("statetree: leaves at depth %d, want 0 to %d", depth, KeyBits)
	}
	prefix = truncate(prefix, depth)
	r, err := t.rootRef(version)
	if err != nil {
		return err
	}
	errStop := errors.New("stop")
	var fnErr error
	emit := func(n *node) error {
		if err := fn(Leaf{Key: n.key, Value: bytes.Clone(n.value), Meta: bytes.Clone(n.meta)}); err != nil {
			fnErr = err
			return errStop
		}
		return nil
	}
	// Descend to the subtree's position; a leaf met on the way is the
	// whole subtree if it lies under the prefix.
	d := 0
	for ; d < depth && r.kind == kindInner; d++ {
		n, err := t.load(r, d, prefix, true)
		if err != nil {
			return t.explain(version, err)
		}
		r = n.left
		if bit(prefix, d) == 1 {
			r = n.right
		}
	}
	err = t.leavesUnder(r, d, depth, prefix, emit)
	if errors.Is(err, errStop) {
		return fnErr
	}
	if err != nil {
		return t.explain(version, err)
	}
	return nil
}

// leavesUnder calls emit for every leaf of the stored subtree r at depth d
// that lies under the first depth bits of prefix, in key order. d is at
// most depth, and below depth only when r is a leaf or empty.
func (t *Tree) leavesUnder(r ref, d, depth int, prefix [32]byte, emit func(*node) error) error {
	n, err := t.load(r, d, prefix, false)
	switch {
	case err != nil:
		return err
	case n == nil:
		return nil
	case n.leaf:
		if !sharesPrefix(n.key, prefix, depth) {
			return nil // a leaf beside the subtree's position: the subtree is empty
		}
		return emit(n)
	}
	if err := t.leavesUnder(n.left, d+1, d+1, withBit(prefix, d, 0), emit); err != nil {
		return err
	}
	return t.leavesUnder(n.right, d+1, d+1, withBit(prefix, d, 1), emit)
}

// checkLeaves validates the leaves of a subtree at depth: present values
// and metas within bounds, keys strictly ascending and all sharing their
// first depth bits with prefix.
func checkLeaves(depth int, prefix [32]byte, leaves []Leaf) error {
	if depth < 0 || depth > KeyBits {
		return fmt.Errorf("%w: depth %d, want 0 to %d", ErrInvalidLeaves, depth, KeyBits)
	}
	for i, l := range leaves {
		if l.Value == nil {
			return fmt.Errorf("%w: key %x has no value", ErrInvalidLeaves, l.Key)
		}
		if err := checkLeafData(l.Key, l.Value, l.Meta); err != nil {
			return err
		}
		if i > 0 && bytes.Compare(leaves[i-1].Key[:], l.Key[:]) >= 0 {
			return fmt.Errorf("%w: key %x after %x: not strictly ascending", ErrInvalidLeaves, l.Key, leaves[i-1].Key)
		}
		if !sharesPrefix(l.Key, prefix, depth) {
			return fmt.Errorf("%w: key %x is not under the subtree's first %d bits", ErrInvalidLeaves, l.Key, depth)
		}
	}
	return nil
}

// SubtreeHash computes, without a store, the canonical hash of the subtree
// at depth holding exactly leaves (sorted, distinct, all sharing their
// first depth bits): what a state-sync client uses to verify a chunk.
// FoldSiblings folds it up to a root. It fails, with an error wrapping
// ErrInvalidLeaves (or ErrEmptyValue, ErrValueTooLarge, ErrMetaTooLarge),
// for leaves that break those rules.
func SubtreeHash(depth int, leaves []Leaf) ([32]byte, error) {
	var prefix [32]byte
	if len(leaves) > 0 {
		prefix = leaves[0].Key
	}
	if err := checkLeaves(depth, prefix, leaves); err != nil {
		return EmptyRoot, err
	}
	return hashLeaves(depth, leaves), nil
}

// hashLeaves is the canonical hash of the subtree at depth holding exactly
// leaves, which are checked.
func hashLeaves(depth int, leaves []Leaf) [32]byte {
	switch len(leaves) {
	case 0:
		return EmptyRoot
	case 1:
		return hashLeaf(leaves[0].Key, hashValue(leaves[0].Value))
	}
	split := splitAt(len(leaves), depth, func(i int) [32]byte { return leaves[i].Key })
	return hashInner(hashLeaves(depth+1, leaves[:split]), hashLeaves(depth+1, leaves[split:]))
}

// invalidFold is what FoldSiblings returns for arguments that do not fit
// together: 32 bytes of 0xff, which is neither EmptyRoot nor, but with
// negligible probability, any SHA-256 output, so it matches no real root.
var invalidFold = [32]byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
}

// FoldSiblings folds h, the hash of the subtree at depth on prefix's path,
// up to the root with inner-node hashing: siblings[i] is the sibling of the
// path's node at depth i+1, root side first, as Subtree.Siblings holds
// them. Every level above a partition's part is an inner node (see the
// package comment), so the result is the root of the tree the part belongs
// to. When len(siblings) != depth, or depth is outside 0..KeyBits, it
// returns 32 bytes of 0xff, which matches no root.
func FoldSiblings(depth int, prefix [32]byte, h [32]byte, siblings [][32]byte) [32]byte {
	if depth < 0 || depth > KeyBits || len(siblings) != depth {
		return invalidFold
	}
	for i := depth - 1; i >= 0; i-- {
		if bit(prefix, i) == 0 {
			h = hashInner(h, siblings[i])
		} else {
			h = hashInner(siblings[i], h)
		}
	}
	return h
}

// SubtreeRef is what ImportSubtree wrote for one part of a partition, for
// FinishImport to join. It holds no more than the part itself says
// (Version, Depth, Prefix, Hash, Leaves), so a restorer may keep it across
// restarts.
type SubtreeRef struct {
	Version uint64   // the version being imported
	Depth   int      // the part's depth
	Prefix  [32]byte // its first Depth bits, the rest zero
	Hash    [32]byte // its hash (EmptyRoot if empty)
	Leaves  uint64   // leaves under it
}

// ref is the reference a parent holds to the part's top node.
func (s SubtreeRef) ref() ref {
	switch s.Leaves {
	case 0:
		return emptyRef
	case 1:
		return ref{hash: s.Hash, version: s.Version, kind: kindLeaf, leaves: 1}
	}
	return ref{hash: s.Hash, version: s.Version, kind: kindInner, leaves: s.Leaves}
}

// check validates the ref of a part of version.
func (s SubtreeRef) check(version uint64) error {
	switch {
	case s.Version != version:
		return fmt.Errorf("%w: part of version %d in an import of version %d", ErrInvalidLeaves, s.Version, version)
	case s.Depth < 0 || s.Depth > KeyBits:
		return fmt.Errorf("%w: part at depth %d", ErrInvalidLeaves, s.Depth)
	case truncate(s.Prefix, s.Depth) != s.Prefix:
		return fmt.Errorf("%w: part prefix %x has bits set beyond depth %d", ErrInvalidLeaves, s.Prefix, s.Depth)
	case (s.Leaves == 0) != (s.Hash == EmptyRoot):
		return fmt.Errorf("%w: part with %d leaves and hash %x", ErrInvalidLeaves, s.Leaves, s.Hash)
	}
	return nil
}

// checkImport checks that version can be imported: above Latest, and no
// nodes of an unfinished import above it.
func (t *Tree) checkImport(version uint64) error {
	if version == 0 {
		return fmt.Errorf("%w: import of version 0, the empty tree", ErrVersionOrder)
	}
	latest, err := t.Latest()
	if err != nil {
		return err
	}
	if version <= latest {
		return fmt.Errorf("%w: import of version %d, the tree holds version %d", ErrVersionOrder, version, latest)
	}
	return t.checkNoneAbove(version)
}

// ImportSubtree writes the canonical nodes of one partition subtree, the
// one at depth on prefix's path holding exactly leaves (sorted, with Meta),
// at version, and returns its reference for FinishImport. Import writes a
// whole version from verified parts, for state sync: the node's tree must
// be empty (no versions) or only hold versions below version, which
// FinishImport discards. Parts may be imported in any order and in
// separate batches; until FinishImport, the version does not exist (Root
// returns ErrVersionNotFound). A crash before FinishImport leaves garbage
// only under that version, which a new import at the same version
// overwrites, one at a higher version removes (through Prune), and
// AbortImport removes before one at a lower version (which refuses to
// start otherwise, with ErrImportConflict). The leaves are not checked
// against a root here: the caller verifies them first (SubtreeHash,
// FoldSiblings) and compares FinishImport's root with the one it expects.
func (t *Tree) ImportSubtree(b kv.Batch, version uint64, depth int, prefix [32]byte, leaves []Leaf) (SubtreeRef, error) {
	if err := checkLeaves(depth, prefix, leaves); err != nil {
		return SubtreeRef{}, fmt.Errorf("statetree: import part at depth %d: %w", depth, err)
	}
	if err := t.checkImport(version); err != nil {
		return SubtreeRef{}, err
	}
	prefix = truncate(prefix, depth)
	subs := make([]sub, len(leaves))
	for i, l := range leaves {
		var meta []byte
		if len(l.Meta) > 0 {
			meta = bytes.Clone(l.Meta)
		}
		n := newLeaf(l.Key, bytes.Clone(l.Value), meta)
		n.version = version
		subs[i] = sub{ref: n.ref(), leaf: n, at: -1}
	}
	c := committer{t: t, b: b, version: version, noCache: true}
	res, err := c.build(depth, prefix, subs)
	if err != nil {
		return SubtreeRef{}, fmt.Errorf("statetree: import part at depth %d: %w", depth, err)
	}
	r, err := c.land(res, depth)
	if err != nil {
		return SubtreeRef{}, fmt.Errorf("statetree: import part at depth %d: %w", depth, err)
	}
	return SubtreeRef{Version: version, Depth: depth, Prefix: prefix, Hash: r.hash, Leaves: r.leaves}, nil
}

// FinishImport joins the partition's references (in key order, covering
// the key space) into the root, writes the nodes above them and the root
// record, sets Oldest = Latest = version, and returns the root, which the
// caller compares with the expected app hash before it writes b. Every node
// of an older version becomes garbage: the next Prune (to version or
// beyond) deletes them, however many, in its bounded batches; a restorer
// runs it after writing b. FinishImport fails, with an error wrapping
// ErrInvalidLeaves, for parts that do not tile the key space in order, or
// that join into a node of fewer than two leaves (which a partition of a
// canonical tree never does).
func (t *Tree) FinishImport(b kv.Batch, version uint64, parts []SubtreeRef) ([32]byte, error) {
	if len(parts) == 0 || len(parts) > MaxPartitionParts {
		return EmptyRoot, fmt.Errorf("%w: %d parts, want 1 to %d", ErrInvalidLeaves, len(parts), MaxPartitionParts)
	}
	for i, p := range parts {
		if err := p.check(version); err != nil {
			return EmptyRoot, fmt.Errorf("statetree: finish import: part %d: %w", i, err)
		}
	}
	if err := t.checkImport(version); err != nil {
		return EmptyRoot, err
	}
	c := committer{t: t, b: b, version: version, noCache: true}
	next := 0
	var join func(depth int, prefix [32]byte) (ref, error)
	join = func(depth int, prefix [32]byte) (ref, error) {
		if next == len(parts) {
			return ref{}, fmt.Errorf("%w: no part covers depth %d on path %x", ErrInvalidLeaves, depth, prefix)
		}
		p := parts[next]
		switch {
		case !sharesPrefix(p.Prefix, prefix, min(depth, p.Depth)):
			return ref{}, fmt.Errorf("%w: part %d (depth %d, prefix %x) where depth %d on path %x is due", ErrInvalidLeaves, next, p.Depth, p.Prefix, depth, prefix)
		case p.Depth < depth:
			return ref{}, fmt.Errorf("%w: part %d (depth %d) overlaps the parts before it", ErrInvalidLeaves, next, p.Depth)
		case p.Depth == depth:
			next++
			return p.ref(), nil
		}
		l, err := join(depth+1, prefix)
		if err != nil {
			return ref{}, err
		}
		r, err := join(depth+1, withBit(prefix, depth, 1))
		if err != nil {
			return ref{}, err
		}
		if total := l.leaves + r.leaves; total < 2 || total < l.leaves {
			return ref{}, fmt.Errorf("%w: the parts under depth %d on path %x hold %d leaves: not a partition of a canonical tree", ErrInvalidLeaves, depth, prefix, total)
		}
		n := newInner(l, r)
		n.version = version
		c.write(n, depth, prefix)
		return n.ref(), nil
	}
	root, err := join(0, [32]byte{})
	if err != nil {
		return EmptyRoot, fmt.Errorf("statetree: finish import of version %d: %w", version, err)
	}
	if next != len(parts) {
		return EmptyRoot, fmt.Errorf("statetree: finish import of version %d: %w: %d parts beyond the key space", version, ErrInvalidLeaves, len(parts)-next)
	}
	b.Put(t.rootKey(version), encodeRootRecord(root))
	b.Put(t.recordKey(tagLatest), encodeU64(version))
	b.Put(t.recordKey(tagOldest), encodeU64(version))
	b.Put(t.recordKey(tagFloor), encodeU64(version))
	// Cached nodes of this version, if any, came from a commit that was
	// never written; the imported ones replace them.
	t.cache.reset()
	return root.hash, nil
}
