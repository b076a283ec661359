package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/ledger/statetree"
)

// ErrPruned is wrapped by a state read (an account, a record, a proof, an
// app hash) at a height whose state was pruned: see PruneState.
var ErrPruned = errors.New("state pruned")

// OldestState returns the lowest height whose state the store keeps: the
// state after every height from it to the latest can be read and proved.
func (s *Store) OldestState() uint64 {
	v, err := s.tree.Oldest()
	if err != nil || v == 0 {
		return 0 // nothing pruned: the genesis state (height 0) is kept
	}
	return v - 1
}

// PruneState removes the state of every height below keepFrom (never the
// latest height's), deleting at most maxOps tree nodes per batch. It runs
// beside Apply: it records keepFrom as the oldest height first and then
// touches only what heights below it alone used, so nothing retained is
// ever missing, even after a kill (call it again to finish). It returns
// the number of tree nodes deleted. A keepFrom at or below OldestState is
// no error: it finishes an interrupted pruning, if any.
func (s *Store) PruneState(ctx context.Context, keepFrom uint64, maxOps int) (int, error) {
	if latest := s.Height(); keepFrom > latest {
		keepFrom = latest
	}
	n, err := s.tree.Prune(ctx, s.db, version(keepFrom), maxOps)
	if err != nil {
		return n, fmt.Errorf("prune the state below height %d: %w", keepFrom, err)
	}
	return n, nil
}

// stateErr says, for a read of the state after height that failed because
// that state was pruned, which heights the store still keeps; other errors
// pass through with what was read.
func (s *Store) stateErr(what string, height uint64, err error) error {
	if errors.Is(err, statetree.ErrVersionPruned) {
		return fmt.Errorf("%s at height %d: %w (the node keeps the state from height %d on)", what, height, ErrPruned, s.OldestState())
	}
	return fmt.Errorf("%s at height %d: %w", what, height, err)
}
