package ledger

import (
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/wire"
)

// VoteType is the kind of a consensus vote.
type VoteType uint8

// The two vote kinds of the round protocol.
const (
	Prevote   VoteType = 1
	Precommit VoteType = 2
)

func (t VoteType) String() string {
	switch t {
	case Prevote:
		return "prevote"
	case Precommit:
		return "precommit"
	}
	return fmt.Sprintf("VoteType(%d)", uint8(t))
}

// MaxRound bounds round numbers; no honest network needs anywhere near it,
// and the bound keeps timeout arithmetic from overflowing.
const MaxRound = 1 << 20

const (
	voteVersion     = 1
	proposalVersion = 1
	commitVersion   = 1
)

// Vote is a validator's signed prevote or precommit for a block (BlockID)
// or for nil (zero BlockID) at a height and round.
type Vote struct {
	Type      VoteType         `json:"type"`
	Height    uint64           `json:"height,string"`
	Round     uint32           `json:"round"`
	BlockID   crypto.Hash      `json:"block_id"`
	Validator crypto.Address   `json:"validator"`
	Sig       crypto.Signature `json:"signature"`
}

// IsNil reports whether the vote is for nil.
func (v *Vote) IsNil() bool { return v.BlockID.IsZero() }

// voteSignPayload is what a validator signs: type, height, round and block,
// the same for every validator, so a commit need not repeat it per signer.
func voteSignPayload(t VoteType, height uint64, round uint32, id crypto.Hash) []byte {
	e := wire.NewWriter(nil)
	e.U8(voteVersion)
	e.U8(uint8(t))
	e.U64(height)
	e.U32(round)
	e.Fixed(id[:])
	return e.Bytes()
}

// VoteSignBytes returns the bytes signed for a vote on chainID.
func VoteSignBytes(chainID string, t VoteType, height uint64, round uint32, id crypto.Hash) []byte {
	return crypto.SignBytes(crypto.DomainVote, chainID, voteSignPayload(t, height, round, id))
}

// SignBytes returns the bytes the validator signs for v on chainID.
func (v *Vote) SignBytes(chainID string) []byte {
	return VoteSignBytes(chainID, v.Type, v.Height, v.Round, v.BlockID)
}

// Sign sets Validator and Sig using k.
func (v *Vote) Sign(chainID string, k crypto.PrivKey) {
	v.Validator = k.PubKey().Address()
	v.Sig = k.Sign(v.SignBytes(chainID))
}

// ValidateBasic checks the vote's fields without a validator set.
func (v *Vote) ValidateBasic() error {
	if v.Type != Prevote && v.Type != Precommit {
		return fmt.Errorf("vote: unknown type %d", v.Type)
	}
	if v.Height == 0 {
		return errors.New("vote: height 0")
	}
	if v.Round > MaxRound {
		return fmt.Errorf("vote: round %d above %d", v.Round, MaxRound)
	}
	return nil
}

// Verify checks the vote's basic fields and that its signer is in vals
// and signed it for chainID. It returns the signer's index.
func (v *Vote) Verify(chainID string, vals *ValidatorSet) (int, error) {
	if err := v.ValidateBasic(); err != nil {
		return 0, err
	}
	i, ok := vals.ByAddress(v.Validator)
	if !ok {
		return 0, fmt.Errorf("vote: %s is not a validator", v.Validator)
	}
	if !vals.Get(i).PubKey.Verify(v.SignBytes(chainID), v.Sig) {
		return 0, fmt.Errorf("vote from %s: %w", v.Validator, ErrBadSignature)
	}
	return i, nil
}

// Encode returns the canonical encoding.
func (v *Vote) Encode() []byte {
	e := wire.NewWriter(make([]byte, 0, 130))
	v.encodeTo(e)
	return e.Bytes()
}

func (v *Vote) encodeTo(e *wire.Writer) {
	e.Fixed(voteSignPayload(v.Type, v.Height, v.Round, v.BlockID))
	e.Fixed(v.Validator[:])
	e.Fixed(v.Sig[:])
}

func decodeVoteFrom(d *wire.Reader) *Vote {
	v := new(Vote)
	d.Version("vote", voteVersion)
	v.Type = VoteType(d.U8())
	v.Height = d.U64()
	v.Round = d.U32()
	d.Fixed(v.BlockID[:])
	d.Fixed(v.Validator[:])
	d.Fixed(v.Sig[:])
	return v
}

// DecodeVote decodes a canonical vote encoding and checks its basic fields.
func DecodeVote(b []byte) (*Vote, error) {
	d := wire.NewReader(b)
	v := decodeVoteFrom(d)
	if err := d.Finish("vote"); err != nil {
		return nil, err
	}
	if err := v.ValidateBasic(); err != nil {
		return nil, err
	}
	return v, nil
}

// Proposal is the proposer's signed statement that Block (by hash) is its
// proposal for Height and Round; POLRound is the round of the polka that
// justifies re-proposing a valid value, or -1.
type Proposal struct {
	Height   uint64           `json:"height,string"`
	Round    uint32           `json:"round"`
	POLRound int32            `json:"pol_round"`
	BlockID  crypto.Hash      `json:"block_id"`
	Parts    PartSetHeader    `json:"parts"`
	Proposer crypto.Address   `json:"proposer"`
	Sig      crypto.Signature `json:"signature"`
}

func (p *Proposal) signPayload() []byte {
	e := wire.NewWriter(nil)
	e.U8(proposalVersion)
	e.U64(p.Height)
	e.U32(p.Round)
	e.U32(uint32(p.POLRound))
	e.Fixed(p.BlockID[:])
	e.U32(p.Parts.Total)
	e.Fixed(p.Parts.Root[:])
	return e.Bytes()
}

// SignBytes returns the bytes the proposer signs for chainID.
func (p *Proposal) SignBytes(chainID string) []byte {
	return crypto.SignBytes(crypto.DomainProposal, chainID, p.signPayload())
}

// Sign sets Proposer and Sig using k.
func (p *Proposal) Sign(chainID string, k crypto.PrivKey) {
	p.Proposer = k.PubKey().Address()
	p.Sig = k.Sign(p.SignBytes(chainID))
}

// ValidateBasic checks the proposal's fields without a validator set.
func (p *Proposal) ValidateBasic() error {
	if p.Height == 0 {
		return errors.New("proposal: height 0")
	}
	if p.Round > MaxRound {
		return fmt.Errorf("proposal: round %d above %d", p.Round, MaxRound)
	}
	if p.POLRound < -1 || p.POLRound >= int32(p.Round) {
		return fmt.Errorf("proposal: POL round %d not in [-1, %d)", p.POLRound, p.Round)
	}
	if p.BlockID.IsZero() {
		return errors.New("proposal: nil block")
	}
	if p.Parts.Total == 0 || p.Parts.Total > MaxBlockParts {
		return fmt.Errorf("proposal: %d block parts, want 1 to %d", p.Parts.Total, MaxBlockParts)
	}
	return nil
}

// Verify checks basic fields, that the proposer is in vals, and the signature.
func (p *Proposal) Verify(chainID string, vals *ValidatorSet) error {
	if err := p.ValidateBasic(); err != nil {
		return err
	}
	i, ok := vals.ByAddress(p.Proposer)
	if !ok {
		return fmt.Errorf("proposal: %s is not a validator", p.Proposer)
	}
	if !vals.Get(i).PubKey.Verify(p.SignBytes(chainID), p.Sig) {
		return fmt.Errorf("proposal from %s: %w", p.Proposer, ErrBadSignature)
	}
	return nil
}

// Encode returns the canonical encoding.
func (p *Proposal) Encode() []byte {
	e := wire.NewWriter(p.signPayload())
	e.Fixed(p.Proposer[:])
	e.Fixed(p.Sig[:])
	return e.Bytes()
}

// DecodeProposal decodes a canonical proposal encoding and checks its basic fields.
func DecodeProposal(b []byte) (*Proposal, error) {
	d := wire.NewReader(b)
	p := new(Proposal)
	d.Version("proposal", proposalVersion)
	p.Height = d.U64()
	p.Round = d.U32()
	p.POLRound = int32(d.U32())
	d.Fixed(p.BlockID[:])
	p.Parts.Total = d.U32()
	d.Fixed(p.Parts.Root[:])
	d.Fixed(p.Proposer[:])
	d.Fixed(p.Sig[:])
	if err := d.Finish("proposal"); err != nil {
		return nil, err
	}
	if err := p.ValidateBasic(); err != nil {
		return nil, err
	}
	return p, nil
}

// CommitSig is one validator's precommit signature inside a Commit,
// naming the validator by its index in the validator set.
type CommitSig struct {
	ValidatorIndex uint32           `json:"validator_index"`
	Sig            crypto.Signature `json:"signature"`
}

// Commit is the proof that a block was decided: precommits for BlockID at
// Height and Round from validators holding more than two thirds of the
// voting power. Signatures are sorted by strictly increasing validator index.
type Commit struct {
	Height  uint64      `json:"height,string"`
	Round   uint32      `json:"round"`
	BlockID crypto.Hash `json:"block_id"`
	Sigs    []CommitSig `json:"signatures"`
}

// Hash is SHA-256 of the canonical encoding (the zero hash for nil).
func (c *Commit) Hash() crypto.Hash {
	if c == nil {
		return crypto.Hash{}
	}
	return crypto.Sum(c.Encode())
}

// Encode returns the canonical encoding.
func (c *Commit) Encode() []byte {
	e := wire.NewWriter(nil)
	c.encodeTo(e)
	return e.Bytes()
}

func (c *Commit) encodeTo(e *wire.Writer) {
	e.U8(commitVersion)
	e.U64(c.Height)
	e.U32(c.Round)
	e.Fixed(c.BlockID[:])
	e.Uvarint(uint64(len(c.Sigs)))
	for _, s := range c.Sigs {
		e.U32(s.ValidatorIndex)
		e.Fixed(s.Sig[:])
	}
}

func decodeCommitFrom(d *wire.Reader) *Commit {
	c := new(Commit)
	d.Version("commit", commitVersion)
	c.Height = d.U64()
	c.Round = d.U32()
	d.Fixed(c.BlockID[:])
	n := d.Count("commit signatures", MaxValidators, 4+crypto.SignatureSize)
	if n > 0 {
		c.Sigs = make([]CommitSig, n)
	}
	for i := 0; i < n && d.Err() == nil; i++ {
		c.Sigs[i].ValidatorIndex = d.U32()
		d.Fixed(c.Sigs[i].Sig[:])
	}
	return c
}

// DecodeCommit decodes a canonical commit encoding.
func DecodeCommit(b []byte) (*Commit, error) {
	d := wire.NewReader(b)
	c := decodeCommitFrom(d)
	if err := d.Finish("commit"); err != nil {
		return nil, err
	}
	return c, nil
}

// ValidateBasic checks structure: height, round bound, a block, signers in
// strictly increasing index order.
func (c *Commit) ValidateBasic() error {
	if c.Height == 0 {
		return errors.New("commit: height 0")
	}
	if c.Round > MaxRound {
		return fmt.Errorf("commit: round %d above %d", c.Round, MaxRound)
	}
	if c.BlockID.IsZero() {
		return errors.New("commit: nil block")
	}
	for i := 1; i < len(c.Sigs); i++ {
		if c.Sigs[i].ValidatorIndex <= c.Sigs[i-1].ValidatorIndex {
			return errors.New("commit: signatures not in strictly increasing validator order")
		}
	}
	return nil
}

// Verify checks that c is a valid commit for block id at height under
// vals: every signature verifies (batch-verified) and the signers hold
// more than two thirds of the voting power.
func (c *Commit) Verify(chainID string, vals *ValidatorSet, height uint64, id crypto.Hash) error {
	if c == nil {
		return errors.New("commit: missing")
	}
	if err := c.ValidateBasic(); err != nil {
		return err
	}
	if c.Height != height {
		return fmt.Errorf("commit: for height %d, want %d", c.Height, height)
	}
	if c.BlockID != id {
		return fmt.Errorf("commit: for block %s, want %s", c.BlockID, id)
	}
	msg := VoteSignBytes(chainID, Precommit, c.Height, c.Round, c.BlockID)
	var power uint64
	bv := crypto.NewBatchVerifier(len(c.Sigs))
	for _, s := range c.Sigs {
		if int(s.ValidatorIndex) >= vals.Size() {
			return fmt.Errorf("commit: validator index %d out of range (%d validators)", s.ValidatorIndex, vals.Size())
		}
		v := vals.Get(int(s.ValidatorIndex))
		bv.Add(v.PubKey, msg, s.Sig)
		power += v.Power
	}
	if power < vals.Quorum() {
		return fmt.Errorf("commit: signers hold %d of %d voting power, need %d", power, vals.TotalPower(), vals.Quorum())
	}
	if ok, valid := bv.Verify(); !ok {
		for i, good := range valid {
			if !good {
				return fmt.Errorf("commit: precommit of validator %d: %w", c.Sigs[i].ValidatorIndex, ErrBadSignature)
			}
		}
		return fmt.Errorf("commit: %w", ErrBadSignature)
	}
	return nil
}

// Votes expands the commit into the precommits it is made of.
func (c *Commit) Votes(vals *ValidatorSet) []Vote {
	out := make([]Vote, 0, len(c.Sigs))
	for _, s := range c.Sigs {
		if int(s.ValidatorIndex) >= vals.Size() {
			continue
		}
		out = append(out, Vote{Type: Precommit, Height: c.Height, Round: c.Round, BlockID: c.BlockID,
			Validator: vals.Get(int(s.ValidatorIndex)).Address(), Sig: s.Sig})
	}
	return out
}
