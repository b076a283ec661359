package consensus_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/consensus/driver"
	"github.com/ledgerd/ledgerd/consensus/evidence"
	"github.com/ledgerd/ledgerd/consensus/wal"
	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/staking"
	"github.com/ledgerd/ledgerd/privval"
)

// The world of a script: validators, each a driver.Driver on in-memory
// seams, and a network that holds what they send until the script
// delivers it. A crashed validator keeps its disk (WAL, signing state,
// chain store, evidence pool) and loses its process (driver, timers).
// Messages to a crashed validator stay pending, as gossip would offer them
// again once it is back; a script drops them to model their loss.

const scriptChain = "ledgerd-script"

var scriptGenesis = ledger.TimestampOf(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))

type script struct {
	t       testing.TB
	chainID string
	vals    *ledger.ValidatorSet
	nodes   []*node // by validator-set index
	byName  map[string]*node

	inflight []*message

	names map[crypto.Hash]string // block names
	ids   map[string]crypto.Hash

	out []*outLine
}

// setup makes a fresh network with the given powers, in validator-set
// order: v0 is the first validator of the set.
func (s *script) setup(powers []uint64) {
	keys := make([]crypto.PrivKey, len(powers))
	for i := range keys {
		seed := crypto.Sum([]byte(fmt.Sprintf("script/validator/%d", i)))
		k, err := crypto.PrivKeyFromSeed(seed[:])
		if err != nil {
			s.t.Fatal(err)
		}
		keys[i] = k
	}
	slices.SortFunc(keys, func(a, b crypto.PrivKey) int {
		x, y := a.PubKey().Address(), b.PubKey().Address()
		return bytes.Compare(x[:], y[:])
	})
	var vs []ledger.Validator
	for i, k := range keys {
		vs = append(vs, ledger.Validator{PubKey: k.PubKey(), Power: powers[i], Name: fmt.Sprintf("v%d", i)})
	}
	set, err := ledger.NewValidatorSet(vs)
	if err != nil {
		s.t.Fatal(err)
	}
	s.chainID, s.vals = scriptChain, set
	s.nodes, s.byName, s.inflight = nil, map[string]*node{}, nil
	s.names, s.ids = map[crypto.Hash]string{}, map[string]crypto.Hash{}
	for i, k := range keys {
		if j, _ := set.ByAddress(k.PubKey().Address()); j != i {
			s.t.Fatalf("validator %d sits at index %d of the set", i, j)
		}
		n := &node{
			s: s, name: fmt.Sprintf("v%d", i), idx: i, key: k, addr: k.PubKey().Address(),
			log: wal.NewMem(), pv: privval.NewMemStateStore(), pool: evidence.NewPool(),
		}
		n.chain = newMemChain(s)
		s.nodes = append(s.nodes, n)
		s.byName[n.name] = n
	}
}

// Output: one line per machine step, with the effects the seams saw.

type outLine struct {
	n       *node // nil for a line of the script itself
	text    string
	effects []string
	open    bool // a step whose effects are still running
	replay  bool
}

func (s *script) printf(format string, v ...any) {
	s.out = append(s.out, &outLine{text: fmt.Sprintf(format, v...)})
}

// line prints a line about n that is not a step.
func (s *script) line(n *node, format string, v ...any) {
	s.out = append(s.out, &outLine{n: n, text: fmt.Sprintf(format, v...)})
}

// step opens the line of a machine step at n.
func (s *script) step(n *node, text string, replay bool) {
	s.out = append(s.out, &outLine{n: n, text: text, open: true, replay: replay})
}

// effect adds what n did to its open step, or prints it alone when no
// step of n is open (a held message released, a value built after the
// replay).
func (s *script) effect(n *node, format string, v ...any) {
	text := fmt.Sprintf(format, v...)
	if k := len(s.out); k > 0 {
		l := s.out[k-1]
		if l.n == n && l.open && !(l.replay && !n.core.Replaying()) {
			l.effects = append(l.effects, text)
			return
		}
	}
	s.line(n, "%s", text)
}

func (s *script) output() string {
	var b strings.Builder
	for _, l := range s.out {
		if l.n != nil {
			b.WriteString(l.n.name + ": ")
		}
		if l.replay {
			b.WriteString("replay ")
		}
		b.WriteString(l.text)
		if len(l.effects) > 0 {
			b.WriteString(" -> " + strings.Join(l.effects, "; "))
		}
		b.WriteByte('\n')
	}
	s.out = nil
	return b.String()
}

// reportStopped prints the error of every running driver that stopped on
// one since the last command.
func (s *script) reportStopped() {
	for _, n := range s.nodes {
		if n.up && n.core != nil && n.core.Err() != nil && !n.reportedErr {
			n.reportedErr = true
			s.line(n, "DRIVER STOPPED: %v", n.core.Err())
		}
	}
}

// Names.

func (s *script) nameBlock(b *ledger.Block, h uint64, r uint32) string {
	id := b.Hash()
	if name, ok := s.names[id]; ok {
		return name
	}
	base := fmt.Sprintf("B%d.%d", h, r)
	name := base
	for i := 0; ; i++ {
		if _, taken := s.ids[name]; !taken {
			break
		}
		name = fmt.Sprintf("%s%c", base, 'a'+i)
	}
	s.names[id], s.ids[name] = name, id
	return name
}

func (s *script) blockName(id crypto.Hash) string {
	if id.IsZero() {
		return "nil"
	}
	if name, ok := s.names[id]; ok {
		return name
	}
	return consensus.ShortID(id)
}

func (s *script) blockID(name string) (crypto.Hash, bool) {
	if name == "nil" {
		return crypto.Hash{}, true
	}
	id, ok := s.ids[name]
	return id, ok
}

func (s *script) validatorName(a crypto.Address) string {
	if i, ok := s.vals.ByAddress(a); ok {
		return s.nodes[i].name
	}
	return consensus.ShortAddr(a)
}

func (s *script) voteString(v *ledger.Vote) string {
	return fmt.Sprintf("%s %d/%d %s", v.Type, v.Height, v.Round, s.blockName(v.BlockID))
}

func (s *script) proposalString(p *ledger.Proposal) string {
	return fmt.Sprintf("proposal %d/%d %s pol=%d", p.Height, p.Round, s.blockName(p.BlockID), p.POLRound)
}

func (s *script) evidenceString(ev *ledger.Evidence) string {
	a, b := &ev.VoteA, &ev.VoteB
	pair := []string{s.blockName(a.BlockID), s.blockName(b.BlockID)}
	slices.Sort(pair)
	return fmt.Sprintf("evidence %s %d/%d by %s: %s vs %s", a.Type, a.Height, a.Round, s.validatorName(a.Validator), pair[0], pair[1])
}

// eventString renders an event as n sees it: its own messages are "own".
func (s *script) eventString(n *node, ev consensus.Event) string {
	switch e := ev.(type) {
	case consensus.EventNewHeight:
		return fmt.Sprintf("new-height %d", e.Height)
	case consensus.EventProposal:
		if e.Proposal.Proposer == n.addr {
			return "own " + s.proposalString(e.Proposal)
		}
		return s.proposalString(e.Proposal) + " by " + s.validatorName(e.Proposal.Proposer)
	case consensus.EventVote:
		if e.Vote.Validator == n.addr {
			return "own " + s.voteString(e.Vote)
		}
		return s.voteString(e.Vote) + " by " + s.validatorName(e.Vote.Validator)
	case consensus.EventTimeout:
		return fmt.Sprintf("timeout %s %d/%d", e.Kind, e.Height, e.Round)
	case consensus.EventProposeValue:
		return fmt.Sprintf("value %d/%d %s", e.Height, e.Round, s.blockName(e.Block.Hash()))
	}
	return ev.String()
}

func (s *script) effectString(e consensus.Effect) string {
	switch e := e.(type) {
	case consensus.EffectBroadcastProposal:
		return s.proposalString(&e.Proposal)
	case consensus.EffectBroadcastVote:
		return s.voteString(&e.Vote)
	case consensus.EffectDecide:
		return fmt.Sprintf("decide %s", s.blockName(e.Block.Hash()))
	case consensus.EffectRequestValue:
		return fmt.Sprintf("build %d/%d", e.Height, e.Round)
	}
	return e.String()
}

// effectKind names an effect for arm-crash before=.
func effectKind(e consensus.Effect) string {
	switch e := e.(type) {
	case consensus.EffectBroadcastProposal:
		return "proposal"
	case consensus.EffectBroadcastVote:
		return e.Vote.Type.String()
	case consensus.EffectDecide:
		return "decide"
	case consensus.EffectRequestValue:
		return "build"
	}
	return ""
}

// The network.

// message is one message in flight to one recipient.
type message struct {
	from, to *node
	proposal *ledger.Proposal
	block    *ledger.Block
	vote     *ledger.Vote
	evidence *ledger.Evidence
}

func (m *message) describe() (kind string, h uint64, r uint32, id crypto.Hash) {
	switch {
	case m.proposal != nil:
		return "proposal", m.proposal.Height, m.proposal.Round, m.proposal.BlockID
	case m.vote != nil:
		return m.vote.Type.String(), m.vote.Height, m.vote.Round, m.vote.BlockID
	default:
		return "evidence", m.evidence.VoteA.Height, m.evidence.VoteA.Round, crypto.Hash{}
	}
}

func (s *script) msgString(m *message) string {
	switch {
	case m.proposal != nil:
		return s.proposalString(m.proposal) + " by " + m.from.name
	case m.vote != nil:
		return s.voteString(m.vote) + " by " + s.validatorName(m.vote.Validator)
	default:
		return s.evidenceString(m.evidence) + " from " + m.from.name
	}
}

// broadcast puts m in flight to every validator but its sender.
func (s *script) broadcast(from *node, m *message) {
	for _, n := range s.nodes {
		if n != from {
			c := *m
			c.from, c.to = from, n
			s.inflight = append(s.inflight, &c)
		}
	}
}

// node is one validator: its disk, and its process when up.
type node struct {
	s    *script
	name string
	idx  int
	key  crypto.PrivKey
	addr crypto.Address

	// The disk: survives crashes.
	log   *wal.MemLog
	pv    *privval.MemStateStore
	chain *memChain
	pool  *evidence.Pool

	// The process.
	started, up bool
	core        *driver.Driver
	timeouts    []consensus.EventTimeout // scheduled, not fired
	nextHeight  uint64                   // scheduled start of this height, or 0
	gateClosed  bool
	failIn      int // the failIn-th WAL append from now fails; 0: none
	armed       *crashPoint
	steps       int // steps and refusals, to spot inputs the machine ignored
	heldBefore  int
	reportedErr bool
}

// crashPoint is where an armed crash strikes inside a step.
type crashPoint struct {
	beforeEffect string // before the driver carries out this effect
	beforeSend   string // after signing this message, before the network has it
	afterStore   bool   // after the decided block was stored
	keep         int    // unsynced WAL records kept
}

// boot starts the process: a signer on the stored signing state and a
// driver that replays the WAL; then, like the node, it starts the height
// the replay left waiting.
func (n *node) boot() {
	s := n.s
	n.started, n.up = true, true
	n.timeouts, n.nextHeight, n.reportedErr, n.failIn = nil, 0, false, 0
	signer, err := privval.New(n.key, n.pv)
	if err != nil {
		s.line(n, "signer: %v", err)
		return
	}
	n.core = driver.New(driver.Config{
		ChainID:    s.chainID,
		Validators: consensus.Static(s.vals),
		Self:       n.addr,
		WAL:        nodeWAL{n},
		Signer:     nodeSigner{n, signer},
		Chain:      nodeChain{n},
		Builder:    n,
		Network:    nodeNet{n},
		Timers:     nodeTimers{n},
		Evidence:   n.pool,
		Gate:       nodeGate{n},
		Observer:   nodeObserver{n: n},
	})
	s.line(n, "start: stored height %d, %d WAL records", n.chain.Height(), n.log.Len())
	if err := n.core.Start(); err != nil {
		n.reportedErr = true
		s.line(n, "START FAILED: %v", err)
		return
	}
	if st := n.core.State(); st.Step == consensus.StepNewHeight && n.up {
		n.input(consensus.EventNewHeight{Height: st.Height}, "")
	}
}

// input feeds ev to the driver as the node's event loop does, and
// releases what the gate held if it allows it now.
func (n *node) input(ev consensus.Event, from string) {
	s := n.s
	if n.core.Stopped() {
		s.line(n, "%s not stepped: the driver stopped", s.eventString(n, ev))
		return
	}
	before := n.steps
	if from == "" {
		n.core.Input(ev)
	} else {
		n.core.InputFrom(ev, from)
	}
	if n.steps == before && !n.core.Stopped() {
		s.line(n, "%s ignored (stale or duplicate)", s.eventString(n, ev))
	}
	n.core.ReleaseHeld()
	s.reportStopped()
}

// running reports whether the node takes messages: its process is up and
// its driver has not stopped on an error.
func (n *node) running() bool { return n.up && !n.core.Stopped() }

func (n *node) receive(m *message) {
	s := n.s
	switch {
	case m.proposal != nil:
		n.input(consensus.EventProposal{Proposal: m.proposal, Block: m.block}, m.from.name)
	case m.vote != nil:
		n.input(consensus.EventVote{Vote: m.vote}, m.from.name)
	default:
		if err := m.evidence.Verify(s.chainID, s.vals); err != nil {
			s.line(n, "%s REJECTED: %v", s.msgString(m), err)
			return
		}
		if n.pool.Add(m.evidence) {
			s.line(n, "%s added to the pool", s.msgString(m))
		} else {
			s.line(n, "%s already known", s.msgString(m))
		}
	}
}

// fire delivers a scheduled timeout; false if none was scheduled.
func (n *node) fire(ev consensus.EventTimeout) bool {
	i := slices.Index(n.timeouts, ev)
	if !n.up || i < 0 {
		return false
	}
	n.timeouts = slices.Delete(n.timeouts, i, i+1)
	n.input(ev, "")
	return true
}

// crash kills the process: the WAL keeps its synced records and keep of
// the others, everything in memory is gone.
func (n *node) crash(where string, keep int) {
	if !n.up {
		return
	}
	lost := n.log.Unsynced()
	kept := max(0, min(keep, lost))
	n.log.Crash(keep)
	n.up = false
	if n.core != nil {
		n.core.Halt()
	}
	n.timeouts, n.nextHeight, n.armed = nil, 0, nil
	text := "CRASH"
	if where != "" {
		text += " " + where
	}
	n.s.line(n, "%s: %d unsynced WAL records, %d lost", text, lost, lost-kept)
}

// BuildBlock is the proposer's value: an empty block on the stored chain,
// with the last commit and the evidence the pool holds. Its time is a
// function of the height and round, so that every build is reproducible.
func (n *node) BuildBlock(h uint64, r uint32) (*ledger.Block, error) {
	c := n.chain
	st := c.state()
	b := &ledger.Block{Header: ledger.Header{
		ChainID: st.ChainID, Height: h,
		Time:          scriptGenesis + ledger.Timestamp(time.Duration(h)*time.Second+time.Duration(r)*time.Millisecond),
		LastBlockHash: st.LastBlockHash, AppHash: st.AppHash, ValidatorsHash: st.Validators.Hash(), NextValidatorsHash: st.NextValidators.Hash(), Proposer: n.addr,
	}}
	if h > 1 && h-2 < uint64(len(c.blocks)) {
		b.LastCommit = c.blocks[h-2].commit
	}
	b.Evidence = n.pool.Pending(int(st.Params.MaxEvidence), h, c)
	b.FillHeader()
	text := "build " + n.s.nameBlock(b, h, r)
	if k := len(b.Evidence); k > 0 {
		text += fmt.Sprintf(" with %d evidence", k)
	}
	n.s.effect(n, "%s", text)
	return b, nil
}

// The seams.

var errCrashed = errors.New("the process crashed")

// nodeWAL is the node's MemLog, which a crashed process can no longer
// write, and whose next append fails after fail-wal.
type nodeWAL struct{ n *node }

func (w nodeWAL) Append(r wal.Record, sync bool) error {
	if !w.n.up {
		return errCrashed
	}
	if w.n.failIn > 0 {
		if w.n.failIn--; w.n.failIn == 0 {
			return errors.New("scripted disk failure")
		}
	}
	return w.n.log.Append(r, sync)
}

func (w nodeWAL) Replay(h uint64, fn func(wal.Record) error) error { return w.n.log.Replay(h, fn) }
func (w nodeWAL) MaxHeight() (uint64, error)                       { return w.n.log.MaxHeight() }

func (w nodeWAL) Prune(below uint64) error {
	if !w.n.up {
		return errCrashed
	}
	return w.n.log.Prune(below)
}

// nodeSigner is privval, reporting what it refuses during a replay (the
// driver expects those refusals and says nothing).
type nodeSigner struct {
	n *node
	s *privval.Signer
}

func (g nodeSigner) SignVote(chainID string, v *ledger.Vote) error {
	err := g.s.SignVote(chainID, v)
	if err != nil && g.n.core.Replaying() {
		g.n.s.effect(g.n, "skip %s (signed before)", g.n.s.voteString(v))
	}
	return err
}

func (g nodeSigner) SignProposal(chainID string, p *ledger.Proposal) error {
	err := g.s.SignProposal(chainID, p)
	if err != nil && g.n.core.Replaying() {
		g.n.s.effect(g.n, "skip %s (signed before)", g.n.s.proposalString(p))
	}
	return err
}

type nodeChain struct{ n *node }

func (c nodeChain) Height() uint64                 { return c.n.chain.Height() }
func (c nodeChain) Validate(b *ledger.Block) error { return c.n.chain.validate(b) }

func (c nodeChain) Store(d consensus.EffectDecide) error {
	n := c.n
	if err := n.chain.store(d); err != nil {
		return err
	}
	n.pool.Committed(d.Block.Evidence)
	if n.armed != nil && n.armed.afterStore {
		n.crash(fmt.Sprintf("after storing block %d", d.Height), n.armed.keep)
	}
	return nil
}

type nodeNet struct{ n *node }

// sending reports whether m may leave: the process is up and no armed
// crash strikes between signing and sending it.
func (w nodeNet) sending(kind, text string) bool {
	n := w.n
	if !n.up {
		return false
	}
	if n.armed != nil && n.armed.beforeSend == kind {
		n.crash("after signing "+text+", before sending it", n.armed.keep)
		return false
	}
	n.s.effect(n, "send %s", text)
	return true
}

func (w nodeNet) SendProposal(p *ledger.Proposal, b *ledger.Block) {
	if w.sending("proposal", w.n.s.proposalString(p)) {
		w.n.s.broadcast(w.n, &message{proposal: p, block: b})
	}
}

func (w nodeNet) SendVote(v *ledger.Vote) {
	if w.sending(v.Type.String(), w.n.s.voteString(v)) {
		w.n.s.broadcast(w.n, &message{vote: v})
	}
}

func (w nodeNet) SendEvidence(ev *ledger.Evidence) {
	if w.n.up {
		w.n.s.broadcast(w.n, &message{evidence: ev})
	}
}

type nodeTimers struct{ n *node }

func (t nodeTimers) ScheduleTimeout(ev consensus.EventTimeout) {
	n := t.n
	if !slices.Contains(n.timeouts, ev) {
		n.timeouts = append(n.timeouts, ev)
	}
	n.s.effect(n, "timer %s %d/%d", ev.Kind, ev.Height, ev.Round)
}

func (t nodeTimers) ScheduleHeight(h uint64) {
	t.n.nextHeight = h
	t.n.s.effect(t.n, "timer new-height %d", h)
}

type nodeGate struct{ n *node }

func (g nodeGate) MaySign(uint64) bool { return !g.n.gateClosed }

type nodeObserver struct {
	driver.NopObserver
	n *node
}

func (o nodeObserver) NewMachine(h uint64) { o.n.s.line(o.n, "machine for height %d", h) }

func (o nodeObserver) Stepped(ev consensus.Event, _ []consensus.Effect, replaying bool) {
	o.n.steps++
	o.n.s.step(o.n, o.n.s.eventString(o.n, ev), replaying)
}

func (o nodeObserver) Rejected(ev consensus.Event, _ string, err error) {
	o.n.steps++
	o.n.s.line(o.n, "%s REJECTED: %v", o.n.s.eventString(o.n, ev), err)
}

func (o nodeObserver) SignerRefused(h uint64, r uint32, err error) {
	o.n.s.effect(o.n, "SIGNER REFUSED at %d/%d: %v", h, r, err)
}

func (o nodeObserver) Decided(d consensus.EffectDecide, stored bool) {
	s := o.n.s
	var signers []string
	for _, sig := range d.Commit.Sigs {
		signers = append(signers, s.nodes[sig.ValidatorIndex].name)
	}
	text := fmt.Sprintf("decide %s in round %d, commit %s", s.blockName(d.Block.Hash()), d.Round, strings.Join(signers, ","))
	if k := len(d.Block.Evidence); k > 0 {
		text += fmt.Sprintf(", with %d evidence", k)
	}
	if !stored {
		text += " (already stored)"
	}
	s.effect(o.n, "%s", text)
}

func (o nodeObserver) Evidence(ev *ledger.Evidence, added bool) {
	text := o.n.s.evidenceString(ev)
	if added {
		text += " (new: pooled and sent)"
	} else {
		text += " (already pooled)"
	}
	o.n.s.effect(o.n, "%s", text)
}

// Executing strikes an armed crash before its effect, notes the signing
// effects the gate held, and ends the step's line after the last effect.
func (o nodeObserver) Executing(i int, effects []consensus.Effect) {
	n := o.n
	if i > 0 && n.core.Held() > n.heldBefore {
		n.s.effect(n, "held %s", n.s.effectString(effects[i-1]))
	}
	n.heldBefore = n.core.Held()
	if i == len(effects) {
		if k := len(n.s.out); k > 0 && n.s.out[k-1].n == n {
			n.s.out[k-1].open = false
		}
		return
	}
	if n.armed != nil && n.armed.beforeEffect != "" && effectKind(effects[i]) == n.armed.beforeEffect {
		n.crash("before "+n.s.effectString(effects[i]), n.armed.keep)
	}
}

// memChain is a node's block store: the blocks, their commits and the
// state after each, executed with ledger.Execute (empty blocks: accounts
// stay empty, but headers, links, last commits and evidence are checked).
type memChain struct {
	s        *script
	states   []ledger.State // states[h]: after block h; states[0] is genesis
	blocks   []storedBlock  // blocks[h-1]
	evidence map[crypto.Hash]uint64
}

type storedBlock struct {
	block    *ledger.Block
	commit   *ledger.Commit
	proposal *ledger.Proposal // what a catch-up answer sends with the commit
}

func newMemChain(s *script) *memChain {
	// Staking parameters without records: Execute runs the staking
	// module's end of block, which refuses invalid (zero) parameters; with
	// no records it changes nothing.
	g := (&ledger.State{ChainID: s.chainID, GenesisTime: scriptGenesis, Params: ledger.DefaultConsensusParams(), Staking: staking.DefaultParams()}).WithValidators(s.vals)
	return &memChain{s: s, states: []ledger.State{*g}, evidence: map[crypto.Hash]uint64{}}
}

func (c *memChain) Height() uint64       { return uint64(len(c.blocks)) }
func (c *memChain) state() *ledger.State { return &c.states[len(c.states)-1] }

// Account implements ledger.StateReader: the script's chain has no
// accounts.
func (c *memChain) Account(crypto.Address) (ledger.Account, error) { return ledger.Account{}, nil }

// EvidenceCommitted implements ledger.StateReader.
func (c *memChain) EvidenceCommitted(k crypto.Hash) (bool, error) {
	_, ok := c.evidence[k]
	return ok, nil
}

// ValidatorsAt implements ledger.StateReader.
func (c *memChain) ValidatorsAt(h uint64) (*ledger.ValidatorSet, error) {
	if h >= 1 && h <= uint64(len(c.states)) {
		return c.states[h-1].Validators, nil
	}
	if vs, ok := c.state().ValidatorsAt(h); ok {
		return vs, nil
	}
	return nil, fmt.Errorf("no validator set for height %d", h)
}

// Record implements ledger.StateReader: the script's chain has no records.
func (c *memChain) Record([]byte) ([]byte, error) { return nil, nil }

// IterateRecords implements ledger.StateReader.
func (c *memChain) IterateRecords([]byte, func(k, v []byte) error) error { return nil }

func (c *memChain) validate(b *ledger.Block) error { return ledger.Validate(c.state(), c, b) }

// store executes the decided block and keeps it with its commit, which
// it verifies first, as the node does.
func (c *memChain) store(d consensus.EffectDecide) error {
	st := c.state()
	if d.Height != st.Height+1 {
		return fmt.Errorf("store block %d at stored height %d", d.Height, st.Height)
	}
	if err := d.Commit.Verify(st.ChainID, st.Validators, d.Height, d.Block.Hash()); err != nil {
		return fmt.Errorf("commit of block %d: %w", d.Height, err)
	}
	res, err := ledger.Execute(st, c, d.Block)
	if err != nil {
		return err
	}
	id := d.Block.Hash()
	app := append([]byte("script/app/"), st.AppHash[:]...)
	app = append(app, id[:]...)
	next := *st.Next(d.Block, res, crypto.Sum(app))
	for _, k := range res.Evidence {
		c.evidence[k] = d.Height
	}
	c.states = append(c.states, next)
	c.blocks = append(c.blocks, storedBlock{d.Block, d.Commit, d.Proposal})
	return nil
}

// loseLast forgets the last block, as a store whose last synced writes
// were lost.
func (c *memChain) loseLast() {
	h := c.Height()
	for k, eh := range c.evidence {
		if eh == h {
			delete(c.evidence, k)
		}
	}
	c.blocks = c.blocks[:h-1]
	c.states = c.states[:h]
}
