package consensus

import (
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// CommitQuorum is a block with 2f+1 precommits (more than two thirds of
// the voting power) in Round: a candidate for L49.
type CommitQuorum struct {
	Round   uint32
	BlockID crypto.Hash
}

// VoteKeeper holds the votes of one height, tallied by voting power, and
// answers the quorum questions of Algorithm 1's guards: PolkaFor,
// PolkaAny, PrecommitFor, PrecommitAny, HighestSkipRound, CommitQuorums.
// "Quorum" is more than two thirds of the total voting power (2f+1);
// "skip" is more than one third (f+1). The answers are states, not
// events: once a quorum is reached it stays reached, and asking again
// gives the same answer. "For the first time" in the paper (L34, L36,
// L47) is the machine's business, recorded by its per-round anchors (see
// Machine and rules.go); the keeper reports nothing on its own.
//
// As in the paper, a quorum for a value counts every validator that signed
// a vote for it. A validator that signs two different votes for one round
// and type is equivocating: the second vote becomes evidence and still
// counts for its own value (so every honest node can see the same polka,
// whichever of the two votes reached it first; otherwise an equivocator
// could stall the chain), while the "anything" and f+1 tallies count each
// validator once. Votes beyond the second are refused.
type VoteKeeper struct {
	vals   *ledger.ValidatorSet
	height uint64
	round  uint32 // the machine's current round: the base of the future-round window
	quorum uint64
	third  uint64
	rounds map[uint32]*roundVotes
	// active[i] lists the rounds in which validator i sent something.
	active [][]uint32
	// commits lists the (round, block) precommit quorums in the order
	// they were reached; skip is the highest round with f+1 active power.
	commits []CommitQuorum
	skip    uint32
	hasSkip bool
}

// voteSet is one round's votes of one type.
type voteSet struct {
	votes  []*ledger.Vote         // by validator index, first vote
	second []*ledger.Vote         // by validator index, a conflicting second vote
	power  map[crypto.Hash]uint64 // by block ID (zero for nil): power of its signers
	total  uint64                 // power of the validators that voted
}

type roundVotes struct {
	sets        [2]voteSet // prevotes, precommits
	present     []bool     // by validator index: sent anything this round
	activePower uint64
}

// NewVoteKeeper returns an empty keeper for height.
func NewVoteKeeper(vals *ledger.ValidatorSet, height uint64) *VoteKeeper {
	return &VoteKeeper{
		vals:   vals,
		height: height,
		quorum: vals.Quorum(),
		third:  vals.OneThirdPlus(),
		rounds: make(map[uint32]*roundVotes),
		active: make([][]uint32, vals.Size()),
	}
}

// Height is the height whose votes the keeper holds.
func (k *VoteKeeper) Height() uint64 { return k.height }

// SetRound tells the keeper the machine's current round, which anchors the
// MaxFutureRounds window.
func (k *VoteKeeper) SetRound(r uint32) { k.round = r }

func typeIndex(t ledger.VoteType) int { return int(t) - 1 }

func (k *VoteKeeper) roundOf(r uint32) *roundVotes {
	rv := k.rounds[r]
	if rv == nil {
		n := k.vals.Size()
		rv = &roundVotes{present: make([]bool, n)}
		for i := range rv.sets {
			rv.sets[i] = voteSet{votes: make([]*ledger.Vote, n), second: make([]*ledger.Vote, n),
				power: make(map[crypto.Hash]uint64, 2)}
		}
		k.rounds[r] = rv
	}
	return rv
}

// admit checks the future-round window for validator i in round r.
func (k *VoteKeeper) admit(i int, r uint32) error {
	if r <= k.round {
		return nil
	}
	ahead := 0
	for _, a := range k.active[i] {
		if a == r {
			return nil
		}
		if a > k.round {
			ahead++
		}
	}
	if ahead >= MaxFutureRounds {
		return fmt.Errorf("%w: validator %s already active in %d rounds above %d", ErrTooFarAhead, ShortAddr(k.vals.Get(i).Address()), ahead, k.round)
	}
	return nil
}

// markPresent records that validator i sent a message in round r, for
// the f+1 count of L55. Tallies only grow, so the one message that takes
// the round's power past a third is the only one that can raise the skip
// round.
func (k *VoteKeeper) markPresent(i int, r uint32, rv *roundVotes) {
	if rv.present[i] {
		return
	}
	rv.present[i] = true
	k.active[i] = append(k.active[i], r)
	before := rv.activePower
	rv.activePower += k.vals.Get(i).Power
	if before < k.third && rv.activePower >= k.third && (!k.hasSkip || r > k.skip) {
		k.skip, k.hasSkip = r, true
	}
}

// Observe records a message other than a vote (a proposal) from validator
// index i in round r, for the f+1 count of L55. It refuses rounds beyond
// the validator's MaxFutureRounds window.
func (k *VoteKeeper) Observe(i int, r uint32) error {
	if i < 0 || i >= k.vals.Size() {
		return fmt.Errorf("observe validator index %d: %w", i, ErrNotValidator)
	}
	if err := k.admit(i, r); err != nil {
		return err
	}
	k.markPresent(i, r, k.roundOf(r))
	return nil
}

// Add counts v. It returns evidence if v conflicts with the vote the
// validator already cast for this round and type. A duplicate returns
// ErrDuplicate, and so does a third different vote; a vote for another
// height, from a non-validator, or beyond the future-round window is
// refused. Refused votes change nothing.
func (k *VoteKeeper) Add(v *ledger.Vote) (*ledger.Evidence, error) {
	if v.Height != k.height {
		return nil, fmt.Errorf("%w: vote for height %d, keeper holds %d", ErrMalformed, v.Height, k.height)
	}
	if v.Type != ledger.Prevote && v.Type != ledger.Precommit {
		return nil, fmt.Errorf("%w: vote type %d", ErrMalformed, v.Type)
	}
	i, ok := k.vals.ByAddress(v.Validator)
	if !ok {
		return nil, fmt.Errorf("vote from %s: %w", ShortAddr(v.Validator), ErrNotValidator)
	}
	if rv := k.rounds[v.Round]; rv != nil {
		set := &rv.sets[typeIndex(v.Type)]
		if prev := set.votes[i]; prev != nil {
			if prev.BlockID == v.BlockID {
				return nil, ErrDuplicate
			}
			if sec := set.second[i]; sec != nil {
				if sec.BlockID == v.BlockID {
					return nil, ErrDuplicate
				}
				return nil, fmt.Errorf("%w: third different %s of %s in round %d", ErrDuplicate, v.Type, ShortAddr(v.Validator), v.Round)
			}
			vc := *v
			set.second[i] = &vc
			k.count(rv, set, i, &vc, false)
			return ledger.NewEvidence(prev, &vc), nil
		}
	}
	if err := k.admit(i, v.Round); err != nil {
		return nil, err
	}
	rv := k.roundOf(v.Round)
	set := &rv.sets[typeIndex(v.Type)]
	vc := *v
	set.votes[i] = &vc
	k.count(rv, set, i, &vc, true)
	return nil, nil
}

// count adds validator i's vote v to the tallies; first says it is the
// validator's first vote of this round and type. A precommit that takes
// its block's power to the quorum is recorded in commits; tallies only
// grow, so each (round, block) is recorded once.
func (k *VoteKeeper) count(rv *roundVotes, set *voteSet, i int, v *ledger.Vote, first bool) {
	p := k.vals.Get(i).Power
	before := set.power[v.BlockID]
	set.power[v.BlockID] = before + p
	if v.Type == ledger.Precommit && !v.BlockID.IsZero() && before < k.quorum && before+p >= k.quorum {
		k.commits = append(k.commits, CommitQuorum{Round: v.Round, BlockID: v.BlockID})
	}
	if first {
		set.total += p
		k.markPresent(i, v.Round, rv)
	}
}

// power returns the power of votes of type t in round r for id.
func (k *VoteKeeper) power(r uint32, t ledger.VoteType, id crypto.Hash) uint64 {
	rv := k.rounds[r]
	if rv == nil {
		return 0
	}
	return rv.sets[typeIndex(t)].power[id]
}

// PolkaFor reports 2f+1 prevotes for id (nil when id is zero) in round r.
func (k *VoteKeeper) PolkaFor(r uint32, id crypto.Hash) bool {
	return k.power(r, ledger.Prevote, id) >= k.quorum
}

// PolkaAny reports 2f+1 prevotes for anything in round r.
func (k *VoteKeeper) PolkaAny(r uint32) bool {
	rv := k.rounds[r]
	return rv != nil && rv.sets[0].total >= k.quorum
}

// PrecommitFor reports 2f+1 precommits for id in round r.
func (k *VoteKeeper) PrecommitFor(r uint32, id crypto.Hash) bool {
	return k.power(r, ledger.Precommit, id) >= k.quorum
}

// PrecommitAny reports 2f+1 precommits for anything in round r.
func (k *VoteKeeper) PrecommitAny(r uint32) bool {
	rv := k.rounds[r]
	return rv != nil && rv.sets[1].total >= k.quorum
}

// Names reports whether any counted vote of round r is for id.
func (k *VoteKeeper) Names(r uint32, id crypto.Hash) bool {
	return k.power(r, ledger.Prevote, id) > 0 || k.power(r, ledger.Precommit, id) > 0
}

// HighestSkipRound returns the highest round in which validators holding
// more than a third of the power sent messages.
func (k *VoteKeeper) HighestSkipRound() (uint32, bool) { return k.skip, k.hasSkip }

// CommitQuorums returns the (round, block) pairs with 2f+1 precommits, each
// once, in the order they were reached. The slice must not be modified.
func (k *VoteKeeper) CommitQuorums() []CommitQuorum { return k.commits }

// Commit assembles the precommits for id in round r into a commit, signers
// in validator-index order. It returns nil without 2f+1 of them.
func (k *VoteKeeper) Commit(r uint32, id crypto.Hash) *ledger.Commit {
	if !k.PrecommitFor(r, id) {
		return nil
	}
	c := &ledger.Commit{Height: k.height, Round: r, BlockID: id}
	set := &k.rounds[r].sets[1]
	for i := range set.votes {
		if v := set.voteFor(i, id); v != nil {
			c.Sigs = append(c.Sigs, ledger.CommitSig{ValidatorIndex: uint32(i), Sig: v.Sig})
		}
	}
	return c
}

// voteFor returns validator i's vote for id in the set, first or second.
func (set *voteSet) voteFor(i int, id crypto.Hash) *ledger.Vote {
	if v := set.votes[i]; v != nil && v.BlockID == id {
		return v
	}
	if v := set.second[i]; v != nil && v.BlockID == id {
		return v
	}
	return nil
}

// Vote returns validator i's first vote of type t in round r, or nil.
func (k *VoteKeeper) Vote(r uint32, t ledger.VoteType, i int) *ledger.Vote {
	rv := k.rounds[r]
	if rv == nil || i < 0 || i >= len(rv.present) || (t != ledger.Prevote && t != ledger.Precommit) {
		return nil
	}
	return rv.sets[typeIndex(t)].votes[i]
}

// VotesFor returns the votes of type t in round r for id, at most one per
// validator, in validator-index order. They must not be modified.
func (k *VoteKeeper) VotesFor(r uint32, t ledger.VoteType, id crypto.Hash) []*ledger.Vote {
	rv := k.rounds[r]
	if rv == nil || (t != ledger.Prevote && t != ledger.Precommit) {
		return nil
	}
	set := &rv.sets[typeIndex(t)]
	var out []*ledger.Vote
	for i := range set.votes {
		if v := set.voteFor(i, id); v != nil {
			out = append(out, v)
		}
	}
	return out
}
