package staking

import (
	"bytes"
	"slices"

	"github.com/ledgerd/ledgerd/crypto"
)

// ActiveSet returns the active set: the top MaxValidators validators by
// power among those that are not jailed, not tombstoned and have power at
// least 1, ties broken by consensus address ascending; sorted by consensus
// address for output. changed reports whether it differs from the set
// stored under ActiveKey, and then the new set is staged there, and every
// validator that enters the set starts a fresh signing window at the
// height of the last EndBlock (as Cosmos restarts StartHeight when a
// validator bonds). Call it once per block, after EndBlock.
//
// The set is read off the power index (keys ordered by power descending,
// then consensus address), so it costs MaxValidators reads, and nothing
// when no power-index entry was staged in this overlay.
func (s *Staking) ActiveSet() ([]Member, bool, error) {
	if s.perr != nil {
		return nil, false, s.perr
	}
	stored, err := s.read(ActiveKey)
	if err != nil {
		return nil, false, err
	}
	var old []Member
	if stored != nil {
		if old, err = DecodeActive(stored); err != nil {
			return nil, false, errCorrupt("%v", err)
		}
	}
	if stored != nil && !s.powDirty {
		return old, false, nil
	}
	members, err := s.computeActive()
	if err != nil {
		return nil, false, err
	}
	enc := EncodeActive(members)
	if stored != nil && bytes.Equal(enc, stored) {
		s.powDirty = false
		return members, false, nil
	}
	was := make(map[crypto.Address]bool, len(old))
	for _, m := range old {
		was[m.Operator] = true
	}
	for _, m := range members {
		if !was[m.Operator] {
			if err := s.resetSigning(m.ConsKey.Address(), s.height); err != nil {
				return nil, false, err
			}
		}
	}
	s.ov.set(ActiveKey, enc)
	s.powDirty = false
	return members, true, nil
}

// computeActive reads the active set off the power index.
func (s *Staking) computeActive() ([]Member, error) {
	type entry struct {
		power uint64
		op    crypto.Address
	}
	var top []entry
	limit := int(s.p.MaxValidators)
	err := s.ov.iterate([]byte(prefixPow), func(k, v []byte) error {
		if len(top) == limit {
			return errStop
		}
		power, _, err := parsePowerKey(k)
		if err != nil {
			return err
		}
		rec, err := DecodePowerRecord(v)
		if err != nil {
			return errCorrupt("power index %q: %v", k, err)
		}
		top = append(top, entry{power, rec.Operator})
		return nil
	})
	if err != nil {
		return nil, err
	}
	members := make([]Member, 0, len(top))
	for _, e := range top {
		v, ok, err := s.validator(e.op)
		if err != nil {
			return nil, err
		}
		if !ok || !v.eligible(s.p.PowerUnit) || v.Power(s.p.PowerUnit) != e.power {
			return nil, errCorrupt("power index names %s with power %d, which its record does not match", e.op, e.power)
		}
		members = append(members, Member{Operator: v.Operator, ConsKey: v.ConsKey, Power: e.power, Moniker: v.Moniker})
	}
	slices.SortFunc(members, func(a, b Member) int {
		ca, cb := a.ConsKey.Address(), b.ConsKey.Address()
		return bytes.Compare(ca[:], cb[:])
	})
	return members, nil
}
