package sim

import (
	"bytes"
	"container/heap"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// Result is the outcome of one run.
type Result struct {
	Options    Options
	Violations []Violation
	Stats      Stats
	// Missed lists what a targeted scenario's script needed and the run
	// did not show (empty for runs without a scenario).
	Missed []string
	// End is the virtual time the run stopped at.
	End time.Duration
}

// Failed reports whether any invariant was violated.
func (r *Result) Failed() bool { return len(r.Violations) > 0 }

// simulation is one run. It is single-threaded and deterministic.
type simulation struct {
	opts    Options
	rng     *rand.Rand
	now     time.Duration
	queue   eventQueue
	seq     uint64
	stopped bool

	chainID string
	// staked: the genesis has staking records (every run but the
	// scenarios and the runs at or above a third of faulty power), so
	// that evidence slashes and tombstones, and churn can change the set.
	staked bool
	// keys is the number of validator keys: the genesis validators' and,
	// in churn runs, spares beyond them.
	keys   int
	spares int
	// ref is the reference chain: the honest decisions executed once more
	// on a state of the simulator's own, the set of every height.
	ref   *reference
	churn *churn // plans the set changes of a churn run (nil otherwise)
	// sigChecked are the late precommits whose signature was verified
	// (noteLate), by value.
	sigChecked map[ledger.Vote]bool
	crng       *rand.Rand // draws the churn's spares and plans
	frng       *rand.Rand // draws the byzantine and disk-fault roles and plans
	disk       DiskFault
	scenario   *scenario      // the targeted scenario, if any
	twinAddr   crypto.Address // the twins' key's address (zero without twins)
	params     ledger.ConsensusParams
	genesis    *ledger.State
	balance    []ledger.AccountUpdate
	records    []ledger.Record // the genesis staking records
	accts      []crypto.PrivKey

	nodes []*node
	net   *network
	check *checker
	stats Stats

	names *strings.Replacer // for traces

	healAt      time.Duration
	healed      bool
	baseline    uint64        // highest honest height at the heal
	recoveredAt time.Duration // when liveness was met (0: not yet)
	deadline    time.Duration
}

// eventKind is what a queued simulation event does.
type eventKind uint8

const (
	evDeliver eventKind = iota
	evTimer
	evNewHeight
	evGossip
	evAction
)

type simEvent struct {
	at     time.Duration
	seq    uint64
	kind   eventKind
	node   int
	inc    uint64 // the node's incarnation, for timers
	msg    *message
	ev     consensus.Event
	action func()
}

type eventQueue []*simEvent

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*simEvent)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

func (s *simulation) schedule(at time.Duration, e *simEvent) {
	e.at = at
	e.seq = s.seq
	s.seq++
	heap.Push(&s.queue, e)
}

// overTwoThirds reports whether power is more than two thirds of total:
// the quorum, computed independently of ledger.ValidatorSet (total is
// summed by the caller from the members' powers, see totalOf).
func overTwoThirds(power, total uint64) bool { return 3*power > 2*total }

// totalOf sums the members' powers: the checks' quorum arithmetic does not
// rely on the ledger's (ValidatorSet.TotalPower, Quorum).
func totalOf(vs *ledger.ValidatorSet) uint64 {
	var t uint64
	for i := 0; i < vs.Size(); i++ {
		t += vs.Get(i).Power
	}
	return t
}

func (s *simulation) after(d time.Duration, f func()) {
	s.schedule(s.now+d, &simEvent{kind: evAction, action: f})
}

// Timing of the simulated chain.
const (
	// Nodes gossip their status (and so help peers catch up) every
	// gossipInterval once the network has healed, and only every
	// faultGossipInterval before: catching up is as slow as a congested
	// network makes it, which gives the faults room to split the nodes'
	// views of a height.
	gossipInterval      = 500 * time.Millisecond
	faultGossipInterval = 3 * time.Second
	timeoutCommit       = 200 * time.Millisecond
	maxSteps            = 3_000_000 // a run that steps this often has lost its way
)

// Run executes one simulation and returns its result.
func Run(o Options) *Result {
	s := newSimulation(o)
	s.run()
	r := &Result{Options: o, Violations: s.check.violations, Stats: s.stats, End: s.now}
	if sc := s.scenario; sc != nil {
		for _, p := range scenarioPlays[sc.name] {
			if !sc.Played[p] {
				r.Missed = append(r.Missed, p)
			}
		}
	}
	return r
}

func (s *simulation) run() {
	if s.churn != nil {
		s.churn.start()
	}
	for _, n := range s.nodes {
		n.boot()
	}
	s.planFaults()
	s.after(s.opts.FaultPhase, s.heal)
	for !s.stopped && s.queue.Len() > 0 {
		e := heap.Pop(&s.queue).(*simEvent)
		if e.at > s.deadline {
			s.now = s.deadline
			break
		}
		s.now = e.at
		s.dispatch(e)
		if s.stats.Steps > maxSteps {
			s.check.fail(InvLiveness, nil, "no end after %d steps", s.stats.Steps)
		}
		s.progress()
	}
	if !s.stopped {
		s.finish()
	}
}

func (s *simulation) dispatch(e *simEvent) {
	switch e.kind {
	case evAction:
		e.action()
		return
	}
	n := s.nodes[e.node]
	if !n.up || (e.kind != evDeliver && e.inc != n.inc) {
		return
	}
	switch e.kind {
	case evDeliver:
		s.stats.Messages++
		n.receive(e.msg)
	case evTimer, evNewHeight:
		n.input(e.ev)
	case evGossip:
		n.gossip()
		s.schedule(s.now+s.gossipInterval(), &simEvent{kind: evGossip, node: n.idx, inc: n.inc})
	}
}

func (s *simulation) gossipInterval() time.Duration {
	if s.healed {
		return gossipInterval
	}
	return faultGossipInterval
}

// heal ends the fault phase: the network is whole again and every crashed
// node restarts.
func (s *simulation) heal() {
	if s.healed {
		return
	}
	s.healed = true
	s.healAt = s.now
	s.net.heal()
	if s.scenario != nil {
		s.scenario.release(nil)
	}
	for _, n := range s.nodes {
		n.armed, n.cut = nil, false
		if !n.up {
			n.restart()
		}
	}
	s.baseline = s.honestHeight(false)
	s.tracef(nil, "heal: network whole, all nodes up, honest height %d", s.baseline)
	if s.opts.ByzantineThird {
		s.deadline = s.now + 5*time.Second
	} else {
		s.deadline = s.now + LivenessBound
	}
}

// honestHeight returns the highest (or, with lowest, the lowest) height an
// honest node has stored.
func (s *simulation) honestHeight(lowest bool) uint64 {
	var h uint64
	first := true
	for _, n := range s.nodes {
		if !n.honest {
			continue
		}
		nh := n.store.height()
		if first || (lowest && nh < h) || (!lowest && nh > h) {
			h = nh
			first = false
		}
	}
	return h
}

// progress checks liveness and stops the run once it is met and every
// equivocation detected by then is committed.
func (s *simulation) progress() {
	if !s.healed || s.opts.ByzantineThird {
		return
	}
	if s.recoveredAt == 0 && s.honestHeight(true) >= s.baseline+LivenessHeights {
		s.recoveredAt = s.now
		s.stats.Recovery = s.now - s.healAt
		s.stats.Checks[InvLiveness]++
		s.tracef(nil, "liveness: every honest node reached height %d, %s after the heal", s.baseline+LivenessHeights, fmtTime(s.stats.Recovery))
	}
	if s.recoveredAt != 0 && (s.churn == nil || s.ref.height() >= churnHeights) {
		if n, _ := s.check.evidencePending(s.recoveredAt); n == 0 {
			s.stats.Checks[InvEvidence] += uint64(len(s.check.detected))
			s.stopped = true
		}
	}
}

// finish reports what the deadline left undone.
func (s *simulation) finish() {
	if s.opts.ByzantineThird {
		return
	}
	if s.recoveredAt == 0 {
		s.check.fail(InvLiveness, nil, "honest heights %s: not all reached %d within %s of the heal at %s",
			s.heightSummary(), s.baseline+LivenessHeights, LivenessBound, fmtTime(s.healAt))
		return
	}
	if s.churn != nil && s.ref.height() < churnHeights {
		s.check.fail(InvLiveness, nil, "churn run: honest heights %s, the chain did not reach %d within %s of the heal at %s",
			s.heightSummary(), churnHeights, LivenessBound, fmtTime(s.healAt))
		return
	}
	if n, d := s.check.evidencePending(s.recoveredAt); n > 0 {
		a := d.ev.VoteA
		s.check.fail(InvEvidence, nil, "%d detected equivocations never committed, e.g. %s h=%d r=%d by %s (seen by %s at %s)",
			n, a.Type, a.Height, a.Round, consensus.ShortAddr(a.Validator), d.node, fmtTime(d.at))
	}
}

func (s *simulation) heightSummary() string {
	var b bytes.Buffer
	for i, n := range s.nodes {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", n.name, n.store.height())
	}
	return b.String()
}

// tracef writes a trace line when tracing is on. Callers on hot paths
// check s.tracing() first, so that building the arguments costs nothing
// when it is off.
func (s *simulation) tracef(n *node, format string, args ...any) {
	if s.opts.Trace == nil {
		return
	}
	name := "sim"
	if n != nil {
		name = n.name
	}
	if s.names == nil {
		// Name validators (v0, v1, ...) instead of by address prefix.
		var pairs []string
		for i := 0; i < max(s.keys, s.genesis.Validators.Size()); i++ {
			pairs = append(pairs, consensus.ShortAddr(simKey("validator", i).PubKey().Address()), fmt.Sprintf("v%d", i))
		}
		s.names = strings.NewReplacer(pairs...)
	}
	s.opts.Trace(fmt.Sprintf("%10s %-4s %s", fmtTime(s.now), name, s.names.Replace(fmt.Sprintf(format, args...))))
}

func (s *simulation) tracing() bool { return s.opts.Trace != nil }

func fmtTime(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

func sortedHashes[V any](m map[crypto.Hash]V) []crypto.Hash {
	out := make([]crypto.Hash, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i][:], out[j][:]) < 0 })
	return out
}
