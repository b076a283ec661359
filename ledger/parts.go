package ledger

import (
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/wire"
)

// A proposed block travels as parts of at most BlockPartSize bytes, each
// carrying a Merkle proof against the PartSetHeader that the signed proposal
// commits to. A receiver checks every part on arrival, so a peer cannot
// slip in a forged part, and a block bigger than one gossip message still
// travels in bounded messages.

// BlockPartSize is the size of every part but the last.
const BlockPartSize = 64 << 10

// MaxBlockParts bounds the number of parts of one block.
const MaxBlockParts = (MaxBlockDecodeBytes + BlockPartSize - 1) / BlockPartSize

const partVersion = 1

// PartSetHeader names a block's parts: how many, and their Merkle root.
type PartSetHeader struct {
	Total uint32      `json:"total"`
	Root  crypto.Hash `json:"root"`
}

// Part is one piece of an encoded block with its inclusion proof.
type Part struct {
	Index uint32             `json:"index"`
	Bytes []byte             `json:"bytes"`
	Proof crypto.MerkleProof `json:"proof"`
}

// SplitBlock cuts an encoded block into parts and returns their header.
func SplitBlock(encoded []byte) (PartSetHeader, []*Part) {
	n := (len(encoded) + BlockPartSize - 1) / BlockPartSize
	if n == 0 {
		n = 1
	}
	chunks := make([][]byte, n)
	for i := range chunks {
		end := min((i+1)*BlockPartSize, len(encoded))
		chunks[i] = encoded[i*BlockPartSize : end]
	}
	root, proofs := crypto.MerkleProofs(chunks)
	parts := make([]*Part, n)
	for i := range parts {
		parts[i] = &Part{Index: uint32(i), Bytes: chunks[i], Proof: proofs[i]}
	}
	return PartSetHeader{Total: uint32(n), Root: root}, parts
}

// Encode returns the canonical encoding of the part.
func (p *Part) Encode() []byte {
	proof, _ := p.Proof.MarshalBinary()
	e := wire.NewWriter(make([]byte, 0, len(p.Bytes)+len(proof)+16))
	e.U8(partVersion)
	e.U32(p.Index)
	e.Prefixed(p.Bytes)
	e.Prefixed(proof)
	return e.Bytes()
}

// DecodePart decodes a canonical part encoding.
func DecodePart(b []byte) (*Part, error) {
	d := wire.NewReader(b)
	p := new(Part)
	d.Version("part", partVersion)
	p.Index = d.U32()
	p.Bytes = append([]byte(nil), d.Prefixed("part bytes", BlockPartSize)...)
	proof := d.Prefixed("part proof", 1+3*10+crypto.MaxMerkleProofDepth*crypto.HashSize)
	if err := d.Finish("part"); err != nil {
		return nil, err
	}
	mp, err := crypto.UnmarshalMerkleProof(proof)
	if err != nil {
		return nil, fmt.Errorf("decode part: %w", err)
	}
	p.Proof = *mp
	return p, nil
}

// PartSet collects the parts of one block, checking each against the header.
type PartSet struct {
	header PartSetHeader
	parts  [][]byte
	have   int
	size   int
}

// NewPartSet returns an empty set expecting the parts named by h.
func NewPartSet(h PartSetHeader) (*PartSet, error) {
	if h.Total == 0 || h.Total > MaxBlockParts {
		return nil, fmt.Errorf("part set: %d parts, want 1 to %d", h.Total, MaxBlockParts)
	}
	return &PartSet{header: h, parts: make([][]byte, h.Total)}, nil
}

// Header is the header the set was created with.
func (ps *PartSet) Header() PartSetHeader { return ps.header }

// Add verifies p and stores it. It reports whether the part was new.
func (ps *PartSet) Add(p *Part) (bool, error) {
	if p.Index >= ps.header.Total || uint64(p.Index) != p.Proof.Index || p.Proof.Total != uint64(ps.header.Total) {
		return false, fmt.Errorf("part %d: index or total does not match the header (%d parts)", p.Index, ps.header.Total)
	}
	if p.Index+1 < ps.header.Total && len(p.Bytes) != BlockPartSize {
		return false, fmt.Errorf("part %d: %d bytes, every part but the last has %d", p.Index, len(p.Bytes), BlockPartSize)
	}
	if ps.parts[p.Index] != nil {
		return false, nil
	}
	if err := p.Proof.Verify(ps.header.Root, p.Bytes); err != nil {
		return false, fmt.Errorf("part %d: %w", p.Index, err)
	}
	b := p.Bytes
	if b == nil {
		b = []byte{} // nil marks a missing part; an empty one is present
	}
	ps.parts[p.Index] = b
	ps.have++
	ps.size += len(p.Bytes)
	return true, nil
}

// Has reports whether part i is present.
func (ps *PartSet) Has(i uint32) bool { return i < ps.header.Total && ps.parts[i] != nil }

// Complete reports whether every part is present.
func (ps *PartSet) Complete() bool { return ps.have == len(ps.parts) }

// Count is the number of parts present.
func (ps *PartSet) Count() int { return ps.have }

// Block assembles and decodes the block once the set is complete.
func (ps *PartSet) Block() (*Block, error) {
	if !ps.Complete() {
		return nil, errors.New("part set: incomplete")
	}
	buf := make([]byte, 0, ps.size)
	for _, p := range ps.parts {
		buf = append(buf, p...)
	}
	return DecodeBlock(buf)
}
