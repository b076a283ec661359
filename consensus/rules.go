package consensus

import (
	"fmt"

	"github.com/ledgerd/ledgerd/ledger"
)

// The upon-rules of Algorithm 1, one method each. A rule method checks its
// guard against the machine's state and, when enabled, carries out the
// rule's action and reports true. Line numbers refer to Algorithm 1 of
// "The latest gossip on BFT consensus" (arXiv:1807.04938v3).

// maxFiringsPerStep bounds the rules one event can fire. Every firing
// changes what its own guard reads (the step, the round, the decision) or
// sets a "first time" anchor, so one round fires at most five rules (L22
// or L28, L34, L36, L44, L47), one event starts at most two rounds (its
// own and one L55 skip, which goes to the highest round the keeper knows)
// and L49 ends the height: twelve. A higher count means a rule fired
// without changing its guard, and the loop would never end.
const maxFiringsPerStep = 32

// applyRules fires enabled rules until none is left. It runs after every
// accepted event, and again after every rule that fires, so a rule whose
// guard became true through a step change (or a new round) fires without
// waiting for another message. Guards are conditions on the current
// state, not events: a quorum reached before its rule could act (in
// another step, an earlier round, or before the proposal arrived) is acted
// on as soon as the rest of the guard holds. It panics if a rule fires
// more than maxFiringsPerStep times, a broken invariant.
func (m *Machine) applyRules() {
	for n := 0; m.step.inRound() && m.fireOne(); n++ {
		if n == maxFiringsPerStep {
			panic(fmt.Sprintf("consensus: more than %d rules fired for one event at %s: a rule fires without changing its guard", maxFiringsPerStep, m.State()))
		}
	}
}

// fireOne fires the first enabled rule, deciding first.
func (m *Machine) fireOne() bool {
	return m.decideOnCommitQuorum() ||
		m.skipToHigherRound() ||
		m.prevoteProposal() ||
		m.prevoteProposalWithPolka() ||
		m.lockOnPolka() ||
		m.precommitNilOnNilPolka() ||
		m.schedulePrevoteTimeoutOnAnyPolka() ||
		m.schedulePrecommitTimeoutOnAnyPrecommits()
}

// startRound is StartRound(round), L11-L21. Deviation: the proposer also
// schedules timeoutPropose, and getValue() is the asynchronous
// EffectRequestValue.
func (m *Machine) startRound(r uint32) {
	m.round = r          // L12
	m.step = StepPropose // L13
	m.prevoteTimeoutScheduled, m.polkaValueHandled, m.precommitTimeoutScheduled = false, false, false
	m.awaitingValue = false
	m.cur.votes.SetRound(r)
	if m.isValidator() && m.cur.proposers.Index(r) == m.cur.selfIndex { // L14
		if m.validValue != nil { // L15
			m.broadcastProposal(m.validValue, m.validRound) // L16, L19
		} else {
			m.awaitingValue = true // L18
			m.emit(EffectRequestValue{Height: m.height, Round: r})
		}
	}
	m.scheduleTimeout(TimeoutPropose) // L21
}

// prevoteProposal is L22:
//
//	upon ⟨PROPOSAL, h_p, round_p, v, −1⟩ from proposer(h_p, round_p)
//	while step_p = propose
//
// It prevotes v if v is valid and we are not locked on another value
// (L23-L24), nil otherwise (L26), and moves to prevote (L27).
func (m *Machine) prevoteProposal() bool {
	if m.step != StepPropose {
		return false
	}
	for _, pe := range m.cur.proposals[m.round] {
		if pe.proposal.POLRound != -1 {
			continue
		}
		if m.isValid(pe.block, pe.id) && (m.lockedRound == -1 || idOf(m.lockedValue) == pe.id) { // L23
			m.broadcastVote(ledger.Prevote, pe.id) // L24
		} else {
			m.broadcastVote(ledger.Prevote, nilID) // L26
		}
		m.step = StepPrevote // L27
		return true
	}
	return false
}

// prevoteProposalWithPolka is L28:
//
//	upon ⟨PROPOSAL, h_p, round_p, v, vr⟩ from proposer(h_p, round_p)
//	AND 2f+1 ⟨PREVOTE, h_p, vr, id(v)⟩
//	while step_p = propose ∧ (vr ≥ 0 ∧ vr < round_p)
//
// It prevotes v if v is valid and our lock is no newer than the polka or is
// on v (L29-L30), nil otherwise (L32), and moves to prevote (L33).
func (m *Machine) prevoteProposalWithPolka() bool {
	if m.step != StepPropose {
		return false
	}
	for _, pe := range m.cur.proposals[m.round] {
		vr := pe.proposal.POLRound
		if vr < 0 || uint32(vr) >= m.round || !m.cur.votes.PolkaFor(uint32(vr), pe.id) {
			continue
		}
		if m.isValid(pe.block, pe.id) && (m.lockedRound <= vr || idOf(m.lockedValue) == pe.id) { // L29
			m.broadcastVote(ledger.Prevote, pe.id) // L30
		} else {
			m.broadcastVote(ledger.Prevote, nilID) // L32
		}
		m.step = StepPrevote // L33
		return true
	}
	return false
}

// schedulePrevoteTimeoutOnAnyPolka is L34:
//
//	upon 2f+1 ⟨PREVOTE, h_p, round_p, ∗⟩ while step_p = prevote
//	for the first time
//
// It schedules OnTimeoutPrevote(h_p, round_p) (L35).
func (m *Machine) schedulePrevoteTimeoutOnAnyPolka() bool {
	if m.step != StepPrevote || m.prevoteTimeoutScheduled || !m.cur.votes.PolkaAny(m.round) {
		return false
	}
	m.prevoteTimeoutScheduled = true
	m.scheduleTimeout(TimeoutPrevote) // L35
	return true
}

// lockOnPolka is L36:
//
//	upon ⟨PROPOSAL, h_p, round_p, v, ∗⟩ from proposer(h_p, round_p)
//	AND 2f+1 ⟨PREVOTE, h_p, round_p, id(v)⟩
//	while valid(v) ∧ step_p ≥ prevote for the first time
//
// In prevote it locks on v, precommits v and moves to precommit
// (L37-L41); in either step it records v as the valid value (L42-L43).
func (m *Machine) lockOnPolka() bool {
	if (m.step != StepPrevote && m.step != StepPrecommit) || m.polkaValueHandled {
		return false
	}
	for _, pe := range m.cur.proposals[m.round] {
		if !m.cur.votes.PolkaFor(m.round, pe.id) || !m.isValid(pe.block, pe.id) {
			continue
		}
		m.polkaValueHandled = true
		if m.step == StepPrevote { // L37
			m.lockedValue = pe.block                 // L38
			m.lockedRound = int32(m.round)           // L39
			m.broadcastVote(ledger.Precommit, pe.id) // L40
			m.step = StepPrecommit                   // L41
		}
		m.validValue = pe.block       // L42
		m.validRound = int32(m.round) // L43
		return true
	}
	return false
}

// precommitNilOnNilPolka is L44:
//
//	upon 2f+1 ⟨PREVOTE, h_p, round_p, nil⟩ while step_p = prevote
//
// It precommits nil (L45) and moves to precommit (L46).
func (m *Machine) precommitNilOnNilPolka() bool {
	if m.step != StepPrevote || !m.cur.votes.PolkaFor(m.round, nilID) {
		return false
	}
	m.broadcastVote(ledger.Precommit, nilID) // L45
	m.step = StepPrecommit                   // L46
	return true
}

// schedulePrecommitTimeoutOnAnyPrecommits is L47:
//
//	upon 2f+1 ⟨PRECOMMIT, h_p, round_p, ∗⟩ for the first time
//
// It schedules OnTimeoutPrecommit(h_p, round_p) (L48).
func (m *Machine) schedulePrecommitTimeoutOnAnyPrecommits() bool {
	if m.precommitTimeoutScheduled || !m.cur.votes.PrecommitAny(m.round) {
		return false
	}
	m.precommitTimeoutScheduled = true
	m.scheduleTimeout(TimeoutPrecommit) // L48
	return true
}

// decideOnCommitQuorum is L49:
//
//	upon ⟨PROPOSAL, h_p, r, v, ∗⟩ from proposer(h_p, r)
//	AND 2f+1 ⟨PRECOMMIT, h_p, r, id(v)⟩ while decision_p[h_p] = nil
//
// If v is valid (L50) it decides v with the precommits as its commit
// (L51). The height increment and reset (L52-L54) wait for the driver's
// EventNewHeight, once the block is stored.
func (m *Machine) decideOnCommitQuorum() bool {
	if m.decision != nil {
		return false
	}
	for _, q := range m.cur.votes.CommitQuorums() {
		for _, pe := range m.cur.proposals[q.Round] {
			if pe.id != q.BlockID || !m.isValid(pe.block, pe.id) { // L50
				continue
			}
			m.decision = pe.block // L51
			m.step = StepDecided
			m.emit(EffectDecide{Height: m.height, Round: q.Round, Block: pe.block,
				Commit: m.cur.votes.Commit(q.Round, q.BlockID), Proposal: pe.proposal})
			return true
		}
	}
	return false
}

// skipToHigherRound is L55:
//
//	upon f+1 ⟨∗, h_p, round, ∗, ∗⟩ with round > round_p
//
// It starts that round (L56); with several candidates, the highest.
func (m *Machine) skipToHigherRound() bool {
	r, ok := m.cur.votes.HighestSkipRound()
	if !ok || r <= m.round {
		return false
	}
	m.startRound(r) // L56
	return true
}

// onTimeoutPropose is OnTimeoutPropose(height, round), L57:
//
//	if height = h_p ∧ round = round_p ∧ step_p = propose
//
// It prevotes nil (L59) and moves to prevote (L60). The height and round
// are checked by the caller.
func (m *Machine) onTimeoutPropose() bool {
	if m.step != StepPropose {
		return false
	}
	m.broadcastVote(ledger.Prevote, nilID) // L59
	m.step = StepPrevote                   // L60
	return true
}

// onTimeoutPrevote is OnTimeoutPrevote(height, round), L61:
//
//	if height = h_p ∧ round = round_p ∧ step_p = prevote
//
// It precommits nil (L63) and moves to precommit (L64).
func (m *Machine) onTimeoutPrevote() bool {
	if m.step != StepPrevote {
		return false
	}
	m.broadcastVote(ledger.Precommit, nilID) // L63
	m.step = StepPrecommit                   // L64
	return true
}

// onTimeoutPrecommit is OnTimeoutPrecommit(height, round), L65:
//
//	if height = h_p ∧ round = round_p
//
// It starts the next round (L67), unless rounds are exhausted
// (ledger.MaxRound, far beyond any network that can make progress).
func (m *Machine) onTimeoutPrecommit() bool {
	if m.round >= ledger.MaxRound {
		return false
	}
	m.startRound(m.round + 1) // L67
	return true
}
