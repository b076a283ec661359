package staking

import (
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
)

// ErrRejected is wrapped by every error for an operation the state does
// not allow (an unknown validator, too few shares, a tombstoned key, ...):
// the transaction, or the block, is invalid. Any other error from this
// package means the state could not be read or holds a record that does
// not decode: the node's store is broken, not the block.
var ErrRejected = errors.New("staking: rejected")

func reject(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrRejected}, args...)...)
}

// Staking is one block's view of the staking state: an overlay of staged
// writes over the committed state. Operations check everything before they
// write anything, so a rejected operation leaves the overlay as it was.
// The caller moves tokens between accounts and the module (see the package
// doc) and commits Changes with the block. A Staking is not safe for
// concurrent use.
type Staking struct {
	ov     overlay
	p      Params
	perr   error  // the parameters' problem, returned by every operation
	height uint64 // the height of the last EndBlock, for ActiveSet
}

// New returns an empty overlay over r, under the parameters p (which
// genesis validated; operations fail if they are invalid).
func New(r Reader, p Params) *Staking {
	s := &Staking{ov: newOverlay(r), p: p}
	if err := p.Validate(); err != nil {
		s.perr = fmt.Errorf("staking: invalid parameters: %w", err)
	}
	return s
}

// Params returns the parameters the overlay runs under.
func (s *Staking) Params() Params { return s.p }

// Get reads key through the overlay: staged writes first, then the base.
// With Iterate, it makes a Staking a Reader, so queries see the staged
// state.
func (s *Staking) Get(key []byte) ([]byte, error) { return s.ov.get(key) }

// Iterate iterates the staged state in key order (see Reader).
func (s *Staking) Iterate(prefix []byte, fn func(key, value []byte) error) error {
	return s.ov.iterate(prefix, fn)
}

// Changes returns every staged write, sorted by key. Value nil deletes.
func (s *Staking) Changes() []Change { return s.ov.changes() }

// --- record access -------------------------------------------------------

func (s *Staking) read(k []byte) ([]byte, error) {
	v, err := s.ov.get(k)
	if err != nil {
		return nil, fmt.Errorf("staking: read %q: %w", k, err)
	}
	return v, nil
}

// load reads k and decodes it with dec; ok is false when k is absent.
func load[T any](s *Staking, k []byte, dec func([]byte) (T, error)) (T, bool, error) {
	var zero T
	b, err := s.read(k)
	if err != nil || b == nil {
		return zero, false, err
	}
	v, err := dec(b)
	if err != nil {
		return zero, false, fmt.Errorf("staking: record %q: %w", k, err)
	}
	return v, true, nil
}

func (s *Staking) pool() (Pool, error) {
	p, _, err := load(s, PoolKey, DecodePool)
	return p, err
}

func (s *Staking) setPool(p Pool) { s.ov.set(PoolKey, p.Encode()) }

func (s *Staking) validator(op crypto.Address) (Validator, bool, error) {
	return load(s, ValidatorKey(op), DecodeValidator)
}

func (s *Staking) consRecord(cons crypto.Address) (ConsRecord, bool, error) {
	return load(s, ConsRecordKey(cons), DecodeConsRecord)
}

func (s *Staking) delegation(del, op crypto.Address) (Delegation, bool, error) {
	return load(s, DelegationKey(del, op), DecodeDelegation)
}

func (s *Staking) unbonding(del, op crypto.Address) (Unbonding, bool, error) {
	return load(s, UnbondingKey(del, op), DecodeUnbonding)
}

func (s *Staking) signingInfo(cons crypto.Address) (SigningInfo, bool, error) {
	return load(s, SigningInfoKey(cons), DecodeSigningInfo)
}

// putValidator writes v, whose record was old before (nil for a new
// validator), and moves its power-index entry when its eligibility or
// power changed.
func (s *Staking) putValidator(old *Validator, v *Validator) {
	var oldKey, newKey []byte
	if old != nil && old.eligible(s.p.PowerUnit) {
		oldKey = powerKey(old.Power(s.p.PowerUnit), old.ConsAddr())
	}
	if v.eligible(s.p.PowerUnit) {
		newKey = powerKey(v.Power(s.p.PowerUnit), v.ConsAddr())
	}
	if string(oldKey) != string(newKey) {
		if oldKey != nil {
			s.ov.del(oldKey)
		}
		if newKey != nil {
			s.ov.set(newKey, PowerRecord{Operator: v.Operator, ConsKey: v.ConsKey, Moniker: v.Moniker}.Encode())
		}
	}
	s.ov.set(ValidatorKey(v.Operator), v.Encode())
}

// setDelegation writes d, or deletes the delegation and its index entry
// when it has no shares left.
func (s *Staking) setDelegation(del, op crypto.Address, d Delegation) {
	if d.Shares == 0 {
		s.ov.del(DelegationKey(del, op))
		s.ov.del(delByValKey(op, del))
		return
	}
	s.ov.set(DelegationKey(del, op), d.Encode())
	s.ov.set(delByValKey(op, del), marker)
}

// setUnbonding writes u, or deletes the record and its index entry when
// it has no entries left.
func (s *Staking) setUnbonding(del, op crypto.Address, u *Unbonding) {
	if len(u.Entries) == 0 {
		s.ov.del(UnbondingKey(del, op))
		s.ov.del(ubdByValKey(op, del))
		return
	}
	s.ov.set(UnbondingKey(del, op), u.Encode())
	s.ov.set(ubdByValKey(op, del), marker)
}

// keys returns (copies of) every key under prefix.
func (s *Staking) keys(prefix []byte) ([][]byte, error) {
	var out [][]byte
	err := s.ov.iterate(prefix, func(k, _ []byte) error {
		out = append(out, append([]byte(nil), k...))
		return nil
	})
	return out, err
}

// anyUnder reports whether some key has the prefix.
func (s *Staking) anyUnder(prefix []byte) (bool, error) {
	found := false
	err := s.ov.iterate(prefix, func(_, _ []byte) error {
		found = true
		return errStop
	})
	return found, err
}

// resetSigning starts a fresh window for cons at height: no missed bit.
func (s *Staking) resetSigning(cons crypto.Address, height uint64) error {
	chunks, err := s.keys(missPrefix(cons))
	if err != nil {
		return err
	}
	for _, k := range chunks {
		s.ov.del(k)
	}
	s.ov.set(SigningInfoKey(cons), SigningInfo{StartHeight: height}.Encode())
	return nil
}

// removeIfEmpty deletes the validator op once nothing refers to it any
// more: no shares (so no delegation and no tokens) and no unbonding entry
// left to slash. Its consensus record stays, so its key is never reused.
func (s *Staking) removeIfEmpty(op crypto.Address) error {
	v, ok, err := s.validator(op)
	if err != nil || !ok || v.Shares != 0 || v.Tokens != 0 {
		return err
	}
	busy, err := s.anyUnder(key(prefixUbdV, op[:]))
	if err != nil || busy {
		return err
	}
	pool, err := s.pool()
	if err != nil {
		return err
	}
	if pool.Candidates == 0 {
		return fmt.Errorf("staking: pool counts no candidate while validator %s exists", op)
	}
	pool.Candidates--
	s.setPool(pool)
	cons := v.ConsAddr()
	chunks, err := s.keys(missPrefix(cons))
	if err != nil {
		return err
	}
	for _, k := range chunks {
		s.ov.del(k)
	}
	s.ov.del(SigningInfoKey(cons))
	s.ov.del(ValidatorKey(op))
	return nil
}

// errCorrupt reports state that breaks an invariant of this package.
func errCorrupt(format string, args ...any) error {
	return fmt.Errorf("staking: corrupt state: "+format, args...)
}
