package sim

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/consensus/catchup"
	"github.com/ledgerd/ledgerd/consensus/driver"
	"github.com/ledgerd/ledgerd/consensus/evidence"
	"github.com/ledgerd/ledgerd/consensus/wal"
	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/privval"
)

// node is one simulated validator process and its disk. The process is
// the node's own driver core (consensus/driver), the code the ledgerd
// node runs, on in-memory seams: a MemLog for the WAL, a memory signing
// state, a chain store, simulated timers and the simulated network.
type node struct {
	s      *simulation
	idx    int
	name   string
	key    crypto.PrivKey
	addr   crypto.Address
	honest bool
	twin   bool       // runs the twins' key
	byz    *byzantine // the byzantine validator's behaviour; nil for the others
	disk   *diskNode  // the disk-fault node's faults; nil for the others
	oracle *oracle    // checks the machine of an honest node
	rng    *rand.Rand
	skew   time.Duration // the node's clock offset, for block times

	// The disk: survives crashes.
	log     *wal.MemLog
	pvStore *privval.MemStateStore
	store   *chainStore
	pool    *evidence.Pool

	// The process: lost in a crash.
	up     bool
	inc    uint64 // incarnation; timers of an older one are void
	core   *driver.Driver
	rounds *catchup.Cache[*ledger.Block] // what it answers catch-up requests from
	pacer  consensus.Pacer               // timeout growth carried across heights
	armed  *crashPlan
	strike int            // the effect the armed crash strikes in the current step
	cut    bool           // the armed crash strikes in the middle of the next send
	unfed  []*ledger.Vote // own votes sent and not yet held by the machine (the own-order oracle)
	// late are precommits for the last stored block, in its commit's
	// round, that came after the decision; lateAt is that block's height.
	late   []ledger.CommitSig
	lateAt uint64
	// snapshot is the machine's state at a crash that lost no WAL record,
	// which the replay must reproduce.
	snapshot *consensus.RoundState
}

// crashPlan arms a crash inside the next step that lets something leave
// the node: after the WAL write, before or while carrying out an effect.
type crashPlan struct {
	down time.Duration
}

// boot starts the node for the first time.
func (n *node) boot() {
	n.start()
}

// start creates the process: a signer on the stored guard state and a
// driver core, then begins.
func (n *node) start() {
	s := n.s
	n.up = true
	n.inc++
	n.armed, n.cut, n.unfed = nil, false, nil
	signer, err := privval.New(n.key, n.pvStore)
	if err != nil {
		s.check.fail(InvRestart, n, "signer: %v", err)
		return
	}
	n.core = driver.New(driver.Config{
		ChainID:    s.chainID,
		Validators: nodeSets{n},
		Self:       n.addr,
		WAL:        n.log,
		Signer:     signer,
		Chain:      simChain{n},
		Builder:    n,
		Network:    simNetwork{n},
		Timers:     simTimers{n},
		Evidence:   n.pool,
		Observer:   simObserver{n: n},
	})
	n.begin()
}

// begin has the driver core make the machine of the height after the
// stored one and replay the WAL into it, checks the replay, starts the
// height if the machine waits for it, and starts gossiping. Block sync
// calls it again on the same core, as the node does.
func (n *node) begin() {
	s := n.s
	n.rounds = catchup.New[*ledger.Block](0)
	n.pacer = consensus.Pacer{}
	if err := n.core.Start(); err != nil {
		if !s.stopped {
			s.check.fail(InvRestart, n, "start: %v", err)
		}
		return
	}
	if n.inc > 1 {
		s.stats.Checks[InvRestart]++ // the replay passed the signer's guard
	}
	if n.snapshot != nil {
		s.stats.Checks[InvRestart]++
		if got := n.core.State(); got != *n.snapshot {
			s.check.fail(InvRestart, n, "replay ended in %s, crashed in %s", got, *n.snapshot)
			return
		}
		n.snapshot = nil
	}
	n.checkStore()
	if st := n.core.State(); st.Step == consensus.StepNewHeight {
		n.input(consensus.EventNewHeight{Height: st.Height})
	}
	s.schedule(s.now+time.Duration(n.rng.Int64N(int64(s.gossipInterval()))), &simEvent{kind: evGossip, node: n.idx, inc: n.inc})
}

// input feeds ev to the driver; a driver that stops on an error (not a
// crash) is a violation.
func (n *node) input(ev consensus.Event) {
	n.checkFedBack(ev)
	n.core.Input(ev)
	if err := n.core.Err(); err != nil && !n.s.stopped {
		n.s.check.fail(InvRestart, n, "driver stopped: %v", err)
	}
}

func replayMark(r bool) string {
	if r {
		return "(replay) "
	}
	return ""
}

func effectList(effects []consensus.Effect) string {
	if len(effects) == 0 {
		return "-"
	}
	parts := make([]string, len(effects))
	for i, e := range effects {
		parts[i] = e.String()
	}
	return strings.Join(parts, "; ")
}

// simChain is the node's chain store as the driver sees it; storing a
// decision is where the checker sees it.
type simChain struct{ n *node }

func (c simChain) Height() uint64                 { return c.n.store.height() }
func (c simChain) Validate(b *ledger.Block) error { return c.n.store.validate(b) }

var errStopped = errors.New("simulation stopped")

func (c simChain) Store(d consensus.EffectDecide) error {
	n, s := c.n, c.n.s
	s.check.decide(n, d)
	if s.stopped {
		return errStopped
	}
	s.stats.Checks[InvValidity]++
	if err := n.store.apply(d); err != nil {
		s.check.fail(InvValidity, n, "decided block %s at h=%d is invalid: %v", consensus.ShortID(d.Block.Hash()), d.Height, err)
		return err
	}
	n.checkStoreSets()
	if s.staked {
		s.checkSupply(n, n.store)
	}
	n.pool.Committed(d.Block.Evidence)
	s.check.committedEvidence(n, d.Block)
	if n.honest && d.Height > s.stats.Heights {
		s.stats.Heights = d.Height
	}
	return nil
}

// simTimers schedules the driver's timeouts in simulated time.
type simTimers struct{ n *node }

func (t simTimers) ScheduleTimeout(ev consensus.EventTimeout) {
	n, s := t.n, t.n.s
	d := n.pacer.Duration(s.params, ev.Kind, ev.Round)
	s.schedule(s.now+d, &simEvent{kind: evTimer, node: n.idx, inc: n.inc, ev: ev})
}

func (t simTimers) ScheduleHeight(h uint64) {
	n, s := t.n, t.n.s
	s.schedule(s.now+timeoutCommit, &simEvent{kind: evNewHeight, node: n.idx, inc: n.inc,
		ev: consensus.EventNewHeight{Height: h}})
}

// simNetwork sends the driver's signed messages over the simulated
// network. An armed crash that strikes a send delivers it to a random
// subset of the peers first.
type simNetwork struct{ n *node }

func (w simNetwork) SendProposal(p *ledger.Proposal, b *ledger.Block) {
	n, s := w.n, w.n.s
	if n.honest {
		s.check.signedBy(n, p.Height, p.Round, 0, p.BlockID)
	}
	if n.byz != nil {
		n.byz.sendProposal(p, b)
		return
	}
	w.send(&message{kind: msgProposal, from: n.idx, proposal: p, block: b})
}

func (w simNetwork) SendVote(v *ledger.Vote) {
	n, s := w.n, w.n.s
	if n.honest {
		s.check.signedBy(n, v.Height, v.Round, uint8(v.Type), v.BlockID)
		n.unfed = append(n.unfed, v)
	}
	if n.byz != nil {
		n.byz.sendVote(v)
		return
	}
	if w.send(&message{kind: msgVote, from: n.idx, vote: v}) && n.twin && !s.opts.ByzantineThird {
		n.farRoundVotes(v)
	}
}

func (w simNetwork) SendEvidence(ev *ledger.Evidence) {
	if w.n.mute() {
		return
	}
	w.n.s.broadcast(w.n.idx, &message{kind: msgEvidence, from: w.n.idx, evidence: ev})
}

// mute reports whether the node sends nothing now (a silent byzantine
// validator).
func (n *node) mute() bool { return n.byz != nil && n.byz.silent() }

// send broadcasts m, or, when the armed crash strikes this send, delivers
// it to a random subset of the peers and crashes; it reports whether the
// node is still up.
func (w simNetwork) send(m *message) bool {
	n, s := w.n, w.n.s
	if !n.cut {
		s.broadcast(n.idx, m)
		return true
	}
	for b := range s.nodes {
		if n.rng.IntN(2) == 0 {
			s.send(n.idx, b, m)
		}
	}
	s.tracef(n, "crash in the middle of sending %s", msgString(m))
	n.crash(n.armed.down, false)
	return false
}

func msgString(m *message) string {
	if m.vote != nil {
		return consensus.EventVote{Vote: m.vote}.String()
	}
	if m.proposal != nil {
		return consensus.EventProposal{Proposal: m.proposal, Block: m.block}.String()
	}
	return "a message"
}

// simObserver traces the driver, keeps the catch-up source, reports
// refusals and detected evidence to the checker, and fires armed crashes.
type simObserver struct {
	driver.NopObserver
	n *node
}

func (o simObserver) NewMachine(h uint64) {
	o.n.rounds.Reset(h)
	o.n.oracle.reset()
}

func (o simObserver) Stepped(ev consensus.Event, effects []consensus.Effect, replaying bool) {
	n, s := o.n, o.n.s
	s.stats.Steps++
	if s.tracing() {
		s.tracef(n, "%s%s -> %s", replayMark(replaying), ev, effectList(effects))
	}
	switch e := ev.(type) {
	case consensus.EventProposal:
		n.rounds.AddProposal(e.Proposal, e.Block)
	case consensus.EventVote:
		n.rounds.AddVote(e.Vote)
		n.checkOwnOrder(e.Vote)
	case consensus.EventNewHeight:
		n.checkNodeSets(e.Height)
	}
	if n.honest {
		n.oracle.stepped(ev, effects)
		if s.scenario != nil {
			s.scenario.observe(n, effects)
		}
	}
	if n.byz != nil {
		n.byz.stepped(ev)
	}
}

func (o simObserver) Rejected(ev consensus.Event, from string, err error) {
	n, s := o.n, o.n.s
	s.stats.Steps++
	if s.tracing() {
		s.tracef(n, "%s: refused: %v", ev, err)
	}
}

func (o simObserver) SignerRefused(h uint64, r uint32, err error) {
	n := o.n
	if !n.honest {
		return
	}
	if d := n.disk; d != nil && (h < d.lostHeight || (h == d.lostHeight && r <= d.lostRound)) {
		// The disk lost what the machine signed here; the guard keeps it.
		n.s.stats.Refusals++
		n.s.tracef(n, "signer refuses h=%d r=%d, signed before the disk lost it", h, r)
		return
	}
	n.s.check.fail(InvRestart, n, "signer refused the machine at h=%d r=%d: %v", h, r, err)
}

func (o simObserver) Decided(d consensus.EffectDecide, _ bool) {
	o.n.pacer.Decided(d.Round)
	if vals, err := (nodeSets{o.n}).ValidatorsAt(d.Height); err == nil {
		o.n.rounds.Decided(d.Block.Hash(), d.Commit, vals)
	}
	o.n.oracle.decided(d.Height)
}

func (o simObserver) Evidence(ev *ledger.Evidence, _ bool) {
	o.n.oracle.evidenceReported(ev)
	o.n.s.check.detectedEvidence(o.n, ev)
}

// Executing fires an armed crash inside the first step that lets
// something leave the node: after the WAL write, before effect i (or after
// the last), or in the middle of a send.
func (o simObserver) Executing(i int, effects []consensus.Effect) {
	n := o.n
	if n.armed == nil || !consensus.NeedsSync(effects) {
		return
	}
	if i == 0 {
		n.strike = n.rng.IntN(len(effects) + 1)
	}
	if i != n.strike {
		return
	}
	n.s.stats.MidStepCrashes++
	if i < len(effects) {
		switch effects[i].(type) {
		case consensus.EffectBroadcastVote, consensus.EffectBroadcastProposal:
			n.cut = true // the send crashes the node
			return
		}
		n.s.tracef(n, "crash before %s", effects[i])
	}
	n.crash(n.armed.down, false)
}

// farRoundVotes is what an attacker holding the twins' key adds to their
// equivocation: beside a quarter of the votes a twin casts, two conflicting
// votes signed straight with the key (no guard) at one of the three highest
// rounds (ledger.MaxRound and just below) of the vote's height or the next.
// Honest nodes must keep them within their bounds, report the
// equivocation, carry the evidence into a block once its height has
// passed, and stay live.
func (n *node) farRoundVotes(v *ledger.Vote) {
	if n.rng.IntN(4) != 0 {
		return
	}
	s := n.s
	h := v.Height + uint64(n.rng.IntN(2))
	r := ledger.MaxRound - uint32(n.rng.IntN(3))
	t := ledger.VoteType(1 + n.rng.IntN(2))
	for range 2 {
		var id crypto.Hash
		binary.BigEndian.PutUint64(id[:], n.rng.Uint64())
		binary.BigEndian.PutUint64(id[8:], n.rng.Uint64())
		jv := &ledger.Vote{Type: t, Height: h, Round: r, BlockID: id}
		jv.Sign(s.chainID, n.key)
		s.stats.FarRoundVotes++
		s.broadcast(n.idx, &message{kind: msgVote, from: n.idx, vote: jv})
	}
	if s.tracing() {
		s.tracef(n, "attacker signs two %ss h=%d r=%d with the twins' key", t, h, r)
	}
}

// receive handles a message from the network.
func (n *node) receive(m *message) {
	s := n.s
	switch m.kind {
	case msgProposal:
		n.input(consensus.EventProposal{Proposal: m.proposal, Block: m.block})
	case msgVote:
		n.noteLate(m.vote)
		n.input(consensus.EventVote{Vote: m.vote})
	case msgEvidence:
		if n.store.Evidence[m.evidence.Key()] || n.pool.Has(m.evidence.Key()) {
			return
		}
		// At the set of the evidence's height.
		if err := m.evidence.Verify(s.chainID, n.setOf(m.evidence.VoteA.Height)); err != nil {
			s.check.fail(InvEvidence, n, "received invalid evidence: %v", err)
			return
		}
		n.pool.Add(m.evidence)
	case msgStatus:
		n.answerStatus(m)
	case msgCatchup:
		h := m.commit.Height
		if d := n.disk; d != nil && h <= d.lostUntil && h == n.store.height()+1 {
			n.blockSync(m)
			return
		}
		// The commit's precommits, then the proposal: L49 decides.
		if n.store.height() >= h || h > n.core.Height()+1 {
			return
		}
		vals, err := nodeSets{n}.ValidatorsAt(h)
		if s.planted(plantCatchupSet) {
			vals = n.store.state.Validators // the node's current set, whatever h is
		}
		if err != nil {
			return
		}
		for _, v := range m.commit.Votes(vals) {
			n.input(consensus.EventVote{Vote: &v})
		}
		n.input(consensus.EventProposal{Proposal: m.proposal, Block: m.block})
		if n.honest && n.up && n.store.height() < h && n.core.Height() == h && !n.oracle.holdsCommit(m.commit) {
			// The machine refused precommits of the commit (a vote
			// beyond what the vote keeper keeps of a validator for one
			// round, or beyond its future-round window): L49 cannot
			// decide, and the node's block sync stores it.
			n.blockSync(m)
		}
	}
}

// gossip tells every peer which height and round the node is at.
func (n *node) gossip() {
	if n.mute() {
		return
	}
	st := n.core.State()
	h, r := n.store.height()+1, uint32(0)
	if st.Height == h {
		r = st.Round
	}
	n.s.broadcast(n.idx, &message{kind: msgStatus, from: n.idx, height: h, round: r})
}

// answerStatus helps the peer that sent m, as a node answers a catch-up
// request: with decided blocks if it is behind, otherwise with what the
// catch-up source holds of its height from its round on (the latest
// proposal and every vote accepted); and with the evidence held.
func (n *node) answerStatus(m *message) {
	s := n.s
	if n.mute() {
		return
	}
	if n.store.height() >= m.height {
		for h := m.height; h <= m.height+1; h++ {
			if c := n.store.get(h); c != nil {
				if n.byz != nil && !n.byz.allowCommit(c.commit) {
					continue // it carries its machine's vote, which it did not send
				}
				s.send(n.idx, m.from, &message{kind: msgCatchup, from: n.idx, proposal: c.proposal, block: c.block, commit: c.commit})
			}
		}
	} else {
		got := n.rounds.Get(m.height, m.round)
		for _, v := range got.Votes {
			if n.byz != nil && v.Validator == n.addr && !n.byz.mayRelay(v) {
				continue // its machine's vote, which it did not send
			}
			s.send(n.idx, m.from, &message{kind: msgVote, from: n.idx, vote: v})
		}
		if got.Proposal != nil {
			s.send(n.idx, m.from, &message{kind: msgProposal, from: n.idx, proposal: got.Proposal, block: got.Block})
		}
	}
	for _, ev := range n.pool.All(n.store) {
		s.send(n.idx, m.from, &message{kind: msgEvidence, from: n.idx, evidence: ev})
	}
}

// crash kills the process now; it restarts after down (at the latest at
// the heal). between says the crash falls between two steps, so that a
// replay that loses no WAL record must reproduce the machine's state.
func (n *node) crash(down time.Duration, between bool) {
	s := n.s
	if !n.up {
		return
	}
	lost := n.log.Unsynced()
	keep := n.rng.IntN(lost + 1)
	if between && keep == lost && n.core != nil {
		st := n.core.State()
		if st.Step != consensus.StepDecided {
			n.snapshot = &st
		}
	}
	n.log.Crash(keep)
	s.stats.Crashes++
	s.stats.LostRecords += uint64(lost - keep)
	s.tracef(n, "CRASH (%d unsynced WAL records lost)", lost-keep)
	n.up = false
	n.inc++
	if n.core != nil {
		n.core.Halt()
	}
	n.armed, n.cut, n.rounds = nil, false, nil
	n.late, n.lateAt = nil, 0
	n.oracle.reset()
	n.store.executed = nil
	if !s.healed {
		at := s.now + down
		if at > s.opts.FaultPhase {
			return // the heal restarts it
		}
		s.after(down, func() {
			if !n.up && !s.healed {
				n.restart()
			}
		})
	}
}

// armCrash makes the node crash inside its next step that sends something.
func (n *node) armCrash(down time.Duration) {
	n.armed = &crashPlan{down: down}
	n.s.tracef(n, "crash armed for the next step that sends")
}

// restart brings a crashed node back.
func (n *node) restart() {
	n.s.tracef(n, "RESTART at stored height %d", n.store.height())
	n.start()
}

// nodeSets reads the validator sets from the node's current store, which a
// crash or a lost disk replaces.
type nodeSets struct{ n *node }

// ValidatorsAt is the set of height h as the node's store knows it.
func (s nodeSets) ValidatorsAt(h uint64) (*ledger.ValidatorSet, error) {
	if vs, ok := s.n.store.state.ValidatorsAt(h); ok {
		return vs, nil
	}
	return s.n.store.ValidatorsAt(h)
}

func (s nodeSets) PrioritiesAt(h uint64) (*ledger.ProposerPriorities, error) {
	if p, ok := s.n.store.state.PrioritiesAt(h); ok {
		return p, nil
	}
	return nil, fmt.Errorf("proposer priorities of height %d: the store at height %d has those of the next two heights", h, s.n.store.state.Height)
}

// noteLate keeps a precommit for the last stored block, in its commit's
// round, that the commit lacks: BuildBlock adds it to the last commit of
// the node's next block, as a CometBFT proposer adds the precommits it
// gathered during the commit timeout. The signing record the staking
// module keeps from last commits then says who is up, not who was among
// the fastest two thirds (docs/decisions.md, "The simulator's last
// commits"). Only churn runs judge downtime within a run; the others keep
// the commit the machine decided with, as the node does.
func (n *node) noteLate(v *ledger.Vote) {
	if v.Type != ledger.Precommit || n.s.churn == nil {
		return
	}
	h := n.store.height()
	cb := n.store.get(h)
	if cb == nil || v.Height != h || v.Round != cb.commit.Round || v.BlockID != cb.commit.BlockID {
		return
	}
	if n.lateAt != h {
		n.late, n.lateAt = nil, h
	}
	i, ok := n.store.state.LastValidators.ByAddress(v.Validator)
	if !ok {
		return
	}
	// Each vote's signature is verified once per run, whichever node
	// gets it first.
	if k := *v; !n.s.sigChecked[k] {
		if _, err := v.Verify(n.s.chainID, n.store.state.LastValidators); err != nil {
			return
		}
		n.s.sigChecked[k] = true
	}
	for _, sig := range cb.commit.Sigs {
		if sig.ValidatorIndex == uint32(i) {
			return
		}
	}
	for _, sig := range n.late {
		if sig.ValidatorIndex == uint32(i) {
			return
		}
	}
	n.late = append(n.late, ledger.CommitSig{ValidatorIndex: uint32(i), Sig: v.Sig})
}

// lastCommit returns the commit of height h for a block the node builds:
// the stored one with the late precommits it gathered.
func (n *node) lastCommit(h uint64) *ledger.Commit {
	cb := n.store.get(h)
	if cb == nil {
		return nil
	}
	if n.lateAt != h || len(n.late) == 0 {
		return cb.commit
	}
	c := *cb.commit
	c.Sigs = append(slices.Clone(c.Sigs), n.late...)
	slices.SortFunc(c.Sigs, func(a, b ledger.CommitSig) int { return cmp.Compare(a.ValidatorIndex, b.ValidatorIndex) })
	return &c
}
