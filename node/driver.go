package node

import (
	"context"
	"fmt"
	"time"

	"github.com/ledgerd/ledgerd/consensus"
	cdriver "github.com/ledgerd/ledgerd/consensus/driver"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/p2p"
	"github.com/libp2p/go-libp2p/core/peer"
)

// driver is the one goroutine that runs consensus: it hosts the shared
// driver core (consensus/driver), which owns the machine, the WAL
// discipline, replay and the signing guard, and gives it the node's parts
// through the core's seams: the LevelDB store and apply pipeline (apply.go),
// the block builder (build.go), libp2p (network below), wall-clock timers
// and the double-sign gate (signcheck.go). Beside it, proposals are
// assembled from parts (assembly.go) and block sync runs (blocksync.go).
type driver struct {
	n      *Node
	ctx    context.Context
	core   *cdriver.Driver
	timers *timers
	asm    *assembler
	build  *blockBuilder
	apply  *applier

	pacer     consensus.Pacer // timeout growth carried across heights
	lostUntil uint64          // the store lost committed heights up to this one (see checkStore)
	started   time.Time       // when run began

	// waitingTxs: the next height is due but no transaction waits and the
	// node does not create empty blocks; it starts when one arrives, when a
	// peer's message for the height arrives, or after the empty-block interval.
	waitingTxs bool
	waitHeight uint64
	waitSince  time.Time

	// Block sync runs alongside consensus (syncLoop). Consensus pauses
	// only when a verified block arrives (synced): paused says the machine
	// is stale, and it restarts when the sync pass ends (syncDone).
	synced   chan syncedBlock
	syncDone chan struct{}
	paused   bool

	// For the time-per-step metric.
	stepName  string
	stepSince time.Time
}

// emptyBlockCheck is how often a driver waiting for transactions looks at
// the mempool, besides being woken by arrivals.
const emptyBlockCheck = time.Second

func newDriver(n *Node) *driver {
	d := &driver{n: n, timers: newTimers(n.clock),
		synced: make(chan syncedBlock), syncDone: make(chan struct{})}
	d.build = &blockBuilder{chainID: n.chainID, self: n.self, store: n.store, pool: n.pool,
		evidence: n.evpool, clock: n.clock}
	d.apply = &applier{store: n.store, pool: n.pool, evidence: n.evpool, metrics: n.metrics, log: n.log,
		applied: d.applied, publish: n.events.publish}
	cfg := cdriver.Config{
		ChainID:    n.chainID,
		Validators: n.store,
		Self:       n.self,
		WAL:        n.wal,
		Chain:      chain{d},
		Builder:    d.build,
		Network:    &netSender{d: d},
		Timers:     d,
		Evidence:   n.evpool,
		Observer:   observer{d},
		Log:        n.log,
	}
	if n.signer != nil {
		cfg.Signer = n.signer
		if n.cfg.Consensus.DoubleSignCheckHeight > 0 {
			cfg.Gate = d
		}
	}
	d.core = cdriver.New(cfg)
	d.asm = newAssembler(d.core.Machine, n.rounds, n.log, d.inputFrom, d.penalize)
	return d
}

// run drives consensus until ctx ends, with block sync alongside it
// whenever the network reports the node behind: consensus keeps running
// until block sync brings a block whose commit verifies against the
// validator set, and pauses from then until the sync pass ends.
func (d *driver) run(ctx context.Context) error {
	d.ctx = ctx
	n := d.n
	n.goRun(func() error { return d.syncLoop(ctx) })
	check := n.clock.NewTimer(emptyBlockCheck)
	defer check.Stop()
	d.started = n.clock.Now()
	n.lastProgress.Store(d.started.UnixNano())
	if err := d.startMachine(); err != nil {
		return err
	}
	if err := d.checkStore(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case sb := <-d.synced:
			sb.done <- d.storeSynced(sb.block, sb.commit)
		case <-d.syncDone:
			if d.paused {
				if err := d.resume(); err != nil {
					return err
				}
			}
		case in := <-n.inbox:
			if !d.paused {
				d.receive(in)
			}
		case <-d.timers.t.C():
			for _, e := range d.timers.due() {
				if d.paused {
					continue
				}
				if e.ev != nil {
					d.core.Input(e.ev)
				} else {
					d.heightDue(e.height)
				}
			}
		case <-n.txReady:
			if !d.paused {
				d.maybeStartWaiting(false)
			}
		case <-check.C():
			check.Reset(emptyBlockCheck)
			if !d.paused {
				d.maybeStartWaiting(false)
			}
			n.metrics.Peers.Set(float64(len(n.net.Peers())))
			txs, bytes := n.pool.Size()
			n.metrics.MempoolTxs.Set(float64(txs))
			n.metrics.MempoolBytes.Set(float64(bytes))
		}
		if err := d.core.Err(); err != nil {
			n.fail(err)
		}
		if d.failed() {
			return d.n.Err()
		}
		if !d.paused {
			d.core.ReleaseHeld()
			d.observe()
		}
	}
}

// observe publishes the consensus position and accounts the time spent in
// the step the machine was in.
func (d *driver) observe() {
	n := d.n
	st := d.core.State()
	n.posHeight.Store(st.Height)
	n.posRound.Store(st.Round)
	name := st.Step.String()
	if d.waitingTxs {
		name = "wait_for_txs"
	}
	now := n.clock.Now()
	if name != d.stepName {
		if d.stepName != "" {
			n.metrics.StepSeconds.WithLabelValues(d.stepName).Add(now.Sub(d.stepSince).Seconds())
		}
		d.stepName, d.stepSince = name, now
	}
}

func (d *driver) failed() bool { return d.n.Err() != nil || d.core.Stopped() }

// startMachine runs the double-sign check, then has the core make the
// machine of the height after the stored one and replay the WAL into it
// (height after height while the replay decides), and starts that height
// if the machine waits for it.
func (d *driver) startMachine() error {
	if err := d.checkDoubleSign(); err != nil {
		return err
	}
	if err := d.core.Start(); err != nil {
		return err
	}
	if d.n.Err() != nil {
		return d.n.Err()
	}
	if st := d.core.State(); st.Step == consensus.StepNewHeight {
		d.heightDue(st.Height)
	}
	d.observe()
	return d.core.Err()
}

// inputFrom feeds the machine an event that peer from relayed.
func (d *driver) inputFrom(ev consensus.Event, from peer.ID) { d.core.InputFrom(ev, string(from)) }

// penalize charges peer from (if any) for a consensus message that proved
// useless or invalid only once consensus or block assembly looked at it.
func (d *driver) penalize(from peer.ID, reason string) {
	if from != "" {
		d.n.net.Penalize(from, p2p.PenaltyRefusedMessage, reason)
	}
}

// receive handles a consensus message from the network.
func (d *driver) receive(in inbound) {
	switch {
	case in.vote != nil:
		if d.waitingTxs && in.vote.Height == d.waitHeight {
			d.maybeStartWaiting(true)
		}
		d.inputFrom(consensus.EventVote{Vote: in.vote}, in.from)
	case in.proposal != nil:
		if d.asm.addProposal(in.proposal) && d.waitingTxs && in.proposal.Height == d.waitHeight {
			d.maybeStartWaiting(true)
		}
	case in.part != nil:
		d.asm.addPart(in.height, in.round, in.part, in.from)
	}
}

// ScheduleTimeout implements cdriver.Timers with the wall clock.
func (d *driver) ScheduleTimeout(t consensus.EventTimeout) {
	dur := d.pacer.Duration(d.n.store.State().Params, t.Kind, t.Round)
	d.timers.add(d.n.clock.Now().Add(dur), &timerEntry{ev: t})
}

// ScheduleHeight implements cdriver.Timers: the height starts (heightDue)
// after the commit timeout.
func (d *driver) ScheduleHeight(h uint64) {
	params := d.n.store.State().Params
	d.timers.add(d.n.clock.Now().Add(params.TimeoutCommit.Std()), &timerEntry{height: h})
}

// chain is the store as the core sees it: decided blocks go through the
// apply pipeline.
type chain struct{ d *driver }

func (c chain) Height() uint64                 { return c.d.n.store.Height() }
func (c chain) Validate(b *ledger.Block) error { return c.d.n.store.Validate(b) }
func (c chain) Store(e consensus.EffectDecide) error {
	return c.d.apply.apply(e.Block, e.Commit)
}

// network sends the core's signed messages over libp2p and keeps own
// proposals for catch-up.
type netSender struct{ d *driver }

func (w *netSender) SendProposal(p *ledger.Proposal, b *ledger.Block) {
	n := w.d.n
	_, parts := ledger.SplitBlock(b.Encode())
	n.rounds.AddProposal(p, parts)
	if err := n.net.PublishProposal(w.d.ctx, p, parts); err != nil {
		n.log.Debug("publish proposal", "err", err)
	}
	n.log.Debug("proposed", "height", p.Height, "round", p.Round, "block", p.BlockID, "txs", len(b.Txs))
}

func (w *netSender) SendVote(v *ledger.Vote) {
	if err := w.d.n.net.PublishVote(w.d.ctx, v); err != nil {
		w.d.n.log.Debug("publish vote", "err", err)
	}
}

func (w *netSender) SendEvidence(ev *ledger.Evidence) {
	if err := w.d.n.net.PublishEvidence(w.d.ctx, ev); err != nil {
		w.d.n.log.Debug("publish evidence", "err", err)
	}
}

// observer turns what the core does into logs, metrics, the catch-up
// cache, peer penalties and the node's status.
type observer struct {
	d *driver
}

func (o observer) NewMachine(h uint64) {
	o.d.timers.clear()
	o.d.asm.reset()
	o.d.n.rounds.Reset(h)
	o.d.waitingTxs = false
}

func (o observer) Stepped(ev consensus.Event, _ []consensus.Effect, _ bool) {
	switch e := ev.(type) {
	case consensus.EventVote:
		o.d.n.rounds.AddVote(e.Vote)
	case consensus.EventNewHeight:
		o.d.n.log.Debug("height started", "height", e.Height)
	}
}

func (o observer) Rejected(ev consensus.Event, from string, err error) {
	o.d.n.log.Debug("consensus refused an event", "event", ev.String(), "peer", from, "err", err)
	o.d.penalize(peer.ID(from), fmt.Sprintf("consensus refused %s: %v", ev, err))
}

// SignerRefused: a refusal outside replay leaves this validator unable to
// vote at the height, which a chain that needs its vote never gets past:
// Status reports it until the node commits a block.
func (o observer) SignerRefused(h uint64, r uint32, err error) {
	n := o.d.n
	ls := n.signer.LastSigned()
	msg := fmt.Sprintf("signer refuses to sign at height %d round %d (it last signed a %s at height %d round %d): "+
		"this validator cannot vote until the height is decided by others", h, r, ls.Step, ls.Height, ls.Round)
	n.refusal.Store(&msg)
	n.log.Error("signer refused to sign", "height", h, "round", r, "err", err)
}

func (o observer) Decided(e consensus.EffectDecide, stored bool) {
	n := o.d.n
	o.d.pacer.Decided(e.Round)
	if stored {
		n.log.Info("committed block", "height", e.Height, "round", e.Round, "hash", e.Block.Hash(),
			"txs", len(e.Block.Txs), "signers", len(e.Commit.Sigs))
		n.metrics.RoundsPerHeight.Observe(float64(e.Round + 1))
	}
	if vals, err := n.store.ValidatorsAt(e.Height); err == nil {
		n.rounds.Decided(e.Block.Hash(), e.Commit, vals)
	}
	o.d.asm.decided(e.Height)
}

func (o observer) Evidence(ev *ledger.Evidence, added bool) {
	if !added {
		return
	}
	n := o.d.n
	n.metrics.Equivocations.Inc()
	n.log.Warn("validator equivocated", "validator", ev.VoteA.Validator,
		"height", ev.VoteA.Height, "round", ev.VoteA.Round, "type", ev.VoteA.Type)
}

func (observer) Executing(int, []consensus.Effect) {}
