package ledger

import (
	"fmt"
	"sort"
)

// ValidatorHistory is the validator set of every height, kept as the
// heights at which the set changed. The store keeps the same thing on
// disk; this in-memory form serves the simulator and tests.
type ValidatorHistory struct {
	starts []uint64 // ascending; starts[0] == 1
	sets   []*ValidatorSet
}

// NewValidatorHistory returns the history of a chain whose genesis set is
// vals.
func NewValidatorHistory(vals *ValidatorSet) *ValidatorHistory {
	return &ValidatorHistory{starts: []uint64{1}, sets: []*ValidatorSet{vals}}
}

// Set records that vals is the set from height h on. Heights must not go
// backwards; setting the set a height already has is a no-op, and a
// later call for the same height replaces the earlier one (a block
// replayed after a crash).
func (v *ValidatorHistory) Set(h uint64, vals *ValidatorSet) error {
	last := len(v.starts) - 1
	switch {
	case h < v.starts[last]:
		return fmt.Errorf("validator history: set for height %d after one for height %d", h, v.starts[last])
	case h == v.starts[last]:
		v.sets[last] = vals
	case v.sets[last].Equal(vals):
	default:
		v.starts = append(v.starts, h)
		v.sets = append(v.sets, vals)
	}
	return nil
}

// At returns the set of height h (h >= 1).
func (v *ValidatorHistory) At(h uint64) (*ValidatorSet, error) {
	if h == 0 {
		return nil, fmt.Errorf("no validator set for height 0")
	}
	i := sort.Search(len(v.starts), func(i int) bool { return v.starts[i] > h }) - 1
	return v.sets[i], nil
}

// Changes is the number of times the set changed after genesis.
func (v *ValidatorHistory) Changes() int { return len(v.starts) - 1 }

// Clone returns an independent copy.
func (v *ValidatorHistory) Clone() *ValidatorHistory {
	return &ValidatorHistory{starts: append([]uint64(nil), v.starts...), sets: append([]*ValidatorSet(nil), v.sets...)}
}
