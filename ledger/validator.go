package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/wire"
)

// MaxValidators bounds the validator set.
const MaxValidators = 1000

// MaxTotalVotingPower bounds the sum of all voting powers, so that tallies
// (and the 2/3 arithmetic on them) can never overflow.
const MaxTotalVotingPower = math.MaxInt64 / 8

// MaxValidatorNameLen bounds a validator's display name.
const MaxValidatorNameLen = 64

// Validator is one member of the validator set.
type Validator struct {
	PubKey crypto.PubKey `json:"pub_key"`
	Power  uint64        `json:"power,string"`
	Name   string        `json:"name,omitempty"`
	// Operator is the account that runs the validator: it created it and
	// its self-delegation, and it unjails it. Zero in a genesis document
	// means the account of the validator's own key. It is not part of
	// the set's hash (consensus needs keys and powers only).
	Operator crypto.Address `json:"operator,omitzero"`
	addr     crypto.Address // derived from PubKey
}

// Address is the validator's address, derived from its public key.
func (v *Validator) Address() crypto.Address {
	if v.addr.IsZero() {
		return v.PubKey.Address()
	}
	return v.addr
}

// ValidatorSet is an immutable, canonically ordered (by address) set of
// validators with positive voting power. Index i of a set always names the
// same validator, which is how commits refer to signers.
type ValidatorSet struct {
	vals  []Validator
	total uint64
	index map[crypto.Address]int
	hash  crypto.Hash
}

// NewValidatorSet validates vals and returns them as a set sorted by address.
func NewValidatorSet(vals []Validator) (*ValidatorSet, error) {
	if len(vals) == 0 {
		return nil, errors.New("validator set is empty")
	}
	if len(vals) > MaxValidators {
		return nil, fmt.Errorf("validator set has %d members, at most %d", len(vals), MaxValidators)
	}
	s := &ValidatorSet{vals: make([]Validator, len(vals)), index: make(map[crypto.Address]int, len(vals))}
	copy(s.vals, vals)
	for i := range s.vals {
		v := &s.vals[i]
		v.addr = v.PubKey.Address()
		if v.Power == 0 {
			return nil, fmt.Errorf("validator %s (%s) has zero voting power", v.addr, v.Name)
		}
		if len(v.Name) > MaxValidatorNameLen {
			return nil, fmt.Errorf("validator %s: name longer than %d bytes", v.addr, MaxValidatorNameLen)
		}
		if v.Power > MaxTotalVotingPower || s.total > MaxTotalVotingPower-v.Power {
			return nil, fmt.Errorf("total voting power exceeds %d", uint64(MaxTotalVotingPower))
		}
		s.total += v.Power
	}
	sort.Slice(s.vals, func(i, j int) bool { return bytes.Compare(s.vals[i].addr[:], s.vals[j].addr[:]) < 0 })
	for i := range s.vals {
		a := s.vals[i].addr
		if _, dup := s.index[a]; dup {
			return nil, fmt.Errorf("duplicate validator %s (public key %s)", a, s.vals[i].PubKey)
		}
		s.index[a] = i
	}
	items := make([][]byte, len(s.vals))
	for i := range s.vals {
		e := wire.NewWriter(make([]byte, 0, crypto.PubKeySize+8))
		e.Fixed(s.vals[i].PubKey[:])
		e.U64(s.vals[i].Power)
		items[i] = e.Bytes()
	}
	s.hash = crypto.MerkleRoot(items)
	return s, nil
}

// Size is the number of validators.
func (s *ValidatorSet) Size() int { return len(s.vals) }

// TotalPower is the sum of all voting powers.
func (s *ValidatorSet) TotalPower() uint64 { return s.total }

// Quorum is the smallest power strictly greater than two thirds of the total.
func (s *ValidatorSet) Quorum() uint64 { return s.total*2/3 + 1 }

// OneThirdPlus is the smallest power strictly greater than one third (f+1).
func (s *ValidatorSet) OneThirdPlus() uint64 { return s.total/3 + 1 }

// Get returns the validator at index i.
func (s *ValidatorSet) Get(i int) *Validator { return &s.vals[i] }

// Validators returns a copy of the members in canonical order.
func (s *ValidatorSet) Validators() []Validator { return append([]Validator(nil), s.vals...) }

// ByAddress returns the index of the validator with address a.
func (s *ValidatorSet) ByAddress(a crypto.Address) (int, bool) {
	i, ok := s.index[a]
	return i, ok
}

// Hash is the Merkle root over (public key, power) of every member in order;
// headers commit to it.
func (s *ValidatorSet) Hash() crypto.Hash { return s.hash }

// validatorSetVersion is the encoding version of a ValidatorSet.
const validatorSetVersion = 1

// minValidatorSize is the smallest encoded member: key, power, empty name.
const minValidatorSize = crypto.PubKeySize + 8 + 1 + crypto.AddressSize

// Encode returns the canonical encoding of the set: its members in
// canonical order with their names. The store keeps one per change of
// the set, and RPC serves them to light clients.
func (s *ValidatorSet) Encode() []byte {
	e := wire.NewWriter(make([]byte, 0, 4+len(s.vals)*(minValidatorSize+16)))
	e.U8(validatorSetVersion)
	e.Uvarint(uint64(len(s.vals)))
	for i := range s.vals {
		v := &s.vals[i]
		e.Fixed(v.PubKey[:])
		e.U64(v.Power)
		e.PrefixedString(v.Name)
		e.Fixed(v.Operator[:])
	}
	return e.Bytes()
}

// DecodeValidatorSet decodes a canonical encoding and checks every rule
// NewValidatorSet checks, and that the members were in canonical order.
func DecodeValidatorSet(b []byte) (*ValidatorSet, error) {
	d := wire.NewReader(b)
	d.Version("validator set", validatorSetVersion)
	n := d.Count("validators", MaxValidators, minValidatorSize)
	vals := make([]Validator, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		var v Validator
		d.Fixed(v.PubKey[:])
		v.Power = d.U64()
		v.Name = d.PrefixedString("validator name", MaxValidatorNameLen)
		d.Fixed(v.Operator[:])
		vals = append(vals, v)
	}
	if err := d.Finish("validator set"); err != nil {
		return nil, err
	}
	s, err := NewValidatorSet(vals)
	if err != nil {
		return nil, fmt.Errorf("decode validator set: %w", err)
	}
	for i := range vals {
		if s.vals[i].PubKey != vals[i].PubKey {
			return nil, errors.New("decode validator set: members not in canonical order")
		}
	}
	return s, nil
}

// Equal reports whether s and o have the same members with the same
// powers, names and operators.
func (s *ValidatorSet) Equal(o *ValidatorSet) bool {
	if s == o {
		return true
	}
	if s == nil || o == nil || len(s.vals) != len(o.vals) || s.hash != o.hash {
		return false
	}
	for i := range s.vals {
		if s.vals[i].Name != o.vals[i].Name || s.vals[i].Operator != o.vals[i].Operator {
			return false
		}
	}
	return true
}
