package node

import (
	"math"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/ledger"
)

// Admission of proposals whose blocks the driver assembles from parts.
//
// Every proposal that passes the gossip validator is signed by some
// validator, but one validator (a faulty one, or an attacker holding its
// key) can sign any number of them, at any round of the current and the
// next height. The slots are bounded (maxPartsEntries), so what takes a slot
// must not be able to crowd out the proposal the machine needs: the one of
// its current round. Hence, in this order:
//
//   - only the round's proposer may take a slot (the machine refuses the
//     proposals of anyone else), and not for a height already decided;
//   - a round keeps at most consensus.MaxProposalsPerRound proposals, more
//     only for a block some vote of that round names (as the machine does);
//   - when every slot is taken, a proposal displaces the least useful entry
//     if it is more useful itself: entries already handed to the machine
//     first, then the farthest from the machine's (height, round). The
//     current round's proposal always finds a slot, since the two rules
//     above leave at most a few entries at distance zero.

// partsDistance is how far the proposal slot k is from the machine at
// (height, round): 0 for the current round, the number of rounds away for
// other rounds of the height, and one more than its round for the next
// height (whose round 0 is as near as the current height's next round).
func partsDistance(k partsKey, height uint64, round uint32) uint64 {
	switch {
	case k.height != height:
		return 1 + uint64(k.round)
	case k.round >= round:
		return uint64(k.round - round)
	default:
		return uint64(round - k.round)
	}
}

// admitProposal reports whether the assembler should assemble the block of p
// (signature verified, for the machine's height or the next), in slot k,
// making room by dropping a less useful entry if every slot is taken.
func (a *assembler) admitProposal(p *ledger.Proposal, k partsKey) bool {
	m := a.machine()
	st := m.State()
	if p.Height == st.Height && st.Step == consensus.StepDecided {
		return false
	}
	if want, ok := m.Proposer(p.Height, p.Round); !ok || p.Proposer != want {
		return false
	}
	same := 0
	for o := range a.parts {
		if o.height == k.height && o.round == k.round {
			same++
		}
	}
	if same >= consensus.MaxProposalsPerRound && !a.voteNames(k) {
		return false
	}
	if len(a.parts) < maxPartsEntries {
		return true
	}
	victim, worst := partsKey{}, uint64(0)
	for o, e := range a.parts {
		dist := partsDistance(o, st.Height, st.Round)
		if e.done {
			dist = math.MaxUint64 // the machine holds its block already
		}
		if dist >= worst {
			victim, worst = o, dist
		}
	}
	if worst <= partsDistance(k, st.Height, st.Round) {
		return false
	}
	delete(a.parts, victim)
	return true
}

// voteNames reports whether a vote the machine holds for k's height and
// round is for k's block.
func (a *assembler) voteNames(k partsKey) bool {
	m := a.machine()
	return len(m.VotesFor(k.height, k.round, ledger.Prevote, k.id)) > 0 ||
		len(m.VotesFor(k.height, k.round, ledger.Precommit, k.id)) > 0
}
