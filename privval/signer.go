// Package privval is the validator's signer. Before it releases any vote
// or proposal signature it durably records what it signed, the last signed
// (height, round, step), and it refuses to sign anything that conflicts
// with that record, so a validator killed and restarted at any instant
// never signs two different messages for the same height, round and step.
//
// The guard follows CometBFT's FilePV: a request below the last signed
// (height, round, step) is refused; a request at it is answered with the
// stored signature when the sign bytes are identical and refused otherwise;
// a request above it is signed, and the new record is saved (fsynced)
// before the signature is returned.
package privval

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// Step is the step of a round a signature belongs to. Within a round the
// steps are ordered StepPropose < StepPrevote < StepPrecommit.
type Step uint8

// The signing steps of a round, in order.
const (
	StepPropose   Step = 1
	StepPrevote   Step = 2
	StepPrecommit Step = 3
)

// String returns the step's name: propose, prevote or precommit.
func (s Step) String() string {
	switch s {
	case StepPropose:
		return "propose"
	case StepPrevote:
		return "prevote"
	case StepPrecommit:
		return "precommit"
	}
	return fmt.Sprintf("Step(%d)", uint8(s))
}

// MaxSignBytes bounds the sign bytes kept in a LastSigned (a vote's or a
// proposal's are well under 200 bytes).
const MaxSignBytes = 1024

// ErrDoubleSign is wrapped by every refusal of the guard: the request is
// below the last signed (height, round, step), or at it with different
// sign bytes.
var ErrDoubleSign = errors.New("privval: refusing to sign, it could be a double sign")

// LastSigned is the guard's record of the last signature released. The
// zero value (Height 0) means nothing was ever signed.
type LastSigned struct {
	Height    uint64
	Round     uint32
	Step      Step
	BlockID   crypto.Hash      // the block signed for; zero for a vote for nil
	SignBytes []byte           // exactly the bytes signed (chain ID included)
	Sig       crypto.Signature // the signature released for SignBytes
}

// IsZero reports whether ls is the empty state: nothing signed yet.
func (ls LastSigned) IsZero() bool {
	return ls.Height == 0 && ls.Round == 0 && ls.Step == 0 && ls.BlockID.IsZero() &&
		len(ls.SignBytes) == 0 && ls.Sig == crypto.Signature{}
}

// Validate checks that ls is either the zero state or a complete record.
func (ls LastSigned) Validate() error {
	if ls.Height == 0 {
		if !ls.IsZero() {
			return errors.New("privval: state at height 0 must be empty")
		}
		return nil
	}
	if ls.Step < StepPropose || ls.Step > StepPrecommit {
		return fmt.Errorf("privval: state has unknown step %d", ls.Step)
	}
	if ls.Round > ledger.MaxRound {
		return fmt.Errorf("privval: state has round %d above %d", ls.Round, ledger.MaxRound)
	}
	if len(ls.SignBytes) == 0 || len(ls.SignBytes) > MaxSignBytes {
		return fmt.Errorf("privval: state has %d sign bytes, want 1 to %d", len(ls.SignBytes), MaxSignBytes)
	}
	if ls.Sig == (crypto.Signature{}) {
		return errors.New("privval: state has no signature")
	}
	return nil
}

// compare orders (h, r, s) against ls's: -1 below, 0 equal, +1 above.
func (ls LastSigned) compare(h uint64, r uint32, s Step) int {
	switch {
	case h != ls.Height:
		return cmp(h, ls.Height)
	case r != ls.Round:
		return cmp(r, ls.Round)
	default:
		return cmp(s, ls.Step)
	}
}

func cmp[T uint64 | uint32 | Step](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (ls LastSigned) clone() LastSigned {
	ls.SignBytes = bytes.Clone(ls.SignBytes)
	return ls
}

// StateStore persists the guard's LastSigned. Save must be atomic and
// durable: when it returns nil, a crash at any later instant leaves Load
// returning ls; when it fails or the process dies inside it, Load returns
// either ls or the state before. Load must fail, never return the zero
// state, when a saved state exists but cannot be read.
type StateStore interface {
	Load() (LastSigned, error)
	Save(ls LastSigned) error
}

// Signer signs votes and proposals with one key behind the double-sign
// guard. It is safe for concurrent use; requests are serialised.
type Signer struct {
	key   crypto.PrivKey
	pub   crypto.PubKey
	addr  crypto.Address
	store StateStore

	mu   sync.Mutex
	last LastSigned
	err  error // sticky: the store failed, the disk state is unknown
}

// New returns a Signer for key whose guard starts from store's state. It
// fails if the state cannot be loaded or is invalid, and if its stored
// signature was not made by key (a state file from another validator, or
// a key file replaced), rather than risk signing from a wrong state.
func New(key crypto.PrivKey, store StateStore) (*Signer, error) {
	if key == (crypto.PrivKey{}) {
		return nil, errors.New("privval: empty private key")
	}
	ls, err := store.Load()
	if err != nil {
		return nil, fmt.Errorf("privval: load last-signed state: %w", err)
	}
	if err := ls.Validate(); err != nil {
		return nil, err
	}
	pub := key.PubKey()
	if ls.Height > 0 && !pub.Verify(ls.SignBytes, ls.Sig) {
		return nil, fmt.Errorf("privval: the last-signed state (height %d) was not signed by key %s: wrong key or wrong state file", ls.Height, pub.Address())
	}
	return &Signer{key: key, pub: pub, addr: pub.Address(), store: store, last: ls.clone()}, nil
}

// Address returns the validator address of the signing key.
func (s *Signer) Address() crypto.Address { return s.addr }

// PubKey returns the public key of the signing key.
func (s *Signer) PubKey() crypto.PubKey { return s.pub }

// LastSigned returns a copy of the last signed record, which is also what
// the store holds.
func (s *Signer) LastSigned() LastSigned {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last.clone()
}

// SignVote signs v for chainID and sets v.Validator and v.Sig, or leaves v
// unchanged and returns an error: one wrapping ErrDoubleSign when the
// guard refuses, another for an invalid vote or chain ID or a failed save.
// Signing the identical vote again returns the stored signature.
func (s *Signer) SignVote(chainID string, v *ledger.Vote) error {
	if err := crypto.ValidateChainID(chainID); err != nil {
		return fmt.Errorf("privval: %w", err)
	}
	if err := v.ValidateBasic(); err != nil {
		return fmt.Errorf("privval: %w", err)
	}
	step := StepPrevote
	if v.Type == ledger.Precommit {
		step = StepPrecommit
	}
	sig, err := s.sign(v.Height, v.Round, step, v.BlockID, v.SignBytes(chainID))
	if err != nil {
		return fmt.Errorf("%s at height %d round %d: %w", v.Type, v.Height, v.Round, err)
	}
	v.Validator, v.Sig = s.addr, sig
	return nil
}

// SignProposal signs p for chainID at StepPropose and sets p.Proposer and
// p.Sig, under the same guard and with the same results as SignVote.
func (s *Signer) SignProposal(chainID string, p *ledger.Proposal) error {
	if err := crypto.ValidateChainID(chainID); err != nil {
		return fmt.Errorf("privval: %w", err)
	}
	if err := p.ValidateBasic(); err != nil {
		return fmt.Errorf("privval: %w", err)
	}
	sig, err := s.sign(p.Height, p.Round, StepPropose, p.BlockID, p.SignBytes(chainID))
	if err != nil {
		return fmt.Errorf("proposal at height %d round %d: %w", p.Height, p.Round, err)
	}
	p.Proposer, p.Sig = s.addr, sig
	return nil
}

// sign applies the guard and, for a new (height, round, step), signs and
// saves the record before returning the signature.
func (s *Signer) sign(h uint64, r uint32, step Step, id crypto.Hash, msg []byte) (crypto.Signature, error) {
	if len(msg) > MaxSignBytes {
		return crypto.Signature{}, fmt.Errorf("privval: %d sign bytes, at most %d", len(msg), MaxSignBytes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return crypto.Signature{}, s.err
	}
	last := s.last
	switch c := last.compare(h, r, step); {
	case c < 0:
		return crypto.Signature{}, fmt.Errorf("%w: %s below the last signed %s at height %d round %d",
			ErrDoubleSign, step, last.Step, last.Height, last.Round)
	case c == 0:
		if bytes.Equal(msg, last.SignBytes) {
			return last.Sig, nil
		}
		return crypto.Signature{}, fmt.Errorf("%w: conflicts with the %s already signed for block %s",
			ErrDoubleSign, last.Step, last.BlockID)
	}
	next := LastSigned{Height: h, Round: r, Step: step, BlockID: id, SignBytes: bytes.Clone(msg), Sig: s.key.Sign(msg)}
	if err := s.store.Save(next.clone()); err != nil {
		// The store may or may not hold next now. next's signature has
		// not left, so either is safe, but only a restart (which reloads
		// the store) can tell which; until then refuse everything.
		s.err = fmt.Errorf("privval: saving the last-signed state failed, restart the signer: %w", err)
		return crypto.Signature{}, s.err
	}
	s.last = next
	return next.Sig, nil
}
