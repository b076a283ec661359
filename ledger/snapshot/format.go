package snapshot

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/ledgerd/ledgerd/ledger/statetree"
	"github.com/ledgerd/ledgerd/wire"
)

// Leaf is a key of the state with its value and meta (the key's
// preimage), as chunks carry it.
type Leaf = statetree.Leaf

// Subtree is a part of a partition of the state tree (Source.Partition).
type Subtree = statetree.Subtree

// SubtreeRef is what an Importer returns for an imported chunk, and
// joins into the root in FinishImport.
type SubtreeRef = statetree.SubtreeRef

// MaxValueSize and MaxMetaSize bound a leaf's value and meta, as the
// state tree does.
const (
	MaxValueSize = statetree.MaxValueSize
	MaxMetaSize  = statetree.MaxMetaSize
)

// Format is the snapshot format this package writes and reads. Everything
// that decides which bytes a snapshot has (the partition rule, the bounds
// below, the encodings) is fixed per format, so that every node taking a
// snapshot of the same state at the same height writes the same manifest
// and the same chunks, and a joining node can fetch them from any of them.
const Format = 1

// The bounds of format 1. A decoder refuses anything beyond them before it
// allocates for it.
const (
	// MaxChunkLeaves is the maxLeaves the partition of format 1 asks the
	// state tree for: no chunk holds more leaves. An account leaf takes
	// 72 bytes in a chunk (key 32, value 1+17, meta 1+1+20), and the
	// partition cuts subtrees of random keys to between half of it and
	// all of it, so a chunk of accounts is 252 to 504 KiB.
	MaxChunkLeaves = 7168
	// MaxChunkBytes bounds a chunk's encoding. State records can be much
	// larger than accounts (a value may be up to statetree.MaxValueSize);
	// a partition subtree whose chunk would be larger is split in two at
	// the next depth, again until every part fits (see Create). A single
	// leaf always fits: 32 + 1 MiB + 259 bytes plus at most 8 KiB of
	// siblings.
	MaxChunkBytes = 4 << 20
	// MaxChunks bounds a manifest's chunk count: 65,536 chunks of up to
	// MaxChunkLeaves leaves are some 300 million keys at the full-chunk
	// rate and 230 million at the three-quarters a partition typically
	// fills.
	MaxChunks = 1 << 16
	// MaxDepth is the greatest depth of a chunk's subtree: a subtree at
	// depth 256 is a single key.
	MaxDepth = statetree.KeyBits
)

const (
	manifestHeader = 1 + 8 + 32 // format, height, app hash
	chunkInfoSize  = 2 + 32 + 4 + 4 + 32
	// MaxManifestBytes bounds a manifest's encoding: the header, the
	// count and MaxChunks entries.
	MaxManifestBytes = manifestHeader + binary.MaxVarintLen32 + MaxChunks*chunkInfoSize
	chunkHeader      = 1 + 8 + 4 + 2 + 32 // format, height, index, depth, prefix
	// minLeafSize is the least a leaf takes in a chunk: its key, and a
	// value and a meta of one byte each with their one-byte lengths.
	minLeafSize = 32 + 2 + 2
)

// Manifest describes a snapshot of the state after block Height: its app
// hash (the state root, which the header of block Height+1 carries) and
// its chunks in key order. The manifest itself is not covered by the app
// hash; what makes it trustworthy is that its chunks partition the key
// space (ValidateBasic) and that every chunk proves its own content
// against the app hash (VerifyChunk).
type Manifest struct {
	// Format is the snapshot format, always Format.
	Format uint8
	// Height is the height of the block after which the state was taken.
	Height uint64
	// AppHash is the state root after block Height.
	AppHash [32]byte
	// Chunks describes each chunk, in key order.
	Chunks []ChunkInfo
}

// ChunkInfo is a manifest's entry for one chunk.
type ChunkInfo struct {
	// Depth and Prefix place the chunk's subtree: the keys whose first
	// Depth bits are Prefix's. Prefix's bits from Depth on are zero.
	Depth  int
	Prefix [32]byte
	// Leaves is the number of keys in the subtree.
	Leaves uint32
	// Size is the length of the chunk's encoding, and Hash its SHA-256.
	Size uint32
	Hash [32]byte
}

// Encode returns the manifest's canonical encoding (format 1):
//
//	0x01 height(8) appHash(32) count(uvarint)
//	count * (depth(2) prefix(32) leaves(4) size(4) hash(32))
//
// integers big-endian. It is meant for a manifest that ValidateBasic
// accepts; the decoder refuses anything else.
func (m *Manifest) Encode() []byte {
	w := wire.NewWriter(make([]byte, 0, manifestHeader+binary.MaxVarintLen32+len(m.Chunks)*chunkInfoSize))
	w.U8(m.Format)
	w.U64(m.Height)
	w.Fixed(m.AppHash[:])
	w.Uvarint(uint64(len(m.Chunks)))
	for _, c := range m.Chunks {
		w.U16(uint16(c.Depth))
		w.Fixed(c.Prefix[:])
		w.U32(c.Leaves)
		w.U32(c.Size)
		w.Fixed(c.Hash[:])
	}
	return w.Bytes()
}

// ID is the manifest's name: the SHA-256 of its encoding. Nodes that
// snapshot the same state at the same height produce the same ID, so a
// joining node asks any peer offering that ID for its chunks.
func (m *Manifest) ID() [32]byte { return sha256.Sum256(m.Encode()) }

// TotalBytes is the sum of the chunks' sizes.
func (m *Manifest) TotalBytes() uint64 {
	var n uint64
	for _, c := range m.Chunks {
		n += uint64(c.Size)
	}
	return n
}

// TotalLeaves is the number of keys in the snapshot.
func (m *Manifest) TotalLeaves() uint64 {
	var n uint64
	for _, c := range m.Chunks {
		n += uint64(c.Leaves)
	}
	return n
}

// DecodeManifest decodes a manifest and checks it with ValidateBasic. It
// refuses, with an error wrapping ErrManifestMalformed, any input that is
// not exactly the encoding of a well-formed manifest, and never panics.
func DecodeManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrManifestMalformed, len(b), MaxManifestBytes)
	}
	r := wire.NewReader(b)
	m := &Manifest{Format: Format}
	r.Version("snapshot manifest", Format)
	m.Height = r.U64()
	r.Fixed(m.AppHash[:])
	if n := r.Count("chunks", MaxChunks, chunkInfoSize); n > 0 {
		m.Chunks = make([]ChunkInfo, n)
		for i := range m.Chunks {
			c := &m.Chunks[i]
			c.Depth = int(r.U16())
			r.Fixed(c.Prefix[:])
			c.Leaves = r.U32()
			c.Size = r.U32()
			r.Fixed(c.Hash[:])
		}
	}
	if err := r.Finish("snapshot manifest"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrManifestMalformed, err)
	}
	if err := m.ValidateBasic(); err != nil {
		return nil, err
	}
	return m, nil
}

// ValidateBasic checks what a manifest must satisfy whoever sent it:
// format 1, a height of at least 1, 1 to MaxChunks chunks whose subtrees
// partition the key space exactly, in key order (each prefix is canonical
// and starts where the previous subtree ended, and the last ends at the
// top of the key space), and leaf counts and sizes within the format's
// bounds and consistent with each other. It returns an error wrapping
// ErrManifestMalformed or ErrManifestPartition.
func (m *Manifest) ValidateBasic() error {
	switch {
	case m.Format != Format:
		return fmt.Errorf("%w: format %d, want %d", ErrManifestMalformed, m.Format, Format)
	case m.Height == 0:
		return fmt.Errorf("%w: height 0 (a snapshot is of the state after a block)", ErrManifestMalformed)
	case len(m.Chunks) == 0:
		return fmt.Errorf("%w: no chunks", ErrManifestMalformed)
	case len(m.Chunks) > MaxChunks:
		return fmt.Errorf("%w: %d chunks, at most %d", ErrManifestMalformed, len(m.Chunks), MaxChunks)
	}
	var next [32]byte // the first key not covered yet
	for i, c := range m.Chunks {
		if c.Depth < 0 || c.Depth > MaxDepth {
			return fmt.Errorf("%w: chunk %d at depth %d, at most %d", ErrManifestMalformed, i, c.Depth, MaxDepth)
		}
		if !canonicalPrefix(c.Prefix, c.Depth) {
			return fmt.Errorf("%w: chunk %d: prefix %x has bits set beyond depth %d", ErrManifestPartition, i, c.Prefix, c.Depth)
		}
		if c.Prefix != next {
			return fmt.Errorf("%w: chunk %d starts at %x, the previous chunk ends before %x", ErrManifestPartition, i, c.Prefix, next)
		}
		var end bool
		next, end = advance(c.Prefix, c.Depth)
		if end != (i == len(m.Chunks)-1) {
			if end {
				return fmt.Errorf("%w: chunk %d reaches the end of the key space, %d more follow", ErrManifestPartition, i, len(m.Chunks)-1-i)
			}
			return fmt.Errorf("%w: the last chunk ends before %x, not at the end of the key space", ErrManifestPartition, next)
		}
		if err := c.validateCounts(); err != nil {
			return fmt.Errorf("%w: chunk %d: %w", ErrManifestMalformed, i, err)
		}
	}
	return nil
}

// validateCounts checks a chunk entry's leaf count and size against the
// format's bounds, its subtree's capacity and each other.
func (c ChunkInfo) validateCounts() error {
	switch {
	case c.Leaves > MaxChunkLeaves:
		return fmt.Errorf("%d leaves, at most %d", c.Leaves, MaxChunkLeaves)
	case c.Depth > MaxDepth-32 && uint64(c.Leaves) > 1<<(MaxDepth-c.Depth):
		return fmt.Errorf("%d leaves in a subtree of %d keys", c.Leaves, uint64(1)<<(MaxDepth-c.Depth))
	case c.Size > MaxChunkBytes:
		return fmt.Errorf("%d bytes, at most %d", c.Size, MaxChunkBytes)
	case uint64(c.Size) < minChunkSize(c.Depth, int(c.Leaves)):
		return fmt.Errorf("%d bytes, too few for %d leaves at depth %d", c.Size, c.Leaves, c.Depth)
	}
	return nil
}

// minChunkSize is the least a chunk of n leaves at depth can take.
func minChunkSize(depth, n int) uint64 {
	return uint64(chunkHeader + wire.UvarintLen(uint64(n)) + n*minLeafSize + depth*32)
}

// canonicalPrefix reports whether every bit of p from depth on is zero.
func canonicalPrefix(p [32]byte, depth int) bool {
	for i := depth; i < MaxDepth; i++ {
		if i%8 == 0 {
			if p[i/8] != 0 {
				return false
			}
			i += 7
			continue
		}
		if bitOf(p, i) != 0 {
			return false
		}
	}
	return true
}

// advance returns the first key after the subtree at depth with prefix p
// (canonical), and end set instead when that subtree reaches the last key.
func advance(p [32]byte, depth int) (next [32]byte, end bool) {
	if depth == 0 {
		return next, true
	}
	next = p
	i := (depth - 1) / 8
	add := uint16(1) << (7 - uint((depth-1)%8))
	for ; i >= 0; i-- {
		s := uint16(next[i]) + add
		next[i] = byte(s)
		if s < 0x100 {
			return next, false
		}
		add = 1
	}
	return [32]byte{}, true
}

// underPrefix reports whether key's first depth bits are p's.
func underPrefix(key, p [32]byte, depth int) bool {
	full := depth / 8
	for i := range full {
		if key[i] != p[i] {
			return false
		}
	}
	if rem := depth % 8; rem != 0 {
		mask := byte(0xff) << (8 - uint(rem))
		return key[full]&mask == p[full]&mask
	}
	return true
}

// Chunk is one subtree of the state with the proof of its place: the
// leaves whose keys start with the first Depth bits of Prefix, in key
// order, and the hashes beside the subtree's path from the root, root
// side first (Depth of them).
type Chunk struct {
	// Height is the manifest's height, so a chunk of another snapshot is
	// told apart at once.
	Height uint64
	// Index is the chunk's position in the manifest.
	Index uint32
	// Depth and Prefix place the subtree, as in ChunkInfo.
	Depth  int
	Prefix [32]byte
	// Leaves are the subtree's keys with their values and metas, in
	// strictly increasing key order.
	Leaves []Leaf
	// Siblings are the hashes beside the subtree's path: Siblings[i] is
	// the sibling of the path's node at depth i+1.
	Siblings [][32]byte
}

// Size is the length of the chunk's encoding.
func (c *Chunk) Size() int {
	n := chunkHeader + wire.UvarintLen(uint64(len(c.Leaves))) + 32*len(c.Siblings)
	for _, l := range c.Leaves {
		n += leafSize(l)
	}
	return n
}

// leafSize is the length of l's encoding in a chunk.
func leafSize(l Leaf) int {
	return 32 + wire.UvarintLen(uint64(len(l.Value))) + len(l.Value) + wire.UvarintLen(uint64(len(l.Meta))) + len(l.Meta)
}

// Encode returns the chunk's canonical encoding (format 1):
//
//	0x01 height(8) index(4) depth(2) prefix(32) count(uvarint)
//	count * (key(32) value(uvarint length, bytes) meta(uvarint length, bytes))
//	depth * sibling(32)
//
// integers big-endian. The number of siblings is the depth, so it is not
// written.
func (c *Chunk) Encode() []byte {
	w := wire.NewWriter(make([]byte, 0, c.Size()))
	w.U8(Format)
	w.U64(c.Height)
	w.U32(c.Index)
	w.U16(uint16(c.Depth))
	w.Fixed(c.Prefix[:])
	w.Uvarint(uint64(len(c.Leaves)))
	for _, l := range c.Leaves {
		w.Fixed(l.Key[:])
		w.Prefixed(l.Value)
		w.Prefixed(l.Meta)
	}
	for _, s := range c.Siblings {
		w.Fixed(s[:])
	}
	return w.Bytes()
}

// DecodeChunk decodes a chunk, checking only its encoding: at most
// MaxChunkBytes, a depth of at most MaxDepth, at most MaxChunkLeaves
// leaves, values and metas within statetree's bounds, exactly one sibling
// per level and nothing after. What the content must satisfy is
// VerifyChunk's. The chunk's slices alias b. Errors wrap
// ErrChunkTooLarge or ErrChunkMalformed; it never panics.
func DecodeChunk(b []byte) (*Chunk, error) {
	if len(b) > MaxChunkBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrChunkTooLarge, len(b), MaxChunkBytes)
	}
	r := wire.NewReader(b)
	c := &Chunk{}
	r.Version("snapshot chunk", Format)
	c.Height = r.U64()
	c.Index = r.U32()
	c.Depth = int(r.U16())
	if r.Err() == nil && c.Depth > MaxDepth {
		r.Fail(fmt.Errorf("depth %d, at most %d", c.Depth, MaxDepth))
	}
	r.Fixed(c.Prefix[:])
	if n := r.Count("leaves", MaxChunkLeaves, minLeafSize); n > 0 {
		c.Leaves = make([]Leaf, n)
		for i := range c.Leaves {
			l := &c.Leaves[i]
			r.Fixed(l.Key[:])
			l.Value = r.Prefixed("value", MaxValueSize)
			l.Meta = r.Prefixed("meta", MaxMetaSize)
		}
	}
	if r.Err() == nil && r.Len() != 32*c.Depth {
		r.Fail(fmt.Errorf("%d bytes of siblings at depth %d, want %d", r.Len(), c.Depth, 32*c.Depth))
	}
	if r.Err() == nil && c.Depth > 0 {
		c.Siblings = make([][32]byte, c.Depth)
		for i := range c.Siblings {
			r.Fixed(c.Siblings[i][:])
		}
	}
	if err := r.Finish("snapshot chunk"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrChunkMalformed, err)
	}
	return c, nil
}

// bitOf returns bit i of key, counting from the most significant bit of
// key[0]: the branch taken at depth i.
func bitOf(key [32]byte, i int) byte { return key[i/8] >> (7 - uint(i%8)) & 1 }
