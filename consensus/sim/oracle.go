package sim

import (
	"slices"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// oracle watches one honest node's machine from outside and checks it
// against what the machine accepted, with its own bookkeeping and its own
// arithmetic rather than the consensus package's (the vote keeper, the
// machine's lock variables, ledger.ValidatorSet.Quorum):
//
//   - equivocation: when the machine accepts a second vote of one
//     validator for the same height, round and type but another block,
//     the step's effects carry the evidence of exactly those two votes,
//     and the driver hands it to the pool (Observer.Evidence) before the
//     next step. The machine accepts a vote only after its keeper stored
//     it, so the second accepted vote is the keeper's second vote: the
//     check is exact. Further values of the same validator, round and type
//     (the keeper keeps a few) carry no more evidence.
//   - locking: a precommit for a value needs a polka for it in that round
//     among the prevotes accepted (L36); the node's lock is the value and
//     round of its last precommit for a value (L38-L39 set it exactly
//     there); a prevote for another value than the lock needs that
//     round's proposal of it with a proof-of-lock round at or above the
//     lock's, and the polka of that round (L28-L29).
//
// A polka is prevotes of more than two thirds of the total power of the
// height's set (the reference chain's), summed here from each validator's
// power; every accepted vote of a validator counts for its own value, as
// in the paper.
//
// The oracle follows one machine: a restart makes a new one (NewMachine),
// and the replay feeds it again.
type oracle struct {
	n       *node
	heights map[uint64]*oracleHeight
	// pending are the evidence effects of the last step not yet handed
	// to the pool.
	pending []crypto.Hash
}

type oracleHeight struct {
	votes     map[voteSlot]*accepted
	proposals map[uint32]map[crypto.Hash]int32 // round -> block -> POL round
	locked    bool
	lockValue crypto.Hash
	lockRound uint32
}

type voteSlot struct {
	round uint32
	typ   ledger.VoteType
	val   int
}

// accepted is what a validator voted in one slot: one value, or more
// (consensus.MaxVoteValues at most), in the order accepted.
type accepted struct {
	ids []crypto.Hash
}

func (a *accepted) has(id crypto.Hash) bool { return slices.Contains(a.ids, id) }

func newOracle(n *node) *oracle { return &oracle{n: n, heights: map[uint64]*oracleHeight{}} }

// reset forgets everything: a new machine starts.
func (o *oracle) reset() {
	o.heights = map[uint64]*oracleHeight{}
	o.pending = nil
}

func (o *oracle) height(h uint64) *oracleHeight {
	oh := o.heights[h]
	if oh == nil {
		oh = &oracleHeight{votes: map[voteSlot]*accepted{}, proposals: map[uint32]map[crypto.Hash]int32{}}
		o.heights[h] = oh
	}
	return oh
}

// decided drops what the oracle keeps of heights up to h.
func (o *oracle) decided(h uint64) {
	for k := range o.heights {
		if k <= h {
			delete(o.heights, k)
		}
	}
}

// polka reports whether the accepted prevotes for id in round r of h
// hold more than two thirds of the power.
func (o *oracle) polka(h uint64, r uint32, id crypto.Hash) bool {
	oh := o.heights[h]
	if oh == nil {
		return false
	}
	vals := o.n.setOf(h)
	var power uint64
	for i := 0; i < vals.Size(); i++ {
		if a := oh.votes[voteSlot{r, ledger.Prevote, i}]; a != nil && a.has(id) {
			power += vals.Get(i).Power
		}
	}
	return overTwoThirds(power, totalOf(vals))
}

// holdsCommit reports whether the machine accepted precommits of more
// than two thirds of the power for c's block in c's round.
func (o *oracle) holdsCommit(c *ledger.Commit) bool {
	oh := o.heights[c.Height]
	if oh == nil {
		return false
	}
	vals := o.n.setOf(c.Height)
	var power uint64
	for i := 0; i < vals.Size(); i++ {
		if a := oh.votes[voteSlot{c.Round, ledger.Precommit, i}]; a != nil && a.has(c.BlockID) {
			power += vals.Get(i).Power
		}
	}
	return overTwoThirds(power, totalOf(vals))
}

// evidenceReported is Observer.Evidence: the driver handed ev to the pool.
func (o *oracle) evidenceReported(ev *ledger.Evidence) {
	k := ev.Key()
	for i, p := range o.pending {
		if p == k {
			o.pending = append(o.pending[:i], o.pending[i+1:]...)
			return
		}
	}
}

// stepped checks one step of the machine: ev was accepted and returned
// effects.
func (o *oracle) stepped(ev consensus.Event, effects []consensus.Effect) {
	n, s := o.n, o.n.s
	if len(o.pending) > 0 {
		s.check.fail(InvEquivocation, n, "the machine's evidence effect never reached the evidence pool (%d pieces)", len(o.pending))
		return
	}
	switch e := ev.(type) {
	case consensus.EventVote:
		o.vote(e.Vote, effects)
	case consensus.EventProposal:
		p := e.Proposal
		oh := o.height(p.Height)
		if oh.proposals[p.Round] == nil {
			oh.proposals[p.Round] = map[crypto.Hash]int32{}
		}
		oh.proposals[p.Round][p.BlockID] = p.POLRound
	}
	for _, eff := range effects {
		switch e := eff.(type) {
		case consensus.EffectEvidence:
			o.pending = append(o.pending, e.Evidence.Key())
		case consensus.EffectBroadcastVote:
			o.ownVote(&e.Vote)
		}
	}
}

// vote records an accepted vote and checks that a second, conflicting one
// came with its evidence.
func (o *oracle) vote(v *ledger.Vote, effects []consensus.Effect) {
	n, s := o.n, o.n.s
	i, ok := n.setOf(v.Height).ByAddress(v.Validator)
	if !ok {
		return
	}
	oh := o.height(v.Height)
	slot := voteSlot{v.Round, v.Type, i}
	a := oh.votes[slot]
	if a == nil {
		oh.votes[slot] = &accepted{ids: []crypto.Hash{v.BlockID}}
		return
	}
	if a.has(v.BlockID) {
		return
	}
	if a.ids = append(a.ids, v.BlockID); len(a.ids) > 2 {
		s.stats.ExtraValues++
		if len(a.ids) > consensus.MaxUnbackedVoteValues {
			s.stats.BackedValues++
		}
		return
	}
	s.stats.Checks[InvEquivocation]++
	for _, eff := range effects {
		e, ok := eff.(consensus.EffectEvidence)
		if !ok {
			continue
		}
		va, vb := e.Evidence.VoteA, e.Evidence.VoteB
		if va.Validator == v.Validator && va.Height == v.Height && va.Round == v.Round && va.Type == v.Type &&
			vb.Validator == v.Validator && vb.Height == v.Height && vb.Round == v.Round && vb.Type == v.Type &&
			((va.BlockID == a.ids[0] && vb.BlockID == a.ids[1]) || (va.BlockID == a.ids[1] && vb.BlockID == a.ids[0])) {
			return
		}
	}
	s.check.fail(InvEquivocation, n, "accepted %s and %s from %s (%s h=%d r=%d) without reporting evidence",
		consensus.ShortID(a.ids[0]), consensus.ShortID(a.ids[1]), consensus.ShortAddr(v.Validator), v.Type, v.Height, v.Round)
}

// ownVote checks a vote the machine asks its signer for against the
// locking rules, and moves the lock on a precommit for a value.
func (o *oracle) ownVote(v *ledger.Vote) {
	n, s := o.n, o.n.s
	if v.BlockID.IsZero() {
		return
	}
	oh := o.height(v.Height)
	s.stats.Checks[InvLocking]++
	switch v.Type {
	case ledger.Precommit:
		if _, proposed := oh.proposals[v.Round][v.BlockID]; !proposed || !o.polka(v.Height, v.Round, v.BlockID) {
			s.check.fail(InvLocking, n, "precommits %s at h=%d r=%d without its proposal and a polka for it", consensus.ShortID(v.BlockID), v.Height, v.Round)
			return
		}
		oh.locked, oh.lockValue, oh.lockRound = true, v.BlockID, v.Round
	case ledger.Prevote:
		pol, proposed := oh.proposals[v.Round][v.BlockID]
		if !proposed {
			s.check.fail(InvLocking, n, "prevotes %s at h=%d r=%d, which was not proposed in that round", consensus.ShortID(v.BlockID), v.Height, v.Round)
			return
		}
		if !oh.locked || oh.lockValue == v.BlockID {
			return
		}
		if pol < 0 || uint32(pol) < oh.lockRound || !o.polka(v.Height, uint32(pol), v.BlockID) {
			s.check.fail(InvLocking, n, "prevotes %s at h=%d r=%d (POL round %d) while locked on %s since round %d",
				consensus.ShortID(v.BlockID), v.Height, v.Round, pol, consensus.ShortID(oh.lockValue), oh.lockRound)
		}
	}
}
