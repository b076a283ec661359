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
// stored under ActiveKey; then the new set is staged there, and every
// validator that enters the set starts a fresh signing window at the
// height of the last EndBlock of this overlay (as Cosmos restarts
// StartHeight when a validator bonds). Call it once per block, after
// EndBlock.
//
// The set is read off the power index alone (keys ordered by power
// descending, then consensus address; values carry what a Member needs):
// one scan of at most MaxValidators entries, and no write unless the set
// changed.
func (s *Staking) ActiveSet() ([]Member, bool, error) {
	if s.perr != nil {
		return nil, false, s.perr
	}
	stored, err := s.read(ActiveKey)
	if err != nil {
		return nil, false, err
	}
	members, err := s.computeActive()
	if err != nil {
		return nil, false, err
	}
	enc := EncodeActive(members)
	if stored != nil && bytes.Equal(enc, stored) {
		return members, false, nil
	}
	var old []Member
	if stored != nil {
		if old, err = DecodeActive(stored); err != nil {
			return nil, false, errCorrupt("%v", err)
		}
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
	return members, true, nil
}

// computeActive reads the active set off the power index.
func (s *Staking) computeActive() ([]Member, error) {
	limit := int(s.p.MaxValidators)
	type entry struct {
		cons crypto.Address
		m    Member
	}
	top := make([]entry, 0, limit)
	err := s.ov.iterate([]byte(prefixPow), func(k, v []byte) error {
		if len(top) == limit {
			return errStop
		}
		power, cons, err := parsePowerKey(k)
		if err != nil {
			return err
		}
		rec, err := DecodePowerRecord(v)
		if err != nil {
			return errCorrupt("power index %q: %v", k, err)
		}
		if power == 0 {
			return errCorrupt("power index %q: zero power", k)
		}
		top = append(top, entry{cons, Member{Operator: rec.Operator, ConsKey: rec.ConsKey, Power: power, Moniker: rec.Moniker}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(top, func(a, b entry) int { return bytes.Compare(a.cons[:], b.cons[:]) })
	members := make([]Member, len(top))
	for i, e := range top {
		members[i] = e.m
	}
	return members, nil
}
