package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/ledgerd/ledgerd/wire"
	"slices"

	"github.com/ledgerd/ledgerd/ledger/statetree"
)

// Source is the part of the state tree (*statetree.Tree) a snapshot is
// read from. Both calls read one retained version and nothing else, so a
// snapshot can be taken while later versions are committed.
type Source interface {
	// Partition splits version's tree into subtrees of at most maxLeaves
	// leaves each, in key order, covering the key space; deterministic.
	Partition(version uint64, maxLeaves uint64) ([]Subtree, error)
	// Leaves calls fn for every leaf of version's subtree at depth under
	// prefix, in key order, until fn returns an error. The leaf's slices
	// are fn's to keep.
	Leaves(version uint64, depth int, prefix [32]byte, fn func(Leaf) error) error
}

// ChunkSink receives the chunks of a snapshot as they are made, in index
// order. Store's Create writes them to files.
type ChunkSink func(index int, raw []byte) error

// Build makes the snapshot of version of src, the state after block
// height whose root is appHash, handing each chunk's encoding to sink in
// index order, and returns the manifest. It is deterministic: the same
// state at the same height gives the same manifest and chunks on every
// node.
//
// The partition rule of format 1: the chunks are the subtrees of
// src.Partition(version, MaxChunkLeaves), in order, except that a subtree
// that has more than MaxChunkLeaves leaves or whose chunk would be larger
// than MaxChunkBytes is replaced by its two halves at the next depth
// (left then right), each half again split by the same rule. A half's
// proof is its parent's siblings and the other half's hash. The rule
// depends on the leaves alone, so every node cuts the same way, and it
// ends: a subtree of one leaf always fits.
//
// Every chunk is checked against appHash before it is handed on, so a
// tree that is damaged, or an appHash that is not version's root, fails
// the snapshot instead of publishing chunks nobody can verify. Build
// stops with ctx's error when ctx is done.
func Build(ctx context.Context, src Source, version, height uint64, appHash [32]byte, sink ChunkSink) (*Manifest, error) {
	if height == 0 {
		return nil, errors.New("snapshot: height 0 (a snapshot is of the state after a block)")
	}
	parts, err := src.Partition(version, MaxChunkLeaves)
	if err != nil {
		return nil, fmt.Errorf("snapshot: partition version %d: %w", version, err)
	}
	b := builder{ctx: ctx, src: src, version: version, m: &Manifest{Format: Format, Height: height, AppHash: appHash}, sink: sink}
	for i, p := range parts {
		if len(p.Siblings) != p.Depth {
			return nil, fmt.Errorf("snapshot: partition subtree %d at depth %d has %d siblings", i, p.Depth, len(p.Siblings))
		}
		if err := b.emit(p.Depth, p.Prefix, p.Siblings, &p); err != nil {
			return nil, err
		}
	}
	if err := b.m.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("snapshot: the partition of version %d: %w", version, err)
	}
	return b.m, nil
}

// builder makes the chunks of one snapshot.
type builder struct {
	ctx     context.Context
	src     Source
	version uint64
	m       *Manifest
	sink    ChunkSink
}

// emit makes the chunks of the subtree at depth under prefix, whose
// siblings are given: one chunk if it fits, else those of its halves.
// want, when set, is what the partition said of the subtree.
func (b *builder) emit(depth int, prefix [32]byte, siblings [][32]byte, want *Subtree) error {
	if err := b.ctx.Err(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	leaves, fits, err := b.collect(depth, prefix)
	if err != nil {
		return err
	}
	if !fits {
		return b.split(depth, prefix, siblings)
	}
	h, err := statetree.SubtreeHash(depth, leaves)
	if err != nil {
		return fmt.Errorf("snapshot: subtree at depth %d, prefix %x: %w", depth, prefix, err)
	}
	if want != nil && (want.Hash != h || want.Leaves != uint64(len(leaves))) {
		return fmt.Errorf("snapshot: subtree at depth %d, prefix %x: the partition says %d leaves hashing to %x, its leaves are %d hashing to %x",
			depth, prefix, want.Leaves, want.Hash, len(leaves), h)
	}
	if root := statetree.FoldSiblings(depth, prefix, h, siblings); root != b.m.AppHash {
		return fmt.Errorf("snapshot: subtree at depth %d, prefix %x folds up to %x, not the app hash %x", depth, prefix, root, b.m.AppHash)
	}
	if len(b.m.Chunks) == MaxChunks {
		return fmt.Errorf("snapshot: more than %d chunks", MaxChunks)
	}
	c := &Chunk{Height: b.m.Height, Index: uint32(len(b.m.Chunks)), Depth: depth, Prefix: prefix, Leaves: leaves, Siblings: siblings}
	raw := c.Encode()
	if len(raw) > MaxChunkBytes { // collect's accounting makes this unreachable
		return fmt.Errorf("snapshot: chunk %d has %d bytes, at most %d", c.Index, len(raw), MaxChunkBytes)
	}
	info := ChunkInfo{Depth: depth, Prefix: prefix, Leaves: uint32(len(leaves)), Size: uint32(len(raw)), Hash: sha256.Sum256(raw)}
	if err := b.sink(int(c.Index), raw); err != nil {
		return fmt.Errorf("snapshot: chunk %d: %w", c.Index, err)
	}
	b.m.Chunks = append(b.m.Chunks, info)
	return nil
}

// split emits the two halves of the subtree at depth under prefix.
func (b *builder) split(depth int, prefix [32]byte, siblings [][32]byte) error {
	if depth >= MaxDepth {
		return fmt.Errorf("snapshot: subtree at depth %d, prefix %x does not fit a chunk", depth, prefix)
	}
	left, right := halves(depth, prefix)
	lh, err := b.hash(depth+1, left)
	if err != nil {
		return err
	}
	rh, err := b.hash(depth+1, right)
	if err != nil {
		return err
	}
	if err := b.emit(depth+1, left, append(slices.Clip(siblings), rh), nil); err != nil {
		return err
	}
	return b.emit(depth+1, right, append(slices.Clip(siblings), lh), nil)
}

// hash returns the hash of the subtree at depth under prefix, reading at
// most a chunk's worth of leaves at a time.
func (b *builder) hash(depth int, prefix [32]byte) ([32]byte, error) {
	if err := b.ctx.Err(); err != nil {
		return [32]byte{}, fmt.Errorf("snapshot: %w", err)
	}
	leaves, fits, err := b.collect(depth, prefix)
	if err != nil {
		return [32]byte{}, err
	}
	if fits {
		return statetree.SubtreeHash(depth, leaves)
	}
	if depth >= MaxDepth {
		return [32]byte{}, fmt.Errorf("snapshot: subtree at depth %d, prefix %x does not fit a chunk", depth, prefix)
	}
	// It holds two leaves or more, so it is an inner node over its halves.
	left, right := halves(depth, prefix)
	lh, err := b.hash(depth+1, left)
	if err != nil {
		return [32]byte{}, err
	}
	rh, err := b.hash(depth+1, right)
	if err != nil {
		return [32]byte{}, err
	}
	return statetree.FoldSiblings(1, [32]byte{}, lh, [][32]byte{rh}), nil
}

// errTooBig stops a collect that went over a chunk's bounds.
var errTooBig = errors.New("subtree does not fit a chunk")

// collect reads the leaves of the subtree at depth under prefix. It stops
// as soon as they could not fit one chunk (more than MaxChunkLeaves, or
// an encoding over MaxChunkBytes with depth siblings) and then reports
// fits false, so it never holds more than a chunk's worth of leaves.
func (b *builder) collect(depth int, prefix [32]byte) (leaves []Leaf, fits bool, err error) {
	size := chunkHeader + 32*depth // the chunk's encoding without the leaf count
	var prev []byte
	err = b.src.Leaves(b.version, depth, prefix, func(l Leaf) error {
		if len(leaves) == MaxChunkLeaves {
			return errTooBig
		}
		if size += leafSize(l); size+wire.UvarintLen(uint64(len(leaves)+1)) > MaxChunkBytes {
			return errTooBig
		}
		if prev != nil && bytes.Compare(prev, l.Key[:]) >= 0 {
			return fmt.Errorf("key %x after %x", l.Key, prev)
		}
		leaves = append(leaves, l) // Leaves hands fn slices of its own
		prev = leaves[len(leaves)-1].Key[:]
		return nil
	})
	switch {
	case errors.Is(err, errTooBig):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("snapshot: leaves of version %d at depth %d, prefix %x: %w", b.version, depth, prefix, err)
	}
	return leaves, true, nil
}

// halves returns the prefixes of the two subtrees at depth+1 under the
// subtree at depth with prefix p: p itself, and p with bit depth set.
func halves(depth int, p [32]byte) (left, right [32]byte) {
	right = p
	right[depth/8] |= 0x80 >> uint(depth%8)
	return p, right
}
