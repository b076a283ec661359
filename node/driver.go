package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/consensus/wal"
	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/privval"
)

// driver is the one goroutine that owns the consensus machine.
type driver struct {
	n      *Node
	ctx    context.Context
	m      *consensus.Machine
	timers *timers

	marked    uint64       // the WAL holds the end marker of this height (or it was stored before start)
	pending   []wal.Record // records of the next height, waiting for the end marker
	queue     []queued
	replaying bool
	deferred  *consensus.EffectRequestValue

	// waitingTxs: the next height is due but no transaction waits and the
	// node does not create empty blocks; it starts when one arrives, when a
	// peer's message for the height arrives, or after the empty-block interval.
	waitingTxs bool
	waitHeight uint64
	waitSince  time.Time

	parts map[partsKey]*partsEntry // proposals whose blocks are being assembled

	// For the time-per-step metric.
	stepName  string
	stepSince time.Time
}

// queued is an event waiting for the machine; logged says it was read from
// the WAL, so stepping it must not log it again. Everything else is logged,
// including own votes re-signed during a replay: a second crash must find
// them.
type queued struct {
	ev     consensus.Event
	logged bool
}

type partsKey struct {
	height uint64
	round  uint32
	id     crypto.Hash
}

type partsEntry struct {
	proposal *ledger.Proposal
	set      *ledger.PartSet
	parts    []*ledger.Part
	done     bool
}

// maxPartsEntries bounds proposals being assembled at once (see
// admitProposal for who gets a slot).
const maxPartsEntries = 64

// emptyBlockCheck is how often a driver waiting for transactions looks at
// the mempool, besides being woken by arrivals.
const emptyBlockCheck = time.Second

func newDriver(n *Node) *driver {
	return &driver{n: n, timers: newTimers(n.clock), parts: make(map[partsKey]*partsEntry)}
}

// run drives consensus until ctx ends: block sync while behind, consensus
// otherwise, back to block sync whenever the network reports the node behind.
func (d *driver) run(ctx context.Context) error {
	d.ctx = ctx
	n := d.n
	behind := make(chan uint64, 1)
	resume := make(chan struct{})
	n.goRun(func() error {
		for {
			h, err := n.net.WaitBehind(ctx)
			if err != nil {
				return ctx.Err()
			}
			select {
			case behind <- h:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case <-resume:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	})
	check := n.clock.NewTimer(emptyBlockCheck)
	defer check.Stop()
	if err := d.startMachine(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case target := <-behind:
			if err := d.blockSync(target); err != nil {
				return err
			}
			if err := d.startMachine(); err != nil {
				return err
			}
			select {
			case resume <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
		case in := <-n.inbox:
			d.receive(in)
		case <-d.timers.t.C():
			for _, e := range d.timers.due() {
				if e.ev != nil {
					d.input(e.ev)
				} else {
					d.heightDue(e.height)
				}
			}
		case <-n.txReady:
			d.maybeStartWaiting(false)
		case <-check.C():
			check.Reset(emptyBlockCheck)
			d.maybeStartWaiting(false)
			n.metrics.Peers.Set(float64(len(n.net.Peers())))
			txs, bytes := n.pool.Size()
			n.metrics.MempoolTxs.Set(float64(txs))
			n.metrics.MempoolBytes.Set(float64(bytes))
		}
		if d.failed() {
			return d.n.Err()
		}
		d.observe()
	}
}

// observe publishes the consensus position and accounts the time spent in
// the step the machine was in.
func (d *driver) observe() {
	n := d.n
	st := d.m.State()
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

func (d *driver) failed() bool { return d.n.Err() != nil }

// startMachine makes a machine for the height after the stored one and
// replays the WAL's records of that height into it.
func (d *driver) startMachine() error {
	n := d.n
	h := n.store.Height() + 1
	cfg := consensus.Config{
		ChainID:    n.chainID,
		Validators: n.vals,
		Self:       n.self,
		ValidValue: n.store.Validate,
	}
	m, err := consensus.New(cfg, h)
	if err != nil {
		return fmt.Errorf("consensus: %w", err)
	}
	d.m, d.marked = m, n.store.Height()
	d.pending, d.queue, d.deferred, d.waitingTxs = nil, nil, nil, false
	d.timers.clear()
	clear(d.parts)
	n.rounds.reset(h)

	var recs []wal.Record
	if err := n.wal.Replay(h, func(r wal.Record) error {
		if r.Kind == wal.KindMessage {
			recs = append(recs, r)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("replay WAL: %w", err)
	}
	if len(recs) > 0 {
		n.log.Info("replaying write-ahead log", "height", h, "records", len(recs))
	}
	d.replaying = true
	for _, r := range recs {
		ev, err := consensus.DecodeEvent(r.Data)
		if err != nil {
			return fmt.Errorf("WAL record of height %d: %w", h, err)
		}
		d.feed(ev, true)
	}
	d.replaying = false
	if dv := d.deferred; dv != nil {
		d.deferred = nil
		d.requestValue(*dv) // queues the value: step it now
		d.drain()
	}
	if st := d.m.State(); st.Step == consensus.StepNewHeight {
		d.heightDue(h)
	}
	d.observe()
	return nil
}

// heightDue starts height h (the one after the stored height, which the
// machine has not started), or waits for a transaction first when the node
// does not create empty blocks and h is not a proof block.
func (d *driver) heightDue(h uint64) {
	if h != d.n.store.Height()+1 {
		return
	}
	if st := d.m.State(); st.Height > h || (st.Height == h && st.Step != consensus.StepNewHeight) {
		return // already started
	}
	if !d.n.cfg.Consensus.CreateEmptyBlocks && !d.needProofBlock(h) {
		if txs, _ := d.n.pool.Size(); txs == 0 {
			d.waitingTxs, d.waitHeight, d.waitSince = true, h, d.n.clock.Now()
			return
		}
	}
	d.waitingTxs = false
	d.input(consensus.EventNewHeight{Height: h})
}

// needProofBlock reports whether height h is due even with no transaction
// waiting: block h-1 changed the state, whose app hash only header h
// carries. Without that block a light client could not verify the newest
// state of a quiet chain (CometBFT makes the same "proof block").
func (d *driver) needProofBlock(h uint64) bool {
	if h < 2 {
		return false // the genesis state is in the trusted genesis
	}
	prev, err := d.n.store.Block(h - 1)
	if err != nil {
		d.n.log.Warn("read the last block; making the next one in case it is a proof block", "height", h-1, "err", err)
		return true
	}
	return prev.Header.AppHash != d.n.store.State().AppHash
}

// maybeStartWaiting starts a height that waits for transactions once one
// waits, a peer is already at it (force), or the empty-block interval passed.
func (d *driver) maybeStartWaiting(force bool) {
	if !d.waitingTxs {
		return
	}
	txs, _ := d.n.pool.Size()
	iv := d.n.cfg.Consensus.EmptyBlocksInterval.Duration
	if force || txs > 0 || (iv > 0 && d.n.clock.Now().Sub(d.waitSince) >= iv) {
		d.waitingTxs = false
		d.input(consensus.EventNewHeight{Height: d.waitHeight})
	}
}

// input feeds a new event to the machine, then the events its effects
// produce (own signed messages, built values), in order.
func (d *driver) input(ev consensus.Event) { d.feed(ev, false) }

// feed queues ev (logged: it came from the WAL) and drains the queue.
func (d *driver) feed(ev consensus.Event, logged bool) {
	d.queue = append(d.queue, queued{ev, logged})
	if len(d.queue) > 1 {
		return // already draining
	}
	d.drain()
}

// drain steps the queued events in order, with the ones their effects
// queue, until none is left. Whatever queues an event outside a drain must
// drain: an event left queued makes every later feed believe a drain is
// under way, and nothing is stepped again.
func (d *driver) drain() {
	for i := 0; i < len(d.queue) && !d.failed(); i++ {
		d.step(d.queue[i].ev, d.queue[i].logged)
	}
	d.queue = d.queue[:0]
}

// step is one turn: step the machine, log the event (unless it came from
// the WAL), carry out the effects.
func (d *driver) step(ev consensus.Event, logged bool) {
	n := d.n
	effects, err := d.m.Step(ev)
	if err != nil {
		if !errors.Is(err, consensus.ErrDuplicate) && !errors.Is(err, consensus.ErrStale) {
			n.log.Debug("consensus refused an event", "event", ev.String(), "err", err)
		}
		return
	}
	if !logged {
		data, err := consensus.EncodeEvent(ev)
		if err != nil {
			n.fail(fmt.Errorf("encode %s for the WAL: %w", ev, err))
			return
		}
		rec := wal.Record{Height: consensus.EventHeight(ev), Kind: wal.KindMessage, Data: data}
		if rec.Height > d.marked+1 {
			d.pending = append(d.pending, rec)
		} else if err := n.wal.Append(rec, consensus.NeedsSync(effects)); err != nil {
			n.fail(fmt.Errorf("write WAL: %w", err))
			return
		}
	}
	switch e := ev.(type) {
	case consensus.EventVote:
		n.rounds.addVote(e.Vote)
	case consensus.EventNewHeight:
		n.log.Debug("height started", "height", e.Height)
	case consensus.EventProposeValue:
		if dv := d.deferred; dv != nil && dv.Height == e.Height && dv.Round == e.Round {
			d.deferred = nil // the WAL held the value proposed before the restart
		}
	}
	for _, e := range effects {
		d.execute(e)
		if d.failed() {
			return
		}
	}
}

// execute carries out one effect.
func (d *driver) execute(e consensus.Effect) {
	n := d.n
	switch e := e.(type) {
	case consensus.EffectBroadcastProposal:
		p := e.Proposal
		enc := e.Block.Encode()
		hdr, parts := ledger.SplitBlock(enc)
		p.Parts = hdr
		if err := n.signer.SignProposal(n.chainID, &p); err != nil {
			d.refused(err)
			return
		}
		n.rounds.addProposal(&p, parts)
		if err := n.net.PublishProposal(d.ctx, &p, parts); err != nil {
			n.log.Debug("publish proposal", "err", err)
		}
		n.log.Debug("proposed", "height", p.Height, "round", p.Round, "block", p.BlockID, "txs", len(e.Block.Txs))
		d.queue = append(d.queue, queued{ev: consensus.EventProposal{Proposal: &p, Block: e.Block}})
	case consensus.EffectBroadcastVote:
		v := e.Vote
		if err := n.signer.SignVote(n.chainID, &v); err != nil {
			d.refused(err)
			return
		}
		if err := n.net.PublishVote(d.ctx, &v); err != nil {
			n.log.Debug("publish vote", "err", err)
		}
		d.queue = append(d.queue, queued{ev: consensus.EventVote{Vote: &v}})
	case consensus.EffectScheduleTimeout:
		dur := consensus.TimeoutDuration(n.store.State().Params, e.Kind, e.Round)
		d.timers.add(n.clock.Now().Add(dur), &timerEntry{ev: consensus.EventTimeout{Height: e.Height, Round: e.Round, Kind: e.Kind}})
	case consensus.EffectRequestValue:
		if d.replaying {
			d.deferred = &e // the WAL may still hold the value we proposed
			return
		}
		d.requestValue(e)
	case consensus.EffectDecide:
		d.commit(e)
	case consensus.EffectEvidence:
		if n.evpool.add(e.Evidence) {
			n.metrics.Equivocations.Inc()
			n.log.Warn("validator equivocated", "validator", e.Evidence.VoteA.Validator,
				"height", e.Evidence.VoteA.Height, "round", e.Evidence.VoteA.Round, "type", e.Evidence.VoteA.Type)
			if err := n.net.PublishEvidence(d.ctx, e.Evidence); err != nil {
				n.log.Debug("publish evidence", "err", err)
			}
		}
	}
}

// refused handles the signer refusing to sign. During WAL replay that is a
// message signed before the crash whose signed form the WAL holds; at any
// other time it means the machine and the guard disagree, and the guard wins.
func (d *driver) refused(err error) {
	if d.replaying && errors.Is(err, privval.ErrDoubleSign) {
		return
	}
	d.n.log.Error("signer refused to sign", "err", err)
}

// requestValue builds this node's block for the height and round.
func (d *driver) requestValue(e consensus.EffectRequestValue) {
	b, err := d.buildBlock(e.Height)
	if err != nil {
		d.n.log.Error("build block", "height", e.Height, "err", err)
		return // the round's propose timeout moves consensus on
	}
	d.queue = append(d.queue, queued{ev: consensus.EventProposeValue{Height: e.Height, Round: e.Round, Block: b}})
}

// buildBlock fills a block from the mempool and the evidence pool.
func (d *driver) buildBlock(h uint64) (*ledger.Block, error) {
	n := d.n
	st := n.store.State()
	if st.Height+1 != h {
		return nil, fmt.Errorf("state is at height %d", st.Height)
	}
	var last *ledger.Commit
	if h > 1 {
		c, err := n.store.Commit(h - 1)
		if err != nil {
			return nil, err
		}
		last = c
	}
	t := ledger.TimestampOf(n.clock.Now())
	if h == 1 {
		t = max(t, st.GenesisTime)
	} else {
		t = max(t, st.LastBlockTime+ledger.Timestamp(time.Millisecond))
	}
	b := &ledger.Block{
		Header: ledger.Header{
			ChainID:        n.chainID,
			Height:         h,
			Time:           t,
			LastBlockHash:  st.LastBlockHash,
			AppHash:        st.AppHash,
			ValidatorsHash: n.vals.Hash(),
			Proposer:       n.self,
		},
		Evidence:   n.evpool.pending(int(st.Params.MaxEvidence), h, n.store.Reader()),
		LastCommit: last,
	}
	// What the block holds besides its transactions.
	overhead := uint64(len(b.Encode())) + 16
	if overhead < st.Params.MaxBlockBytes {
		b.Txs = n.pool.Reap(st.Params.MaxBlockBytes-overhead, st.Params.MaxBlockTxs)
	}
	b.FillHeader()
	return b, nil
}

// commit stores a decided block, writes the WAL's end marker and schedules
// the next height after the commit timeout.
func (d *driver) commit(e consensus.EffectDecide) {
	n := d.n
	if n.store.Height() < e.Height {
		if err := d.applyBlock(e.Block, e.Commit); err != nil {
			n.fail(fmt.Errorf("decided block %d does not apply: %w", e.Height, err))
			return
		}
		n.log.Info("committed block", "height", e.Height, "round", e.Round, "hash", e.Block.Hash(),
			"txs", len(e.Block.Txs), "signers", len(e.Commit.Sigs))
		n.metrics.RoundsPerHeight.Observe(float64(e.Round + 1))
	}
	if err := n.wal.Append(wal.Record{Height: e.Height, Kind: wal.KindEndHeight}, true); err != nil {
		n.fail(fmt.Errorf("write WAL: %w", err))
		return
	}
	d.marked = e.Height
	for _, r := range d.pending {
		if err := n.wal.Append(r, false); err != nil {
			n.fail(fmt.Errorf("write WAL: %w", err))
			return
		}
	}
	d.pending = nil
	if err := n.wal.Prune(e.Height); err != nil {
		n.log.Warn("prune WAL", "err", err)
	}
	n.rounds.decided(e.Block.Hash(), e.Commit, n.vals)
	for k := range d.parts {
		if k.height <= e.Height {
			delete(d.parts, k)
		}
	}
	params := n.store.State().Params
	d.timers.add(n.clock.Now().Add(params.TimeoutCommit.Std()), &timerEntry{height: e.Height + 1})
}

// applyBlock commits a block with its commit to the store and updates the
// mempool, the evidence pool, the status and subscribers.
func (d *driver) applyBlock(b *ledger.Block, c *ledger.Commit) error {
	n := d.n
	prevTime := n.store.State().LastBlockTime
	st, res, err := n.store.Apply(b, c)
	if err != nil {
		return err
	}
	m := n.metrics
	m.Height.Set(float64(st.Height))
	m.TxsCommitted.Add(float64(len(b.Txs)))
	m.BlockTxs.Observe(float64(len(b.Txs)))
	if st.Height > 1 {
		m.BlockInterval.Observe(b.Header.Time.Time().Sub(prevTime.Time()).Seconds())
	}
	if err := n.pool.Update(st.Height, b.Txs, n.store.Reader()); err != nil {
		n.log.Warn("mempool update", "height", st.Height, "err", err)
	}
	n.evpool.committed(b.Evidence)
	txs, bytes := n.pool.Size()
	m.MempoolTxs.Set(float64(txs))
	m.MempoolBytes.Set(float64(bytes))
	n.setStatus(st)
	n.events.publish(BlockEvent{Block: b, Commit: c, Result: res})
	return nil
}

// receive handles a consensus message from the network.
func (d *driver) receive(in inbound) {
	switch {
	case in.vote != nil:
		if d.waitingTxs && in.vote.Height == d.waitHeight {
			d.maybeStartWaiting(true)
		}
		d.input(consensus.EventVote{Vote: in.vote})
	case in.proposal != nil:
		d.addProposal(in.proposal)
	case in.part != nil:
		d.addPart(in.height, in.round, in.part)
	}
}

// addProposal starts assembling the block of a signed proposal.
func (d *driver) addProposal(p *ledger.Proposal) {
	if p.Height != d.m.Height() && p.Height != d.m.Height()+1 {
		return
	}
	k := partsKey{p.Height, p.Round, p.BlockID}
	if _, ok := d.parts[k]; ok || !d.admitProposal(p, k) {
		return
	}
	set, err := ledger.NewPartSet(p.Parts)
	if err != nil {
		return
	}
	d.parts[k] = &partsEntry{proposal: p, set: set}
	if d.waitingTxs && p.Height == d.waitHeight {
		d.maybeStartWaiting(true)
	}
}

// addPart adds a block part to the proposal it belongs to and, once the
// block is complete and matches the proposal, hands both to the machine.
func (d *driver) addPart(h uint64, r uint32, part *ledger.Part) {
	for k, e := range d.parts {
		if k.height != h || k.round != r || e.done {
			continue
		}
		added, err := e.set.Add(part)
		if err != nil || !added {
			continue
		}
		e.parts = append(e.parts, part)
		if !e.set.Complete() {
			return
		}
		e.done = true
		b, err := e.set.Block()
		if err != nil || b.Hash() != e.proposal.BlockID {
			d.n.log.Warn("proposal's parts do not make its block", "height", h, "round", r, "err", err)
			delete(d.parts, k)
			return
		}
		if h == d.m.Height() {
			d.n.rounds.addProposal(e.proposal, e.parts)
		}
		d.input(consensus.EventProposal{Proposal: e.proposal, Block: b})
		return
	}
}

// blockSync pauses consensus and fetches committed blocks until the node
// has caught up with its peers.
func (d *driver) blockSync(target uint64) error {
	n := d.n
	n.syncing.Store(true)
	n.metrics.BlockSyncing.Set(1)
	defer func() {
		n.syncing.Store(false)
		n.metrics.BlockSyncing.Set(0)
	}()
	from := n.store.Height() + 1
	n.log.Info("behind peers; block sync", "from", from, "target", target)
	start := n.clock.Now()
	last, err := n.net.NewSyncer().Sync(d.ctx, from, func(b *ledger.Block, c *ledger.Commit) error {
		if err := d.applyBlock(b, c); err != nil {
			return err
		}
		n.metrics.BlocksSynced.Inc()
		return nil
	})
	if err != nil && d.ctx.Err() == nil {
		return fmt.Errorf("block sync: %w", err)
	}
	if err := n.wal.Prune(n.store.Height()); err != nil {
		n.log.Warn("prune WAL", "err", err)
	}
	if last >= from {
		el := n.clock.Now().Sub(start)
		n.log.Info("block sync done", "from", from, "to", last, "blocks", last-from+1,
			"seconds", el.Seconds(), "blocks_per_s", float64(last-from+1)/max(el.Seconds(), 1e-9))
	}
	return d.ctx.Err()
}
