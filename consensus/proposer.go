package consensus

import (
	"fmt"
	"sync"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// ProposerSelector names the proposer of every round of one height: the
// member chosen by increment r+1 of the height's proposer priorities
// (CometBFT's carried-over priorities, see ledger.ProposerPriorities).
// Priorities carry over from height to height, with the set changes, so
// over any window of heights a validator proposes in proportion to its
// power even while the set changes.
//
// Round r costs r+1 increments of O(n) the first time it is asked; the
// selector remembers every proposer up to the highest round asked, so a
// machine moving round by round pays O(n) per round. It is not safe for
// concurrent use (the machine's goroutine owns it).
type ProposerSelector struct {
	prio   *ledger.ProposerPriorities
	rounds *ledger.ProposerRounds
	order  []uint16 // order[r]: set index of the proposer of round r, for the rounds computed
}

// NewProposerSelector returns the selector of the height whose set and
// priorities at the start are p.
func NewProposerSelector(p *ledger.ProposerPriorities) *ProposerSelector {
	return &ProposerSelector{prio: p}
}

// Index returns the validator-set index of the proposer of round r.
func (s *ProposerSelector) Index(r uint32) int {
	if s.rounds == nil {
		s.rounds = s.prio.Rounds()
	}
	for uint64(len(s.order)) <= uint64(r) {
		s.order = append(s.order, uint16(s.rounds.Next())) // set indices are below ledger.MaxValidators
	}
	return int(s.order[r])
}

// Proposer returns the address of the proposer of round r.
func (s *ProposerSelector) Proposer(r uint32) crypto.Address {
	return s.prio.Validators().Get(s.Index(r)).Address()
}

// ValidatorSets gives the validator set of a height with its proposer
// priorities at the start of the height. The machine asks for its height
// and the next one when it enters a height; both are known once the
// previous height is committed (a set change takes effect two heights
// after the block that made it, and the priorities of a height follow
// from those of the one before). Answers must be deterministic: the
// committed chain's.
type ValidatorSets interface {
	PrioritiesAt(h uint64) (*ledger.ProposerPriorities, error)
}

// Static returns the ValidatorSets of a chain whose set never changes.
func Static(vals *ledger.ValidatorSet) ValidatorSets {
	return Schedule(func(uint64) (*ledger.ValidatorSet, error) { return vals, nil })
}

// Schedule returns the ValidatorSets of a chain whose set of height h is
// at(h), for tests and scripted chains: the priorities of a height are
// computed from genesis (zero at height 1) height by height, and
// remembered at a checkpoint every scheduleCheckpoint heights and at the
// last height asked, so heights asked in increasing order cost O(n) each.
// at must be deterministic. The result is safe for concurrent use.
func Schedule(at func(h uint64) (*ledger.ValidatorSet, error)) ValidatorSets {
	return &scheduledSets{at: at}
}

const scheduleCheckpoint = 1024

type scheduledSets struct {
	at func(uint64) (*ledger.ValidatorSet, error)

	mu          sync.Mutex
	checkpoints []*ledger.ProposerPriorities // heights 1, 1+scheduleCheckpoint, ...
	last        *ledger.ProposerPriorities
	lastHeight  uint64
}

func (s *scheduledSets) PrioritiesAt(h uint64) (*ledger.ProposerPriorities, error) {
	if h == 0 {
		return nil, fmt.Errorf("no validator set for height 0")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.checkpoints == nil {
		vals, err := s.at(1)
		if err == nil && vals == nil {
			err = fmt.Errorf("no set")
		}
		if err != nil {
			return nil, fmt.Errorf("validators of height 1: %w", err)
		}
		s.last, s.lastHeight = ledger.GenesisPriorities(vals), 1
		s.checkpoints = []*ledger.ProposerPriorities{s.last}
	}
	cur, at := s.last, s.lastHeight
	if at > h {
		k := min(int((h-1)/scheduleCheckpoint), len(s.checkpoints)-1)
		cur, at = s.checkpoints[k], 1+uint64(k)*scheduleCheckpoint
	}
	for at < h {
		vals, err := s.at(at + 1)
		if err == nil && vals == nil {
			err = fmt.Errorf("no set")
		}
		if err != nil {
			return nil, fmt.Errorf("validators of height %d: %w", at+1, err)
		}
		cur, at = cur.Next(vals), at+1
		if (at-1)%scheduleCheckpoint == 0 && (at-1)/scheduleCheckpoint == uint64(len(s.checkpoints)) {
			s.checkpoints = append(s.checkpoints, cur)
		}
	}
	s.last, s.lastHeight = cur, h
	return cur, nil
}
