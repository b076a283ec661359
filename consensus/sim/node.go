package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/consensus/wal"
	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/privval"
)

// node is one simulated validator process and its disk.
type node struct {
	s      *simulation
	idx    int
	name   string
	key    crypto.PrivKey
	addr   crypto.Address
	honest bool
	rng    *rand.Rand
	skew   time.Duration // the node's clock offset, for block times

	// The disk: survives crashes.
	log     *wal.MemLog
	pvStore *privval.MemStateStore
	store   *chainStore
	pool    *evidencePool

	// The process: lost in a crash.
	up        bool
	inc       uint64 // incarnation; timers of an older one are void
	m         *consensus.Machine
	signer    *privval.Signer
	marked    uint64       // the WAL holds the end marker of this height (or it is the stored height at boot)
	pending   []wal.Record // records of the next height, waiting for the end marker
	queue     []queued
	own       []*message // own signed proposals and votes of the current height
	replaying bool
	deferred  *consensus.EffectRequestValue
	armed     *crashPlan
	// snapshot is the machine's state at a crash that lost no WAL record,
	// which the replay must reproduce.
	snapshot *consensus.RoundState
}

// queued is an event waiting for its turn; logged says the WAL already
// holds it (it is being replayed).
type queued struct {
	ev     consensus.Event
	logged bool
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

// start creates the process: a signer on the stored guard state, a
// machine at the height after the stored one, and a replay of the WAL.
func (n *node) start() {
	s := n.s
	n.up = true
	n.inc++
	n.queue, n.own, n.pending, n.deferred, n.armed = nil, nil, nil, nil, nil
	signer, err := privval.New(n.key, n.pvStore)
	if err != nil {
		s.check.fail(InvRestart, n, "signer: %v", err)
		return
	}
	n.signer = signer
	h := n.store.height() + 1
	cfg := consensus.Config{ChainID: s.chainID, Validators: s.vals, Self: n.addr, ValidValue: n.store.validate}
	m, err := consensus.New(cfg, h)
	if err != nil {
		panic(fmt.Sprintf("sim: consensus.New: %v", err))
	}
	n.m = m
	n.marked = n.store.height()

	var recs []wal.Record
	if err := n.log.Replay(h, func(r wal.Record) error {
		if r.Kind == wal.KindMessage {
			recs = append(recs, r)
		}
		return nil
	}); err != nil {
		s.check.fail(InvRestart, n, "wal replay: %v", err)
		return
	}
	if len(recs) > 0 && s.tracing() {
		s.tracef(n, "replay %d WAL records of height %d", len(recs), h)
	}
	n.replaying = true
	for _, r := range recs {
		ev, err := consensus.DecodeEvent(r.Data)
		if err != nil {
			s.check.fail(InvRestart, n, "wal record: %v", err)
			return
		}
		n.feed(ev, true)
		if !n.up {
			return
		}
	}
	n.replaying = false
	if n.inc > 1 {
		s.stats.Checks[InvRestart]++ // the replay passed the signer's guard
	}
	if n.snapshot != nil {
		s.stats.Checks[InvRestart]++
		if got := n.m.State(); got != *n.snapshot {
			s.check.fail(InvRestart, n, "replay ended in %s, crashed in %s", got, *n.snapshot)
			return
		}
		n.snapshot = nil
	}
	if d := n.deferred; d != nil {
		n.deferred = nil
		n.input(consensus.EventProposeValue{Height: d.Height, Round: d.Round, Block: n.buildBlock(d.Height)})
	}
	if st := n.m.State(); st.Step == consensus.StepNewHeight {
		n.input(consensus.EventNewHeight{Height: st.Height})
	}
	s.schedule(s.now+time.Duration(n.rng.Int64N(int64(s.gossipInterval()))), &simEvent{kind: evGossip, node: n.idx, inc: n.inc})
}

// input feeds ev to the machine, then the node's own signed messages it
// caused, in order.
func (n *node) input(ev consensus.Event) { n.feed(ev, false) }

// feed is input for an event the WAL may already hold (logged).
func (n *node) feed(ev consensus.Event, logged bool) {
	n.queue = append(n.queue, queued{ev, logged})
	if len(n.queue) > 1 {
		return // already draining
	}
	for i := 0; i < len(n.queue) && n.up; i++ {
		n.step(n.queue[i].ev, n.queue[i].logged)
	}
	n.queue = n.queue[:0]
}

// step is one turn of the driver: step the machine, log the event (unless
// the WAL holds it already), carry out the effects. During a replay, the
// own messages the effects produce are logged like any other input: they
// may be missing from the WAL (a crash right after signing), and a later
// replay needs them where they are.
func (n *node) step(ev consensus.Event, logged bool) {
	s := n.s
	effects, err := n.m.Step(ev)
	s.stats.Steps++
	if err != nil {
		if s.tracing() && !errors.Is(err, consensus.ErrDuplicate) && !errors.Is(err, consensus.ErrStale) {
			s.tracef(n, "%s: refused: %v", ev, err)
		}
		return
	}
	if s.tracing() {
		s.tracef(n, "%s%s -> %s", replayMark(n.replaying), ev, effectList(effects))
	}
	n.noteOwn(ev)
	if !logged {
		data, err := consensus.EncodeEvent(ev)
		if err != nil {
			panic(fmt.Sprintf("sim: encode %s: %v", ev, err))
		}
		rec := wal.Record{Height: consensus.EventHeight(ev), Kind: wal.KindMessage, Data: data}
		if rec.Height > n.marked+1 {
			n.pending = append(n.pending, rec)
		} else if err := n.log.Append(rec, consensus.NeedsSync(effects)); err != nil {
			panic(fmt.Sprintf("sim: wal append: %v", err))
		}
	}
	strike := -1
	if n.armed != nil && !n.replaying && consensus.NeedsSync(effects) {
		strike = n.rng.IntN(len(effects) + 1)
	}
	for i, e := range effects {
		if i == strike {
			n.crashDuring(e)
			return
		}
		n.execute(e)
		if !n.up {
			return
		}
	}
	if strike == len(effects) {
		n.crashDuring(nil)
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

// noteOwn remembers this node's own signed messages of the current height,
// for re-sending them to peers that missed them.
func (n *node) noteOwn(ev consensus.Event) {
	switch e := ev.(type) {
	case consensus.EventNewHeight:
		n.own = nil
	case consensus.EventProposal:
		if e.Proposal.Proposer == n.addr {
			n.own = append(n.own, &message{kind: msgProposal, from: n.idx, proposal: e.Proposal, block: e.Block})
		}
	case consensus.EventVote:
		if e.Vote.Validator == n.addr {
			n.own = append(n.own, &message{kind: msgVote, from: n.idx, vote: e.Vote})
		}
	}
}

// execute carries out one effect.
func (n *node) execute(e consensus.Effect) {
	s := n.s
	switch e := e.(type) {
	case consensus.EffectBroadcastProposal:
		p := e.Proposal
		if err := n.signer.SignProposal(s.chainID, &p); err != nil {
			n.refused(err)
			return
		}
		if n.honest {
			s.check.signedBy(n, p.Height, p.Round, 0, p.BlockID)
		}
		s.broadcast(n.idx, &message{kind: msgProposal, from: n.idx, proposal: &p, block: e.Block})
		n.queue = append(n.queue, queued{ev: consensus.EventProposal{Proposal: &p, Block: e.Block}})
	case consensus.EffectBroadcastVote:
		v := e.Vote
		if err := n.signer.SignVote(s.chainID, &v); err != nil {
			n.refused(err)
			return
		}
		if n.honest {
			s.check.signedBy(n, v.Height, v.Round, uint8(v.Type), v.BlockID)
		}
		s.broadcast(n.idx, &message{kind: msgVote, from: n.idx, vote: &v})
		n.queue = append(n.queue, queued{ev: consensus.EventVote{Vote: &v}})
		if !n.honest && !s.opts.ByzantineThird {
			n.farRoundVotes(&v)
		}
	case consensus.EffectScheduleTimeout:
		d := consensus.TimeoutDuration(s.params, e.Kind, e.Round)
		s.schedule(s.now+d, &simEvent{kind: evTimer, node: n.idx, inc: n.inc,
			ev: consensus.EventTimeout{Height: e.Height, Round: e.Round, Kind: e.Kind}})
	case consensus.EffectRequestValue:
		if n.replaying {
			n.deferred = &e // the WAL may still hold the value we proposed
			return
		}
		n.queue = append(n.queue, queued{ev: consensus.EventProposeValue{Height: e.Height, Round: e.Round, Block: n.buildBlock(e.Height)}})
	case consensus.EffectDecide:
		n.commit(e)
	case consensus.EffectEvidence:
		s.check.detectedEvidence(n, e.Evidence)
		if n.pool.add(e.Evidence) {
			s.broadcast(n.idx, &message{kind: msgEvidence, from: n.idx, evidence: e.Evidence})
		}
	}
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

// refused handles the signer refusing a signature. During replay that is
// a message signed before the crash, whose signed form the WAL holds; at
// any other time the machine has forgotten what it did.
func (n *node) refused(err error) {
	if n.replaying && errors.Is(err, privval.ErrDoubleSign) {
		if n.s.tracing() {
			n.s.tracef(n, "(replay) already signed: %v", err)
		}
		return
	}
	if n.honest {
		n.s.check.fail(InvRestart, n, "signer refused the machine: %v", err)
	}
}

// commit stores a decision, writes the end marker, and starts the next
// height after the commit timeout.
func (n *node) commit(d consensus.EffectDecide) {
	s := n.s
	if n.store.height() < d.Height {
		s.check.decide(n, d)
		if s.stopped {
			return
		}
		s.stats.Checks[InvValidity]++
		if err := n.store.apply(d); err != nil {
			s.check.fail(InvValidity, n, "decided block %s at h=%d is invalid: %v", consensus.ShortID(d.Block.Hash()), d.Height, err)
			return
		}
		s.check.committedEvidence(n, d.Block)
		if n.honest && d.Height > s.stats.Heights {
			s.stats.Heights = d.Height
		}
	}
	if err := n.log.Append(wal.Record{Height: d.Height, Kind: wal.KindEndHeight}, true); err != nil {
		panic(fmt.Sprintf("sim: wal append: %v", err))
	}
	n.marked = d.Height
	for _, r := range n.pending {
		if err := n.log.Append(r, false); err != nil {
			panic(fmt.Sprintf("sim: wal append: %v", err))
		}
	}
	n.pending = nil
	if err := n.log.Prune(d.Height); err != nil {
		panic(fmt.Sprintf("sim: wal prune: %v", err))
	}
	s.schedule(s.now+timeoutCommit, &simEvent{kind: evNewHeight, node: n.idx, inc: n.inc,
		ev: consensus.EventNewHeight{Height: d.Height + 1}})
}

// receive handles a message from the network.
func (n *node) receive(m *message) {
	s := n.s
	switch m.kind {
	case msgProposal:
		n.input(consensus.EventProposal{Proposal: m.proposal, Block: m.block})
	case msgVote:
		n.input(consensus.EventVote{Vote: m.vote})
	case msgEvidence:
		if n.store.evidence[m.evidence.Key()] || n.pool.keys[m.evidence.Key()] {
			return
		}
		if err := m.evidence.Verify(s.chainID, s.vals); err != nil {
			s.check.fail(InvEvidence, n, "received invalid evidence: %v", err)
			return
		}
		n.pool.add(m.evidence)
	case msgStatus:
		n.answerStatus(m)
	case msgCatchup:
		// The commit's precommits, then the proposal: L49 decides.
		h := m.commit.Height
		if n.store.height() >= h || h > n.m.Height()+1 {
			return
		}
		for _, v := range m.commit.Votes(s.vals) {
			n.input(consensus.EventVote{Vote: &v})
		}
		n.input(consensus.EventProposal{Proposal: m.proposal, Block: m.block})
	}
}

// gossip tells every peer which height and round the node is at.
func (n *node) gossip() {
	st := n.m.State()
	h, r := n.store.height()+1, uint32(0)
	if st.Height == h {
		r = st.Round
	}
	n.s.broadcast(n.idx, &message{kind: msgStatus, from: n.idx, height: h, round: r})
}

// answerStatus helps the peer that sent m: with decided blocks if it is
// behind, with our own messages of its height and round otherwise, and
// with the evidence we hold.
func (n *node) answerStatus(m *message) {
	s := n.s
	if n.store.height() >= m.height {
		for h := m.height; h <= m.height+1; h++ {
			if c := n.store.get(h); c != nil {
				s.send(n.idx, m.from, &message{kind: msgCatchup, from: n.idx, proposal: c.proposal, block: c.block, commit: c.commit})
			}
		}
	} else if n.m.Height() == m.height {
		for _, o := range n.own {
			if o.vote != nil && o.vote.Round >= m.round {
				s.send(n.idx, m.from, o)
			}
			if p := o.proposal; p != nil && p.Round >= m.round {
				// The proposal, and the polka its POLRound claims: a peer
				// that missed it could never prevote the value (L28).
				if p.POLRound >= 0 {
					for _, v := range n.m.VotesFor(p.Height, uint32(p.POLRound), ledger.Prevote, p.BlockID) {
						s.send(n.idx, m.from, &message{kind: msgVote, from: n.idx, vote: &v})
					}
				}
				s.send(n.idx, m.from, o)
			}
		}
	}
	for _, ev := range n.pool.pending(n.store) {
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
	if between && keep == lost && n.m != nil {
		st := n.m.State()
		if st.Step != consensus.StepDecided {
			n.snapshot = &st
		}
	}
	n.log.Crash(keep)
	s.stats.Crashes++
	s.stats.LostRecords += uint64(lost - keep)
	s.tracef(n, "CRASH (%d unsynced WAL records lost, %d pending)", lost-keep, len(n.pending))
	n.up = false
	n.inc++
	n.m, n.signer, n.queue, n.own, n.pending, n.armed = nil, nil, nil, nil, nil, nil
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

// crashDuring crashes while carrying out e (nil: after the last effect).
// A broadcast reaches a random subset of peers first.
func (n *node) crashDuring(e consensus.Effect) {
	s := n.s
	down := n.armed.down
	s.stats.MidStepCrashes++
	var m *message
	switch e := e.(type) {
	case consensus.EffectBroadcastVote:
		v := e.Vote
		if n.signer.SignVote(s.chainID, &v) == nil {
			if n.honest {
				s.check.signedBy(n, v.Height, v.Round, uint8(v.Type), v.BlockID)
			}
			m = &message{kind: msgVote, from: n.idx, vote: &v}
		}
	case consensus.EffectBroadcastProposal:
		p := e.Proposal
		if n.signer.SignProposal(s.chainID, &p) == nil {
			if n.honest {
				s.check.signedBy(n, p.Height, p.Round, 0, p.BlockID)
			}
			m = &message{kind: msgProposal, from: n.idx, proposal: &p, block: e.Block}
		}
	}
	if m != nil {
		for b := range s.nodes {
			if n.rng.IntN(2) == 0 {
				s.send(n.idx, b, m)
			}
		}
		s.tracef(n, "crash in the middle of %s", e)
	} else if e != nil {
		s.tracef(n, "crash before %s", e)
	}
	n.crash(down, false)
}

// restart brings a crashed node back.
func (n *node) restart() {
	n.s.tracef(n, "RESTART at stored height %d", n.store.height())
	n.start()
}
