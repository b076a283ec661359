package statetree

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/wire"
)

// ErrInvalidProof is wrapped by every error Verify and the proof decoders
// return for a proof that does not check out or is malformed.
var ErrInvalidProof = errors.New("statetree: invalid proof")

// Proof shows what one key's path through a tree of a known root ends in:
// the key's own leaf (membership), a leaf of another key that shares the
// path so far, or an empty subtree (both non-membership).
type Proof struct {
	// Leaf is the leaf the path ends in, nil when it ends in an empty subtree.
	Leaf *ProofLeaf
	// Siblings are the hashes beside the path, from the root's children
	// down: Siblings[i] is the sibling of the path's node at depth i+1. The
	// path ends at depth len(Siblings), at most KeyBits.
	Siblings [][32]byte
}

// ProofLeaf is a leaf as a proof carries it: its key and H(value).
type ProofLeaf struct {
	Key       [32]byte
	ValueHash [32]byte
}

// ValidateBasic checks what can be checked without a key or root: at most
// KeyBits siblings, and a canonical shape, in which the deepest sibling is
// never empty (its parent would hold one leaf or none, and such a subtree is
// stored compressed).
func (p *Proof) ValidateBasic() error {
	if p == nil {
		return fmt.Errorf("%w: nil proof", ErrInvalidProof)
	}
	if len(p.Siblings) > KeyBits {
		return fmt.Errorf("%w: %d siblings, at most %d", ErrInvalidProof, len(p.Siblings), KeyBits)
	}
	if n := len(p.Siblings); n > 0 && p.Siblings[n-1] == EmptyRoot {
		return fmt.Errorf("%w: deepest sibling is empty", ErrInvalidProof)
	}
	return nil
}

// Verify checks p against root, trusting nothing else. With a non-empty
// value it succeeds only if root's tree maps key to exactly value; with a
// nil (or empty) value only if key is absent from root's tree. Any other
// outcome returns an error wrapping ErrInvalidProof.
func Verify(root [32]byte, key [32]byte, value []byte, p *Proof) error {
	if err := p.ValidateBasic(); err != nil {
		return err
	}
	depth := len(p.Siblings)
	var h [32]byte
	switch {
	case len(value) > 0:
		if p.Leaf == nil {
			return fmt.Errorf("%w: proof shows key %x absent", ErrInvalidProof, key)
		}
		if p.Leaf.Key != key {
			return fmt.Errorf("%w: proof shows key %x absent (path ends in leaf %x)", ErrInvalidProof, key, p.Leaf.Key)
		}
		if p.Leaf.ValueHash != hashValue(value) {
			return fmt.Errorf("%w: value of key %x does not match the proof", ErrInvalidProof, key)
		}
		h = hashLeaf(key, p.Leaf.ValueHash)
	case p.Leaf == nil:
		h = EmptyRoot
	default:
		if p.Leaf.Key == key {
			return fmt.Errorf("%w: proof shows key %x present", ErrInvalidProof, key)
		}
		if !sharesPrefix(p.Leaf.Key, key, depth) {
			return fmt.Errorf("%w: leaf %x is off key %x's path", ErrInvalidProof, p.Leaf.Key, key)
		}
		h = hashLeaf(p.Leaf.Key, p.Leaf.ValueHash)
	}
	for i := depth - 1; i >= 0; i-- {
		if bit(key, i) == 0 {
			h = hashInner(h, p.Siblings[i])
		} else {
			h = hashInner(p.Siblings[i], h)
		}
	}
	if h != root {
		return fmt.Errorf("%w: proof of key %x computes root %x, want %x", ErrInvalidProof, key, h, root)
	}
	return nil
}

// Binary encoding, version 1:
//
//	0x01                       encoding version
//	flag                       0x00: no leaf, 0x01: leaf follows
//	[key(32) valueHash(32)]    the leaf, when flag is 0x01
//	count                      2 bytes big-endian, at most 256
//	count * sibling(32)
//
// Every proof has exactly one encoding; decoding rejects anything else.
const (
	proofVersion   = 1
	maxProofLength = 2 + 64 + 2 + KeyBits*32
)

// MarshalBinary returns the proof's canonical binary encoding, at most
// 8,260 bytes. It fails only for a proof that ValidateBasic rejects.
func (p *Proof) MarshalBinary() ([]byte, error) {
	if err := p.ValidateBasic(); err != nil {
		return nil, err
	}
	w := wire.NewWriter(make([]byte, 0, 2+64+2+32*len(p.Siblings)))
	w.U8(proofVersion)
	w.Bool(p.Leaf != nil)
	if p.Leaf != nil {
		w.Fixed(p.Leaf.Key[:])
		w.Fixed(p.Leaf.ValueHash[:])
	}
	w.U16(uint16(len(p.Siblings)))
	for _, s := range p.Siblings {
		w.Fixed(s[:])
	}
	return w.Bytes(), nil
}

// UnmarshalProof decodes a canonical binary proof. It returns an error
// wrapping ErrInvalidProof for any other input, and never panics.
func UnmarshalProof(b []byte) (*Proof, error) {
	if len(b) > maxProofLength {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidProof, len(b), maxProofLength)
	}
	r := wire.NewReader(b)
	r.Version("proof", proofVersion)
	p := &Proof{}
	if r.Bool("leaf flag") {
		p.Leaf = new(ProofLeaf)
		r.Fixed(p.Leaf.Key[:])
		r.Fixed(p.Leaf.ValueHash[:])
	}
	switch n := int(r.U16()); {
	case r.Err() != nil:
	case n > KeyBits:
		r.Fail(fmt.Errorf("%d siblings, at most %d", n, KeyBits))
	case n > r.Len()/32:
		r.Fail(fmt.Errorf("%d siblings: %w: %d bytes left", n, wire.ErrTruncated, r.Len()))
	case n > 0:
		p.Siblings = make([][32]byte, n)
		for i := range p.Siblings {
			r.Fixed(p.Siblings[i][:])
		}
	}
	if err := r.Finish("proof"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidProof, err)
	}
	if err := p.ValidateBasic(); err != nil {
		return nil, err
	}
	return p, nil
}

// hexHash is a hash in JSON: a lower-case hex string.
type hexHash [32]byte

func (h hexHash) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h[:])), nil }

func (h *hexHash) UnmarshalText(b []byte) error {
	if len(b) != 64 {
		return fmt.Errorf("%w: hash of %d hex digits, want 64", ErrInvalidProof, len(b))
	}
	if _, err := hex.Decode(h[:], b); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidProof, err)
	}
	return nil
}

type proofLeafJSON struct {
	Key       hexHash `json:"key"`
	ValueHash hexHash `json:"value_hash"`
}

type proofJSON struct {
	Leaf     *proofLeafJSON `json:"leaf"`
	Siblings []hexHash      `json:"siblings"`
}

// maxProofJSON bounds a JSON proof: 256 quoted hex siblings plus a leaf,
// with room for whitespace.
const maxProofJSON = 64 << 10

// MarshalJSON encodes the proof for people and RPC clients:
// {"leaf":{"key":hex,"value_hash":hex}|null,"siblings":[hex,...]}.
func (p *Proof) MarshalJSON() ([]byte, error) {
	if err := p.ValidateBasic(); err != nil {
		return nil, err
	}
	j := proofJSON{Siblings: make([]hexHash, len(p.Siblings))}
	if p.Leaf != nil {
		j.Leaf = &proofLeafJSON{Key: p.Leaf.Key, ValueHash: p.Leaf.ValueHash}
	}
	for i, s := range p.Siblings {
		j.Siblings[i] = s
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the form MarshalJSON produces, bounded in size and
// checked with ValidateBasic.
func (p *Proof) UnmarshalJSON(b []byte) error {
	if len(b) > maxProofJSON {
		return fmt.Errorf("%w: JSON proof of %d bytes, at most %d", ErrInvalidProof, len(b), maxProofJSON)
	}
	var j proofJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidProof, err)
	}
	q := Proof{}
	if j.Leaf != nil {
		q.Leaf = &ProofLeaf{Key: j.Leaf.Key, ValueHash: j.Leaf.ValueHash}
	}
	if len(j.Siblings) > 0 {
		q.Siblings = make([][32]byte, len(j.Siblings))
		for i, s := range j.Siblings {
			q.Siblings[i] = s
		}
	}
	if err := q.ValidateBasic(); err != nil {
		return err
	}
	*p = q
	return nil
}
