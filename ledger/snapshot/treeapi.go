package snapshot

// INTERIM, until branch feat/tree lands: this file stands in for the
// statetree and ledger API the snapshot package is written against
// (statetree.Leaf, Subtree, SubtreeRef, SubtreeHash, FoldSiblings,
// MaxMetaSize, ErrVersionPruned and ledger.LeafKeyOf). At the merge every
// declaration below becomes an alias of the real one and this copy goes.

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/statetree"
)

// Leaf is one key of the state tree with its value and its key's
// preimage (meta), which the tree stores beside the leaf but does not hash.
type Leaf struct {
	Key   [32]byte
	Value []byte
	Meta  []byte
}

// Subtree is one part of a partition of the state tree: the subtree at
// Depth whose keys start with the first Depth bits of Prefix, its hash,
// its number of leaves and the hashes beside its path, root side first.
type Subtree struct {
	Depth    int
	Prefix   [32]byte
	Hash     [32]byte
	Leaves   uint64
	Siblings [][32]byte
}

// SubtreeRef is what importing a subtree leaves for the import of the top
// of the tree.
type SubtreeRef struct {
	Depth  int
	Prefix [32]byte
	Hash   [32]byte
	Leaves uint64
}

// MaxMetaSize bounds a leaf's meta.
const MaxMetaSize = 256

// MaxValueSize bounds a leaf's value.
const MaxValueSize = statetree.MaxValueSize

var errVersionPruned = errors.New("statetree: version pruned")

func leafKeyOf(meta []byte) ([32]byte, error) {
	if len(meta) == 0 || len(meta) > MaxMetaSize {
		return [32]byte{}, fmt.Errorf("leaf meta of %d bytes", len(meta))
	}
	switch body := meta[1:]; meta[0] {
	case 'a':
		if len(body) != crypto.AddressSize {
			return [32]byte{}, fmt.Errorf("account meta of %d bytes", len(body))
		}
		return ledger.AccountKey(crypto.Address(body)), nil
	case 'k':
		return ledger.RecordKey(body), nil
	case 'e':
		if len(body) != 32 {
			return [32]byte{}, fmt.Errorf("evidence meta of %d bytes", len(body))
		}
		return [32]byte(body), nil
	}
	return [32]byte{}, fmt.Errorf("unknown leaf meta kind %q", meta[0])
}

func bitOf(key [32]byte, i int) byte { return key[i/8] >> (7 - uint(i%8)) & 1 }

func hashInner(l, r [32]byte) [32]byte {
	var buf [65]byte
	buf[0] = 1
	copy(buf[1:], l[:])
	copy(buf[33:], r[:])
	return sha256.Sum256(buf[:])
}

func hashLeaf(l Leaf) [32]byte {
	vh := sha256.Sum256(l.Value)
	var buf [65]byte
	copy(buf[1:], l.Key[:])
	copy(buf[33:], vh[:])
	return sha256.Sum256(buf[:])
}

func subtreeHash(depth int, leaves []Leaf) ([32]byte, error) {
	switch len(leaves) {
	case 0:
		return statetree.EmptyRoot, nil
	case 1:
		return hashLeaf(leaves[0]), nil
	}
	if depth >= statetree.KeyBits {
		return [32]byte{}, errors.New("leaves collide")
	}
	split := len(leaves)
	for i, l := range leaves {
		if bitOf(l.Key, depth) == 1 {
			split = i
			break
		}
	}
	for _, l := range leaves[split:] {
		if bitOf(l.Key, depth) == 0 {
			return [32]byte{}, errors.New("leaves out of order")
		}
	}
	lh, err := subtreeHash(depth+1, leaves[:split])
	if err != nil {
		return lh, err
	}
	rh, err := subtreeHash(depth+1, leaves[split:])
	if err != nil {
		return rh, err
	}
	return hashInner(lh, rh), nil
}

func foldSiblings(depth int, prefix [32]byte, h [32]byte, siblings [][32]byte) [32]byte {
	for i := depth - 1; i >= 0; i-- {
		if bitOf(prefix, i) == 0 {
			h = hashInner(h, siblings[i])
		} else {
			h = hashInner(siblings[i], h)
		}
	}
	return h
}
