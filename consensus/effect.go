package consensus

import (
	"fmt"

	"github.com/ledgerd/ledgerd/ledger"
)

// Effect is an output of the machine, for the driver to carry out in the
// order given. The set of effects is closed: the types in this file.
type Effect interface {
	fmt.Stringer
	isEffect()
}

// EffectBroadcastProposal asks the driver to sign Proposal (unsigned; its
// Proposer is this validator) and broadcast it with Block, then feed the
// signed proposal back as EventProposal.
type EffectBroadcastProposal struct {
	Proposal ledger.Proposal
	Block    *ledger.Block
}

// EffectBroadcastVote asks the driver to sign Vote (unsigned) and
// broadcast it, then feed the signed vote back as EventVote.
type EffectBroadcastVote struct {
	Vote ledger.Vote
}

// EffectScheduleTimeout asks the driver to deliver EventTimeout{Height,
// Round, Kind} after TimeoutDuration(params, Kind, Round).
type EffectScheduleTimeout struct {
	Height uint64
	Round  uint32
	Kind   TimeoutKind
}

// EffectRequestValue asks the driver to build a block for Height and
// deliver it as EventProposeValue (the paper's getValue(), L18).
type EffectRequestValue struct {
	Height uint64
	Round  uint32
}

// EffectDecide reports the decision of Height (L51): Block, decided in
// Round, and Commit, the +2/3 precommits for it, which anyone holding the
// validator set can verify with Commit.Verify. Proposal is the signed
// proposal that carried the block, for helping peers catch up.
type EffectDecide struct {
	Height   uint64
	Round    uint32
	Block    *ledger.Block
	Commit   *ledger.Commit
	Proposal *ledger.Proposal
}

// EffectEvidence reports an equivocation the vote keeper detected: two
// different signed votes of one validator for the same height, round and
// type. The driver keeps it until a block it commits carries it.
type EffectEvidence struct {
	Evidence *ledger.Evidence
}

func (EffectBroadcastProposal) isEffect() {}
func (EffectBroadcastVote) isEffect()     {}
func (EffectScheduleTimeout) isEffect()   {}
func (EffectRequestValue) isEffect()      {}
func (EffectDecide) isEffect()            {}
func (EffectEvidence) isEffect()          {}

// String renders the EffectBroadcastProposal in one line, for logs and traces.
func (e EffectBroadcastProposal) String() string {
	p := &e.Proposal
	return fmt.Sprintf("broadcast proposal h=%d r=%d pol=%d %s", p.Height, p.Round, p.POLRound, ShortID(p.BlockID))
}

// String renders the EffectBroadcastVote in one line, for logs and traces.
func (e EffectBroadcastVote) String() string {
	v := &e.Vote
	return fmt.Sprintf("broadcast %s h=%d r=%d %s", v.Type, v.Height, v.Round, ShortID(v.BlockID))
}

// String renders the EffectScheduleTimeout in one line, for logs and traces.
func (e EffectScheduleTimeout) String() string {
	return fmt.Sprintf("schedule timeout %s h=%d r=%d", e.Kind, e.Height, e.Round)
}

// String renders the EffectRequestValue in one line, for logs and traces.
func (e EffectRequestValue) String() string {
	return fmt.Sprintf("request value h=%d r=%d", e.Height, e.Round)
}

// String renders the EffectDecide in one line, for logs and traces.
func (e EffectDecide) String() string {
	return fmt.Sprintf("decide h=%d r=%d %s sigs=%d", e.Height, e.Round, ShortID(e.Block.Hash()), len(e.Commit.Sigs))
}

// String renders the EffectEvidence in one line, for logs and traces.
func (e EffectEvidence) String() string {
	a := &e.Evidence.VoteA
	return fmt.Sprintf("evidence %s h=%d r=%d by %s: %s vs %s", a.Type, a.Height, a.Round, ShortAddr(a.Validator),
		ShortID(a.BlockID), ShortID(e.Evidence.VoteB.BlockID))
}

// NeedsSync reports whether any of effects lets something leave the node
// (a message, a decision, evidence): the driver must make the write-ahead
// log durable, up to and including the event that caused them, before
// carrying them out. Timers and value requests need no sync: losing them in
// a crash loses nothing anyone else has seen.
func NeedsSync(effects []Effect) bool {
	for _, e := range effects {
		switch e.(type) {
		case EffectScheduleTimeout, EffectRequestValue:
		default:
			return true
		}
	}
	return false
}
