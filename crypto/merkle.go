package crypto

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/ledgerd/ledgerd/wire"
)

// Merkle trees over an ordered list of items (a block's transactions) follow
// the shape of RFC 6962: the left subtree holds the largest power of two
// smaller than n items. Leaves are hashed as H(0x00 || item) and inner nodes
// as H(0x01 || left || right), so a leaf can never pass for an inner node
// (no second-preimage trick). The root of an empty list is SHA-256 of nothing.

const (
	leafPrefix  = 0x00
	innerPrefix = 0x01
)

// MaxMerkleProofDepth bounds proofs: no list ledgerd builds has 2^64 items.
const MaxMerkleProofDepth = 64

func leafHash(item []byte) Hash {
	h := sha256.New()
	h.Write([]byte{leafPrefix})
	h.Write(item)
	var out Hash
	h.Sum(out[:0])
	return out
}

func innerHash(l, r Hash) Hash {
	var buf [1 + 2*HashSize]byte
	buf[0] = innerPrefix
	copy(buf[1:], l[:])
	copy(buf[1+HashSize:], r[:])
	return sha256.Sum256(buf[:])
}

// splitPoint is the largest power of two strictly less than n (n >= 2).
func splitPoint(n int) int {
	return 1 << (bits.Len(uint(n-1)) - 1)
}

// MerkleRoot returns the root over items.
func MerkleRoot(items [][]byte) Hash {
	if len(items) == 0 {
		return sha256.Sum256(nil)
	}
	leaves := make([]Hash, len(items))
	for i, it := range items {
		leaves[i] = leafHash(it)
	}
	return rootOf(leaves)
}

// MerkleRootOfHashes returns the root over items given as their leaf data
// already hashed by the caller (for example transaction hashes): each
// element is treated as the item itself, i.e. hashed again as a leaf.
func MerkleRootOfHashes(items []Hash) Hash {
	if len(items) == 0 {
		return sha256.Sum256(nil)
	}
	leaves := make([]Hash, len(items))
	for i := range items {
		leaves[i] = leafHash(items[i][:])
	}
	return rootOf(leaves)
}

func rootOf(leaves []Hash) Hash {
	switch len(leaves) {
	case 1:
		return leaves[0]
	}
	k := splitPoint(len(leaves))
	return innerHash(rootOf(leaves[:k]), rootOf(leaves[k:]))
}

// MerkleProof proves that one item sits at Index in a list of Total items.
// Aunts are the sibling hashes from the leaf up to the root.
type MerkleProof struct {
	Index uint64 `json:"index"`
	Total uint64 `json:"total"`
	Aunts []Hash `json:"aunts"`
}

// MerkleProofs returns the root over items and a proof for every item.
func MerkleProofs(items [][]byte) (Hash, []MerkleProof) {
	if len(items) == 0 {
		return sha256.Sum256(nil), nil
	}
	leaves := make([]Hash, len(items))
	for i, it := range items {
		leaves[i] = leafHash(it)
	}
	proofs := make([]MerkleProof, len(items))
	for i := range proofs {
		proofs[i] = MerkleProof{Index: uint64(i), Total: uint64(len(items))}
	}
	root := buildProofs(leaves, proofs)
	return root, proofs
}

// buildProofs returns the root over leaves and appends, to each proof in
// the parallel slice, its aunts from the bottom up.
func buildProofs(leaves []Hash, proofs []MerkleProof) Hash {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := splitPoint(len(leaves))
	l := buildProofs(leaves[:k], proofs[:k])
	r := buildProofs(leaves[k:], proofs[k:])
	for i := range proofs[:k] {
		proofs[i].Aunts = append(proofs[i].Aunts, r)
	}
	for i := range proofs[k:] {
		proofs[k+i].Aunts = append(proofs[k+i].Aunts, l)
	}
	return innerHash(l, r)
}

// Verify checks that item is at p.Index of a list with root root.
func (p *MerkleProof) Verify(root Hash, item []byte) error {
	if p.Total == 0 || p.Index >= p.Total {
		return fmt.Errorf("merkle proof: index %d out of range for %d items", p.Index, p.Total)
	}
	if len(p.Aunts) > MaxMerkleProofDepth {
		return fmt.Errorf("merkle proof: %d aunts, at most %d", len(p.Aunts), MaxMerkleProofDepth)
	}
	h, err := climb(p.Index, p.Total, leafHash(item), p.Aunts)
	if err != nil {
		return err
	}
	if h != root {
		return errors.New("merkle proof: computed root does not match")
	}
	return nil
}

// climb recomputes the root of a subtree of total leaves whose leaf at
// index hashes to leaf; aunts are consumed from the end (the top level
// first) as the recursion descends.
func climb(index, total uint64, leaf Hash, aunts []Hash) (Hash, error) {
	if total == 1 {
		if len(aunts) != 0 {
			return Hash{}, errors.New("merkle proof: too many aunts")
		}
		return leaf, nil
	}
	if len(aunts) == 0 {
		return Hash{}, errors.New("merkle proof: too few aunts")
	}
	k := uint64(splitPoint64(total))
	top := aunts[len(aunts)-1]
	rest := aunts[:len(aunts)-1]
	if index < k {
		l, err := climb(index, k, leaf, rest)
		if err != nil {
			return Hash{}, err
		}
		return innerHash(l, top), nil
	}
	r, err := climb(index-k, total-k, leaf, rest)
	if err != nil {
		return Hash{}, err
	}
	return innerHash(top, r), nil
}

func splitPoint64(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }

// MarshalBinary encodes the proof canonically: version byte, uvarint index,
// uvarint total, uvarint aunt count, then the aunts.
func (p *MerkleProof) MarshalBinary() ([]byte, error) {
	w := wire.NewWriter(make([]byte, 0, 1+3*binary.MaxVarintLen64+len(p.Aunts)*HashSize))
	w.U8(merkleProofVersion)
	w.Uvarint(p.Index)
	w.Uvarint(p.Total)
	w.Uvarint(uint64(len(p.Aunts)))
	for _, a := range p.Aunts {
		w.Fixed(a[:])
	}
	return w.Bytes(), nil
}

const merkleProofVersion = 1

// UnmarshalMerkleProof decodes a proof written by MarshalBinary. It rejects
// any other version, non-minimal varints, more than MaxMerkleProofDepth
// aunts, and trailing bytes.
func UnmarshalMerkleProof(b []byte) (*MerkleProof, error) {
	r := wire.NewReader(b)
	r.Version("merkle proof", merkleProofVersion)
	p := &MerkleProof{Index: r.Uvarint("index", math.MaxUint64), Total: r.Uvarint("total", math.MaxUint64)}
	p.Aunts = make([]Hash, r.Count("aunts", MaxMerkleProofDepth, HashSize))
	for i := range p.Aunts {
		r.Fixed(p.Aunts[i][:])
	}
	if err := r.Finish("merkle proof"); err != nil {
		return nil, err
	}
	return p, nil
}
