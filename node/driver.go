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
	"github.com/ledgerd/ledgerd/p2p"
	"github.com/ledgerd/ledgerd/privval"
	"github.com/libp2p/go-libp2p/core/peer"
)

// driver is the one goroutine that owns the consensus machine.
type driver struct {
	n      *Node
	ctx    context.Context
	m      *consensus.Machine
	timers *timers

	marked    uint64             // the WAL holds the end marker of this height (or it was stored before start)
	walMarked bool               // the WAL already holds the end marker of the height being replayed
	lostUntil uint64             // the store lost committed heights up to this one (see checkStore)
	started   time.Time          // when run began
	held      []consensus.Effect // signing effects waiting for maySign, in order
	pending   []wal.Record       // records of the next height, waiting for the end marker
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

// queued is an event waiting for the machine; logged says it was read from
// the WAL, so stepping it must not log it again. Everything else is logged,
// including own votes re-signed during a replay: a second crash must find
// them.
type queued struct {
	ev     consensus.Event
	logged bool
	from   peer.ID // the peer that relayed it, if it came from the network
}

// syncedBlock is a block with a verified commit from block sync, waiting
// for the driver to store it; done receives the outcome.
type syncedBlock struct {
	block  *ledger.Block
	commit *ledger.Commit
	done   chan error
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
	return &driver{n: n, timers: newTimers(n.clock), parts: make(map[partsKey]*partsEntry),
		synced: make(chan syncedBlock), syncDone: make(chan struct{})}
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
					d.input(e.ev)
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
		if d.failed() {
			return d.n.Err()
		}
		if !d.paused {
			d.releaseHeld()
			d.observe()
		}
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
// replays the WAL's records of that height into it. When the replay
// decides the height (the WAL holds a decision the store lost, such as a
// journal that lost its last synced writes), the block is stored and the
// next height is replayed the same way, so the machine resumes from the
// last height the WAL knows, with every message this validator signed
// there, and never signs anew at a height where it signed before.
func (d *driver) startMachine() error {
	n := d.n
	if err := d.checkDoubleSign(); err != nil {
		return err
	}
	for {
		h := n.store.Height() + 1
		if err := d.replayHeight(h); err != nil {
			return err
		}
		if n.store.Height() < h || d.failed() {
			break
		}
		n.log.Info("recovered a decided block from the write-ahead log", "height", h)
	}
	if d.failed() {
		return n.Err()
	}
	h := d.m.Height()
	if dv := d.deferred; dv != nil {
		d.deferred = nil
		// Only if the replay left the machine waiting for this very value:
		// the WAL may have held it, or the replay may have moved on.
		if st := d.m.State(); st.Height == dv.Height && st.Round == dv.Round && st.Step == consensus.StepPropose {
			d.requestValue(*dv) // queues the value: step it now
			d.drain()
		}
	}
	if st := d.m.State(); st.Step == consensus.StepNewHeight {
		d.heightDue(h)
	}
	d.observe()
	return nil
}

// replayHeight makes a machine for height h and feeds it the WAL's records
// of h.
func (d *driver) replayHeight(h uint64) error {
	n := d.n
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
	d.m, d.marked, d.walMarked = m, n.store.Height(), false
	d.pending, d.queue, d.deferred, d.waitingTxs, d.held = nil, nil, nil, false, nil
	d.timers.clear()
	clear(d.parts)
	n.rounds.reset(h)

	var recs []wal.Record
	if err := n.wal.Replay(h, func(r wal.Record) error {
		switch r.Kind {
		case wal.KindMessage:
			recs = append(recs, r)
		case wal.KindEndHeight:
			d.walMarked = true
		}
		return nil
	}); err != nil {
		return fmt.Errorf("replay WAL: %w", err)
	}
	if len(recs) > 0 {
		n.log.Info("replaying write-ahead log", "height", h, "records", len(recs))
	}
	d.replaying = true
	defer func() { d.replaying = false }()
	for _, r := range recs {
		ev, err := consensus.DecodeEvent(r.Data)
		if err != nil {
			return fmt.Errorf("WAL record of height %d: %w", h, err)
		}
		d.feed(ev, true)
		if n.store.Height() >= h {
			// Decided: the records after the decision are of no use to
			// this height, and the next one is replayed from scratch.
			break
		}
	}
	return nil
}

// ErrOwnSignatureAhead is wrapped by the error that stops a validator whose
// signature the double-sign check found above its signing state.
var ErrOwnSignatureAhead = errors.New("this validator's signature is in a commit newer than its signing state")

// checkDoubleSign is the double-sign check (consensus.double_sign_check_height):
// it runs before the machine starts, so before anything is signed, at start
// and after every block sync, over the latest stored heights, including the
// ones block sync just fetched from peers. It looks in each height's stored
// commit and in the last commit carried by the block above it. A signature
// of this validator at a height its signing state does not cover (above its
// last signed height) means that state is not the whole truth: it was
// deleted or restored from an old copy, or another process signs with the
// key. Signing could then contradict a vote already cast, so the node stops.
// Heights at or below the last signed one are covered by the signer's own
// guard, so an ordinary restart never trips the check.
func (d *driver) checkDoubleSign() error {
	n := d.n
	depth := n.cfg.Consensus.DoubleSignCheckHeight
	if n.signer == nil || depth == 0 {
		return nil
	}
	idx, ok := n.vals.ByAddress(n.self)
	if !ok {
		return nil
	}
	signed := n.signer.LastSigned().Height
	top := n.store.Height()
	found := func(c *ledger.Commit) bool {
		if c == nil || c.Height <= signed {
			return false
		}
		for _, s := range c.Sigs {
			if s.ValidatorIndex == uint32(idx) {
				return true
			}
		}
		return false
	}
	for h := top; h >= 1 && top-h < depth && h > signed; h-- {
		c, err := n.store.Commit(h)
		if err != nil {
			return fmt.Errorf("double-sign check: commit %d: %w", h, err)
		}
		at := h
		if !found(c) {
			b, err := n.store.Block(h)
			if err != nil {
				return fmt.Errorf("double-sign check: block %d: %w", h, err)
			}
			if !found(b.LastCommit) {
				continue
			}
			at = h - 1
		}
		return fmt.Errorf("%w: it signed the commit of height %d, but its signing state %s says it last signed at height %d. "+
			"The state was deleted or restored from an old copy, or another node signs with this key; signing now could "+
			"double-sign. Make sure no other node uses the key, restore the newest signing state if you have it, or wait "+
			"until the chain is more than %d heights past %d and start again (consensus.double_sign_check_height = 0 skips "+
			"the check; only for a key you know signs nowhere else)",
			ErrOwnSignatureAhead, at, n.cfg.ValidatorStateFile(), signed, depth, at)
	}
	return nil
}

// peerWait bounds how long a validator that runs the double-sign check
// waits, after it starts, to hear its peers' heights before it signs.
const peerWait = 5 * time.Second

// maySign reports whether the node may sign a message of height h now. With
// the double-sign check on, it must not sign before the check has run over
// every height it has learned of: not while its peers report a committed
// height above both the stored one (checked) and the last signed one plus
// one (block sync fetches and checks it first). A height counts once two
// peers reach it (or the only peer does), so one lying peer cannot hold the
// validator's votes back; and, just after start, not
// before it has heard from a peer (or peerWait has passed, or it has none).
func (d *driver) maySign(h uint64) bool {
	n := d.n
	if n.cfg.Consensus.DoubleSignCheckHeight == 0 || d.replaying {
		return true
	}
	heights := n.net.PeerHeights()
	if len(heights) == 0 {
		if len(n.cfg.P2P.PersistentPeers)+len(n.cfg.P2P.BootstrapPeers) > 0 && n.clock.Now().Before(d.started.Add(peerWait)) {
			n.log.Debug("not signing before hearing the peers' heights", "height", h)
			return false
		}
		return true
	}
	learned := agreedHeight(heights)
	if known := max(n.store.Height(), n.signer.LastSigned().Height) + 1; learned > known {
		n.log.Debug("not signing: peers hold heights not yet fetched and checked", "height", h, "peer_height", learned)
		return false
	}
	return true
}

// agreedHeight is the highest height that at least two of the peers reach
// (the only peer's height when there is one).
func agreedHeight(heights map[peer.ID]uint64) uint64 {
	var first, second uint64
	for _, h := range heights {
		switch {
		case h > first:
			first, second = h, first
		case h > second:
			second = h
		}
	}
	if len(heights) == 1 {
		return first
	}
	return second
}

// checkStore compares the store with the signing state after the WAL
// replay. A validator signs at height h only once it has decided h-1, so a
// last signature above the stored height plus one means committed blocks
// are missing from the store: its database lost synced writes (a disk that
// lies about fsync, a bad sector) and the WAL did not hold them. The
// signer refuses to sign at those heights again, as it must, so only the
// blocks with their commits can bring the node back: it fetches them from
// peers by block sync (Status reports the loss until then), and without
// peers to fetch from it stops with an error saying what to do.
func (d *driver) checkStore() error {
	n := d.n
	if n.signer == nil {
		return nil
	}
	ls := n.signer.LastSigned()
	stored := n.store.Height()
	if ls.Height <= stored+1 {
		return nil
	}
	first, last := stored+1, ls.Height-1
	lost := fmt.Sprintf("blocks %d to %d were", first, last)
	if first == last {
		lost = fmt.Sprintf("block %d was", first)
	}
	if len(n.cfg.P2P.PersistentPeers)+len(n.cfg.P2P.BootstrapPeers) == 0 {
		return fmt.Errorf("the ledger store %s is at height %d, but this validator signed at height %d: "+
			"%s committed and then lost from the store (its disk lost synced writes), "+
			"and the write-ahead log does not hold them; the signer will not sign at those heights again, so the node "+
			"cannot go on. Restore %s from a backup or copy it from a node of this chain, or configure peers that "+
			"hold those blocks (p2p.persistent_peers) so the node fetches them; do not delete the signing state %s",
			n.cfg.LedgerDBDir(), stored, ls.Height, lost, n.cfg.LedgerDBDir(), n.cfg.ValidatorStateFile())
	}
	d.lostUntil = last
	msg := fmt.Sprintf("%s committed but missing from the store (this validator signed at height %d): "+
		"waiting to fetch from peers", lost, ls.Height)
	n.lostBlocks.Store(&msg)
	n.log.Error("committed blocks missing from the store; fetching them from peers", "store_height", stored,
		"signed_height", ls.Height, "first", first, "last", last)
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
	if !d.n.cfg.Consensus.CreateEmptyBlocks {
		// The proof-block check reads the last block: only when idle.
		if txs, _ := d.n.pool.Size(); txs == 0 && !d.needProofBlock(h) {
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
func (d *driver) feed(ev consensus.Event, logged bool) { d.feedFrom(ev, logged, "") }

// inputFrom is input for an event that peer from relayed: what the machine
// refuses of it, other than duplicates and stale messages, is charged to
// from.
func (d *driver) inputFrom(ev consensus.Event, from peer.ID) { d.feedFrom(ev, false, from) }

func (d *driver) feedFrom(ev consensus.Event, logged bool, from peer.ID) {
	d.queue = append(d.queue, queued{ev, logged, from})
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
		q := d.queue[i]
		d.step(q.ev, q.logged, q.from)
	}
	d.queue = d.queue[:0]
}

// maxHeld bounds signing effects held back by maySign (a few per round).
const maxHeld = 1024

// hold keeps a signing effect, in order, until maySign allows it.
func (d *driver) hold(e consensus.Effect) {
	if len(d.held) >= maxHeld {
		d.held = d.held[1:]
	}
	d.held = append(d.held, e)
}

// releaseHeld signs and sends the held effects, in order, once maySign
// allows it; consensus then goes on where it was held.
func (d *driver) releaseHeld() {
	if len(d.held) == 0 || len(d.queue) > 0 || !d.maySign(d.m.Height()) {
		return
	}
	held := d.held
	d.held = nil
	d.n.log.Info("peers' heights checked; signing", "height", d.m.Height(), "messages", len(held))
	for _, e := range held {
		d.execute(e)
		if d.failed() {
			return
		}
	}
	d.drain()
}

// penalize charges peer from (if any) for a consensus message that proved
// useless or invalid only once consensus or block assembly looked at it.
func (d *driver) penalize(from peer.ID, reason string) {
	if from != "" {
		d.n.net.Penalize(from, p2p.PenaltyRefusedMessage, reason)
	}
}

// step is one turn: step the machine, log the event (unless it came from
// the WAL), carry out the effects.
func (d *driver) step(ev consensus.Event, logged bool, from peer.ID) {
	n := d.n
	effects, err := d.m.Step(ev)
	if err != nil {
		if !errors.Is(err, consensus.ErrDuplicate) && !errors.Is(err, consensus.ErrStale) {
			n.log.Debug("consensus refused an event", "event", ev.String(), "peer", from, "err", err)
			d.penalize(from, fmt.Sprintf("consensus refused %s: %v", ev, err))
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
		if len(d.held) > 0 || !d.maySign(e.Proposal.Height) {
			d.hold(e)
			return
		}
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
		if len(d.held) > 0 || !d.maySign(e.Vote.Height) {
			d.hold(e)
			return
		}
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
//
// A refusal outside replay leaves this validator unable to vote at the
// height, which a chain that needs its vote never gets past: Status reports
// it until the node commits a block.
func (d *driver) refused(err error) {
	if d.replaying && errors.Is(err, privval.ErrDoubleSign) {
		return
	}
	st := d.m.State()
	ls := d.n.signer.LastSigned()
	msg := fmt.Sprintf("signer refuses to sign at height %d round %d (it last signed a %s at height %d round %d): "+
		"this validator cannot vote until the height is decided by others", st.Height, st.Round, ls.Step, ls.Height, ls.Round)
	d.n.refusal.Store(&msg)
	d.n.log.Error("signer refused to sign", "height", st.Height, "round", st.Round, "err", err)
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
	// A height decided again by a replay keeps the marker the WAL holds:
	// a second one at the tail would hide the next height's records,
	// which lie before it, from that height's replay.
	if !(d.replaying && d.walMarked) {
		if err := n.wal.Append(wal.Record{Height: e.Height, Kind: wal.KindEndHeight}, true); err != nil {
			n.fail(fmt.Errorf("write WAL: %w", err))
			return
		}
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
	n.refusal.Store(nil)
	n.lastProgress.Store(n.clock.Now().UnixNano())
	if p := n.lostBlocks.Load(); p != nil && st.Height >= d.lostUntil {
		n.lostBlocks.Store(nil)
		n.log.Info("fetched the blocks lost from the store again", "height", st.Height)
	}
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
		d.inputFrom(consensus.EventVote{Vote: in.vote}, in.from)
	case in.proposal != nil:
		d.addProposal(in.proposal)
	case in.part != nil:
		d.addPart(in.height, in.round, in.part, in.from)
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
func (d *driver) addPart(h uint64, r uint32, part *ledger.Part, from peer.ID) {
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
			// The proposer signed a part set that does not decode to its
			// block; whoever relayed the last part relayed that proposal.
			d.n.log.Warn("proposal's parts do not make its block", "height", h, "round", r, "err", err)
			d.penalize(from, fmt.Sprintf("parts of proposal %d/%d do not make its block", h, r))
			delete(d.parts, k)
			return
		}
		if h == d.m.Height() {
			d.n.rounds.addProposal(e.proposal, e.parts)
		}
		d.inputFrom(consensus.EventProposal{Proposal: e.proposal, Block: b}, from)
		return
	}
}

// syncLoop runs block sync passes alongside consensus for as long as ctx
// lasts: each time the network reports the node behind, one pass fetches
// and verifies blocks from the next height on and hands them to the driver
// (storeSynced); when the pass ends, the driver resumes consensus if it
// had paused it.
func (d *driver) syncLoop(ctx context.Context) error {
	n := d.n
	for {
		target, err := n.net.WaitBehind(ctx)
		if err != nil {
			return ctx.Err()
		}
		from := n.store.Height() + 1
		n.log.Info("peers report heights ahead; block sync alongside consensus", "from", from, "target", target)
		start := n.clock.Now()
		last, err := n.net.NewSyncer().Sync(ctx, from, func(b *ledger.Block, c *ledger.Commit) error {
			return d.handSynced(ctx, b, c)
		})
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("block sync: %w", err)
		}
		if last >= from {
			el := n.clock.Now().Sub(start)
			n.log.Info("block sync done", "from", from, "to", last, "blocks", last-from+1,
				"seconds", el.Seconds(), "blocks_per_s", float64(last-from+1)/max(el.Seconds(), 1e-9))
		}
		select {
		case d.syncDone <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// handSynced gives a verified block to the driver goroutine and waits for
// it to be stored.
func (d *driver) handSynced(ctx context.Context, b *ledger.Block, c *ledger.Commit) error {
	sb := syncedBlock{block: b, commit: c, done: make(chan error, 1)}
	select {
	case d.synced <- sb:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-sb.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// storeSynced stores a block from block sync whose commit verified
// against the validator set. The first such block is the proof that the
// node is behind: consensus pauses until the pass ends. A block consensus
// committed meanwhile is skipped (it must be the same block: two blocks
// with valid commits at one height would mean a third of the voting power
// equivocated).
func (d *driver) storeSynced(b *ledger.Block, c *ledger.Commit) error {
	n := d.n
	h, stored := b.Height(), n.store.Height()
	switch {
	case h <= stored:
		have, err := n.store.Block(h)
		if err != nil {
			return fmt.Errorf("read block %d: %w", h, err)
		}
		if have.Hash() != b.Hash() {
			return fmt.Errorf("block sync brought block %s at height %d, which holds %s: conflicting commits", b.Hash(), h, have.Hash())
		}
		return nil
	case h > stored+1:
		return fmt.Errorf("block sync brought height %d, the next is %d", h, stored+1)
	}
	if !d.paused {
		d.pause(h)
	}
	if err := d.applyBlock(b, c); err != nil {
		return err
	}
	n.metrics.BlocksSynced.Inc()
	return nil
}

// pause stops consensus while block sync stores verified blocks from
// height h on.
func (d *driver) pause(h uint64) {
	n := d.n
	n.log.Info("block sync has a verified block ahead; pausing consensus", "height", h, "consensus_height", d.m.Height())
	d.paused = true
	d.timers.clear()
	d.waitingTxs, d.deferred = false, nil
	n.syncing.Store(true)
	n.metrics.BlockSyncing.Set(1)
}

// resume restarts consensus after the height block sync reached.
func (d *driver) resume() error {
	n := d.n
	d.paused = false
	n.syncing.Store(false)
	n.metrics.BlockSyncing.Set(0)
	if err := n.wal.Prune(n.store.Height()); err != nil {
		n.log.Warn("prune WAL", "err", err)
	}
	return d.startMachine()
}
