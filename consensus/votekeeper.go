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
// a vote for it. A validator that signs different votes for one round and
// type is equivocating: its first conflicting vote becomes evidence, and
// each of its votes the keeper holds counts for its own value, while the
// "anything" and f+1 tallies count each validator once. Counting an
// equivocator toward every value it signed is what keeps honest nodes in
// agreement about a quorum whichever of its votes reached them first (an
// equivocator that could make one node see a polka another cannot see
// stalls the chain), and it is safe: two quorums for different values of
// one round and type hold more than two thirds of the power each, so
// more than a third signed both, which no honest validator does while the
// faulty power is below a third.
//
// What the keeper holds is bounded: at most MaxVoteValues different
// values per validator, round and type. The first MaxUnbackedVoteValues
// are kept whatever they name. A further value is kept only when it is
// backed: validators other than the signer whose first vote of the round
// and type names it hold more than a third of the power. Otherwise the
// vote is refused (ErrDuplicate) and changes nothing; delivered again
// (catch-up answers and proof-of-lock relays repeat votes) once the value
// is backed, it is kept. Every validator's first vote backs one value, so
// at most two values are ever backed in one round and type, and the two
// places above MaxUnbackedVoteValues always have room for them. That is
// what makes the bound harmless to liveness: a value that any node can see
// reach a quorum with a faulty validator's vote has honest first votes of
// at least a quorum less the faulty power (more than a third) behind it,
// so once the honest votes have arrived every node keeps that faulty vote,
// however many other values its signer named first.
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
	votes []*ledger.Vote // by validator index, first vote
	// more holds, by validator index, an equivocator's votes for other
	// values, in the order kept: at most MaxVoteValues-1.
	more  map[int][]*ledger.Vote
	power map[crypto.Hash]uint64 // by block ID (zero for nil): power of its signers
	// backing is, by block ID, the power of the validators whose first
	// vote names it: each validator counts for one value.
	backing map[crypto.Hash]uint64
	total   uint64 // power of the validators that voted
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
			rv.sets[i] = voteSet{votes: make([]*ledger.Vote, n),
				power: make(map[crypto.Hash]uint64, 2), backing: make(map[crypto.Hash]uint64, 2)}
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

// Add counts v. It returns evidence if v is the first vote of its
// validator for this round and type that conflicts with the one it
// already cast. A duplicate returns ErrDuplicate, and so does a further
// conflicting vote the keeper does not keep (beyond MaxUnbackedVoteValues
// values, one for a value not backed; beyond MaxVoteValues, any); a vote
// for another height, from a non-validator, or beyond the future-round
// window is refused. Refused votes change nothing.
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
		if first := set.votes[i]; first != nil {
			return k.addConflicting(rv, set, i, first, v)
		}
	}
	if err := k.admit(i, v.Round); err != nil {
		return nil, err
	}
	rv := k.roundOf(v.Round)
	set := &rv.sets[typeIndex(v.Type)]
	vc := *v
	set.votes[i] = &vc
	set.backing[vc.BlockID] += k.vals.Get(i).Power
	k.count(rv, set, i, &vc, true)
	return nil, nil
}

// addConflicting counts v, a vote of validator i, whose first vote of v's
// round and type is first, if it names a value the keeper does not hold
// of i yet and the bounds let it in (see VoteKeeper). The first
// conflicting vote returns the evidence.
func (k *VoteKeeper) addConflicting(rv *roundVotes, set *voteSet, i int, first, v *ledger.Vote) (*ledger.Evidence, error) {
	if first.BlockID == v.BlockID {
		return nil, ErrDuplicate
	}
	more := set.more[i]
	for _, o := range more {
		if o.BlockID == v.BlockID {
			return nil, ErrDuplicate
		}
	}
	switch held := 1 + len(more); {
	case held >= MaxVoteValues:
		return nil, fmt.Errorf("%w: %s of %s in round %d for a value beyond the %d kept", ErrDuplicate, v.Type, ShortAddr(v.Validator), v.Round, held)
	case held >= MaxUnbackedVoteValues && set.backing[v.BlockID] < k.third:
		return nil, fmt.Errorf("%w: %s of %s in round %d for %s, a value beyond the %d kept that less than a third backs", ErrDuplicate,
			v.Type, ShortAddr(v.Validator), v.Round, ShortID(v.BlockID), held)
	}
	vc := *v
	if set.more == nil {
		set.more = make(map[int][]*ledger.Vote)
	}
	set.more[i] = append(more, &vc)
	k.count(rv, set, i, &vc, false)
	if len(more) == 0 {
		return ledger.NewEvidence(first, &vc), nil
	}
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

// voteFor returns validator i's vote for id in the set, its first or a
// conflicting one, or nil.
func (set *voteSet) voteFor(i int, id crypto.Hash) *ledger.Vote {
	if v := set.votes[i]; v != nil && v.BlockID == id {
		return v
	}
	for _, v := range set.more[i] {
		if v.BlockID == id {
			return v
		}
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
