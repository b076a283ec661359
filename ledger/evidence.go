package ledger

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/wire"
)

// voteSize is the encoded size of a vote.
const voteSize = 1 + 1 + 8 + 4 + crypto.HashSize + crypto.AddressSize + crypto.SignatureSize

// Evidence proves that a validator equivocated: two votes it signed for
// the same height, round and type but different blocks. VoteA's block ID is
// the lexicographically smaller one, so each equivocation has one encoding.
type Evidence struct {
	VoteA Vote `json:"vote_a"`
	VoteB Vote `json:"vote_b"`
}

// NewEvidence orders a and b canonically. It does not verify them.
func NewEvidence(a, b *Vote) *Evidence {
	if bytes.Compare(a.BlockID[:], b.BlockID[:]) > 0 {
		a, b = b, a
	}
	return &Evidence{VoteA: *a, VoteB: *b}
}

func (ev *Evidence) encodeTo(e *wire.Writer) {
	ev.VoteA.encodeTo(e)
	ev.VoteB.encodeTo(e)
}

// Encode returns the canonical encoding.
func (ev *Evidence) Encode() []byte {
	e := wire.NewWriter(nil)
	ev.encodeTo(e)
	return e.Bytes()
}

// Hash is SHA-256 of the canonical encoding.
func (ev *Evidence) Hash() crypto.Hash { return crypto.Sum(ev.Encode()) }

func decodeEvidenceFrom(d *wire.Reader) *Evidence {
	ev := new(Evidence)
	ev.VoteA = *decodeVoteFrom(d)
	ev.VoteB = *decodeVoteFrom(d)
	return ev
}

// DecodeEvidence decodes a canonical evidence encoding.
func DecodeEvidence(b []byte) (*Evidence, error) {
	d := wire.NewReader(b)
	ev := decodeEvidenceFrom(d)
	if err := d.Finish("evidence"); err != nil {
		return nil, err
	}
	return ev, nil
}

// Key identifies the offence (validator, height, round, type) no matter
// which pair of conflicting votes proves it, so it is punished at most once.
func (ev *Evidence) Key() crypto.Hash {
	e := wire.NewWriter(nil)
	e.Fixed([]byte("evidence/"))
	e.Fixed(ev.VoteA.Validator[:])
	e.U64(ev.VoteA.Height)
	e.U32(ev.VoteA.Round)
	e.U8(uint8(ev.VoteA.Type))
	return crypto.Sum(e.Bytes())
}

// IncludableAt reports whether a block of height h may carry ev as far as
// heights go: a block punishes only offences of heights below its own.
// Equivocations are usually seen while their own height is still being
// decided (or, through votes of peers already ahead, one height early), so
// whoever builds blocks must hold such evidence back until the chain has
// passed its height: Execute refuses a block that carries it early.
func (ev *Evidence) IncludableAt(h uint64) bool { return ev.VoteA.Height < h }

// Verify checks that ev proves an equivocation by a member of vals on chainID.
func (ev *Evidence) Verify(chainID string, vals *ValidatorSet) error {
	a, b := &ev.VoteA, &ev.VoteB
	if a.Validator != b.Validator || a.Height != b.Height || a.Round != b.Round || a.Type != b.Type {
		return errors.New("evidence: votes are not for the same validator, height, round and type")
	}
	if c := bytes.Compare(a.BlockID[:], b.BlockID[:]); c == 0 {
		return errors.New("evidence: votes are for the same block")
	} else if c > 0 {
		return errors.New("evidence: votes not in canonical order")
	}
	if _, err := a.Verify(chainID, vals); err != nil {
		return fmt.Errorf("evidence: vote A: %w", err)
	}
	if _, err := b.Verify(chainID, vals); err != nil {
		return fmt.Errorf("evidence: vote B: %w", err)
	}
	return nil
}
