package statetree

import (
	"bytes"
	"crypto/sha256"
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

// node is a decoded tree node. Nodes are immutable once built and shared
// between the cache and readers.
type node struct {
	hash [32]byte
	leaf bool
	// Leaf fields.
	key       [32]byte
	valueHash [32]byte
	value     []byte
	// Inner fields.
	left, right [32]byte
}

func newLeaf(key [32]byte, value []byte) *node {
	vh := hashValue(value)
	return &node{hash: hashLeaf(key, vh), leaf: true, key: key, valueHash: vh, value: value}
}

func newInner(left, right [32]byte) *node {
	return &node{hash: hashInner(left, right), left: left, right: right}
}

// encode is the node's stored form.
func (n *node) encode() []byte {
	if n.leaf {
		buf := make([]byte, 0, 1+32+len(n.value))
		buf = append(buf, tagLeaf)
		buf = append(buf, n.key[:]...)
		return append(buf, n.value...)
	}
	buf := make([]byte, 0, 1+32+32)
	buf = append(buf, tagInner)
	buf = append(buf, n.left[:]...)
	return append(buf, n.right[:]...)
}

// decodeNode parses a stored node and checks that it hashes to want, so a
// damaged store is reported instead of producing wrong roots or proofs.
func decodeNode(want [32]byte, b []byte) (*node, error) {
	var n *node
	switch {
	case len(b) > 1+32 && b[0] == tagLeaf:
		var key [32]byte
		copy(key[:], b[1:33])
		n = newLeaf(key, b[33:])
	case len(b) == 1+32+32 && b[0] == tagInner:
		var l, r [32]byte
		copy(l[:], b[1:33])
		copy(r[:], b[33:])
		n = newInner(l, r)
	default:
		return nil, fmt.Errorf("%w: node %x: malformed encoding of %d bytes", ErrCorrupt, want, len(b))
	}
	if n.hash != want {
		return nil, fmt.Errorf("%w: node %x: content hashes to %x", ErrCorrupt, want, n.hash)
	}
	return n, nil
}

// size is the node's approximate memory footprint, for the cache budget.
func (n *node) size() int { return nodeOverhead + len(n.value) }

// nodeOverhead approximates a cached node's struct, pointer and map entry.
const nodeOverhead = 240
