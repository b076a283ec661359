package statetree

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// KeyBits is the length of a key, and so the greatest depth of a leaf.
const KeyBits = 256

// EmptyRoot is the hash of an empty subtree, and so the root of an empty
// tree and of version 0.
var EmptyRoot [32]byte

// Domain separators, the first byte of every hashed preimage and every
// stored node.
const (
	tagLeaf  = 0x00
	tagInner = 0x01
)

// sum is the tree's hash function. Everything hashes through it.
func sum(b []byte) [32]byte { return sha256.Sum256(b) }

// hashValue is H(value), the value digest a leaf commits to.
func hashValue(value []byte) [32]byte { return sum(value) }

// hashLeaf is H(0x00 || key || valueHash).
func hashLeaf(key, valueHash [32]byte) [32]byte {
	var buf [1 + 32 + 32]byte
	buf[0] = tagLeaf
	copy(buf[1:], key[:])
	copy(buf[33:], valueHash[:])
	return sum(buf[:])
}

// hashInner is H(0x01 || left || right).
func hashInner(left, right [32]byte) [32]byte {
	var buf [1 + 32 + 32]byte
	buf[0] = tagInner
	copy(buf[1:], left[:])
	copy(buf[33:], right[:])
	return sum(buf[:])
}

// bit returns bit i of key, counting from the most significant bit of
// key[0]. Bit i chooses the child at depth i: 0 left, 1 right.
func bit(key [32]byte, i int) byte { return key[i/8] >> (7 - uint(i%8)) & 1 }

// withBit returns path with bit i set to b.
func withBit(path [32]byte, i int, b byte) [32]byte {
	mask := byte(0x80) >> uint(i%8)
	if b == 0 {
		path[i/8] &^= mask
	} else {
		path[i/8] |= mask
	}
	return path
}

// truncate returns the first n bits of path, the rest zero.
func truncate(path [32]byte, n int) [32]byte {
	var out [32]byte
	full := n / 8
	copy(out[:full], path[:full])
	if rem := n % 8; rem != 0 {
		out[full] = path[full] & (byte(0xff) << (8 - uint(rem)))
	}
	return out
}

// sharesPrefix reports whether a and b agree on their first n bits.
func sharesPrefix(a, b [32]byte, n int) bool {
	full := n / 8
	if !bytes.Equal(a[:full], b[:full]) {
		return false
	}
	if rem := n % 8; rem != 0 {
		mask := byte(0xff) << (8 - uint(rem))
		return a[full]&mask == b[full]&mask
	}
	return true
}

// kind says what a subtree is. The values are stored.
type kind uint8

const (
	kindEmpty kind = 0
	kindLeaf  kind = 1
	kindInner kind = 2
)

// ref is what a parent (or a root record) knows of a child subtree: its
// hash, which is hashed, and where and what it is, which is not: the
// version whose commit stored its node (the node's depth and path follow
// from the parent's), its kind, and the number of leaves under it.
type ref struct {
	hash    [32]byte
	version uint64
	kind    kind
	leaves  uint64
}

// emptyRef is the empty subtree.
var emptyRef = ref{}

// refSize is a ref's stored form without its hash: version, kind, leaves.
const refSize = 8 + 1 + 8

// check validates a ref read from the store: the empty subtree is all
// zeros, a leaf holds one leaf, an inner node at least two (a subtree with
// one leaf is stored as that leaf), and a stored node has a version.
func (r ref) check() error {
	switch r.kind {
	case kindEmpty:
		if r != emptyRef {
			return fmt.Errorf("empty subtree with hash %x, version %d, %d leaves", r.hash, r.version, r.leaves)
		}
		return nil
	case kindLeaf:
		if r.leaves != 1 {
			return fmt.Errorf("leaf counted as %d leaves", r.leaves)
		}
	case kindInner:
		if r.leaves < 2 {
			return fmt.Errorf("inner node with %d leaves", r.leaves)
		}
	default:
		return fmt.Errorf("unknown kind %d", r.kind)
	}
	if r.hash == EmptyRoot {
		return fmt.Errorf("stored %s node with the empty hash", r.kind)
	}
	if r.version == 0 {
		return fmt.Errorf("stored %s node at version 0", r.kind)
	}
	return nil
}

func (k kind) String() string {
	switch k {
	case kindEmpty:
		return "empty"
	case kindLeaf:
		return "leaf"
	case kindInner:
		return "inner"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

func appendRef(buf []byte, r ref) []byte {
	buf = binary.BigEndian.AppendUint64(buf, r.version)
	buf = append(buf, byte(r.kind))
	return binary.BigEndian.AppendUint64(buf, r.leaves)
}

// readRef reads a ref's stored form (without its hash) from b, which holds
// at least refSize bytes.
func readRef(h [32]byte, b []byte) ref {
	return ref{hash: h, version: binary.BigEndian.Uint64(b), kind: kind(b[8]), leaves: binary.BigEndian.Uint64(b[9:])}
}

// node is a decoded tree node. Nodes are immutable once built and shared
// between the cache and readers.
type node struct {
	hash    [32]byte
	version uint64 // the version whose commit stored the node
	leaf    bool
	// Leaf fields.
	key       [32]byte
	valueHash [32]byte
	value     []byte
	meta      []byte
	// Inner fields.
	left, right ref
}

func newLeaf(key [32]byte, value, meta []byte) *node {
	vh := hashValue(value)
	return &node{hash: hashLeaf(key, vh), leaf: true, key: key, valueHash: vh, value: value, meta: meta}
}

func newInner(left, right ref) *node {
	return &node{hash: hashInner(left.hash, right.hash), left: left, right: right}
}

// ref is the reference to n, stored at its version.
func (n *node) ref() ref {
	if n.leaf {
		return ref{hash: n.hash, version: n.version, kind: kindLeaf, leaves: 1}
	}
	return ref{hash: n.hash, version: n.version, kind: kindInner, leaves: n.left.leaves + n.right.leaves}
}

// at returns a copy of n stored at version.
func (n *node) at(version uint64) *node {
	c := *n
	c.version = version
	return &c
}

// Stored node encodings (the node's value in the store):
//
//	leaf:  0x00 || key (32) || meta length (2, big-endian) || meta || value
//	inner: 0x01 || left hash (32) || right hash (32) || left ref || right ref
//
// where a ref is version (8, big-endian) || kind (1: 0 empty, 1 leaf,
// 2 inner) || leaves (8, big-endian). Only the hashes are hashed; the rest is
// where the children are stored and how many leaves they hold.
const (
	leafHeader = 1 + 32 + 2
	innerSize  = 1 + 32 + 32 + 2*refSize
	// maxNodeSize bounds a stored node: a leaf with the largest meta and
	// value.
	maxNodeSize = leafHeader + MaxMetaSize + MaxValueSize
)

// encode is the node's stored form.
func (n *node) encode() []byte {
	if n.leaf {
		buf := make([]byte, 0, leafHeader+len(n.meta)+len(n.value))
		buf = append(buf, tagLeaf)
		buf = append(buf, n.key[:]...)
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(n.meta)))
		buf = append(buf, n.meta...)
		return append(buf, n.value...)
	}
	buf := make([]byte, 0, innerSize)
	buf = append(buf, tagInner)
	buf = append(buf, n.left.hash[:]...)
	buf = append(buf, n.right.hash[:]...)
	buf = appendRef(buf, n.left)
	return appendRef(buf, n.right)
}

// decodeNode parses a stored node, checking everything the bytes alone
// determine: the tag, the lengths and bounds, and the children's refs (an
// inner node holds two leaves at least). Where the node sits and which
// hash it must have are checked by the caller (checkNode). The returned
// node's slices do not alias b.
func decodeNode(b []byte) (*node, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("empty node encoding")
	}
	if len(b) > maxNodeSize {
		return nil, fmt.Errorf("node encoding of %d bytes, at most %d", len(b), maxNodeSize)
	}
	switch b[0] {
	case tagLeaf:
		if len(b) < leafHeader {
			return nil, fmt.Errorf("leaf of %d bytes, at least %d", len(b), leafHeader+1)
		}
		var key [32]byte
		copy(key[:], b[1:33])
		m := int(binary.BigEndian.Uint16(b[33:35]))
		if m > MaxMetaSize {
			return nil, fmt.Errorf("leaf meta of %d bytes, at most %d", m, MaxMetaSize)
		}
		rest := b[leafHeader:]
		if len(rest) <= m {
			return nil, fmt.Errorf("leaf with %d bytes after its header for %d bytes of meta and a value", len(rest), m)
		}
		if len(rest)-m > MaxValueSize {
			return nil, fmt.Errorf("leaf value of %d bytes, at most %d", len(rest)-m, MaxValueSize)
		}
		var meta []byte
		if m > 0 {
			meta = bytes.Clone(rest[:m])
		}
		return newLeaf(key, bytes.Clone(rest[m:]), meta), nil
	case tagInner:
		if len(b) != innerSize {
			return nil, fmt.Errorf("inner node of %d bytes, want %d", len(b), innerSize)
		}
		l := readRef([32]byte(b[1:33]), b[65:65+refSize])
		r := readRef([32]byte(b[33:65]), b[65+refSize:])
		for _, c := range []struct {
			side string
			r    ref
		}{{"left", l}, {"right", r}} {
			if err := c.r.check(); err != nil {
				return nil, fmt.Errorf("inner node's %s child: %w", c.side, err)
			}
		}
		if l.leaves+r.leaves < l.leaves || l.leaves+r.leaves < 2 {
			return nil, fmt.Errorf("inner node over %d and %d leaves", l.leaves, r.leaves)
		}
		return newInner(l, r), nil
	}
	return nil, fmt.Errorf("unknown node tag %#x", b[0])
}

// checkNode checks that n, read from where want says at depth on path,
// is the node want refers to: its hash (so a damaged store is reported
// instead of producing wrong roots or proofs), its kind and leaf count, a
// leaf's key on the path, and children stored no later than n itself.
func checkNode(n *node, want ref, depth int, path [32]byte) error {
	switch {
	case n.hash != want.hash:
		return fmt.Errorf("content hashes to %x", n.hash)
	case n.leaf != (want.kind == kindLeaf):
		return fmt.Errorf("a leaf where its parent expects a node of kind %s, or the reverse", want.kind)
	case n.leaf && !sharesPrefix(n.key, path, depth):
		return fmt.Errorf("leaf %x stored off its path", n.key)
	case !n.leaf && depth >= KeyBits:
		return fmt.Errorf("inner node below depth %d", KeyBits)
	case !n.leaf && (n.left.version > want.version || n.right.version > want.version):
		return fmt.Errorf("children stored at versions %d and %d, after the node's own %d", n.left.version, n.right.version, want.version)
	}
	if got := n.ref(); got.leaves != want.leaves {
		return fmt.Errorf("holds %d leaves, its parent counts %d", got.leaves, want.leaves)
	}
	return nil
}

// size is the node's approximate memory footprint, for the cache budget.
func (n *node) size() int { return nodeOverhead + len(n.value) + len(n.meta) }

// nodeOverhead approximates a cached node's struct, pointer and map entry.
const nodeOverhead = 280
