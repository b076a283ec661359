// Package driver runs the consensus machine of one validator: the one
// piece of code, free of I/O, that both the node and the deterministic
// simulator run. It owns what loses funds when wrong:
//
//   - the WAL discipline: every input is appended to the write-ahead log,
//     and synced whenever one of its effects lets something leave the
//     process (consensus.NeedsSync), before any effect runs;
//   - replay after a crash: the machine of the height after the stored one
//     is fed that height's WAL records, height after height for as long as
//     the replay decides, so it resumes with every message it signed; and
//     the same after a height decided live while the WAL already holds
//     later ones (the block store lost blocks the WAL still knows), whose
//     end marker is then not written, since it would hide them;
//   - the signing guard: signatures go through the Signer (privval), whose
//     refusals during a replay are expected (the WAL holds the signed form)
//     and outside one mean the machine forgot what it did; an optional Gate
//     holds signing, in order, until the host allows it;
//   - the order of own messages: a signed proposal or vote is fed back to
//     the machine after the input that caused it and before any later
//     input, as are the values the Builder makes.
//
// Everything else reaches it through the small interfaces in seams.go:
// the node implements them with LevelDB, libp2p and wall-clock timers,
// the simulator with memory and simulated time. The driver is not safe
// for concurrent use: the host calls it from one goroutine.
package driver

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/consensus/wal"
	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/privval"
)

// Config is what a Driver runs on. Gate, Observer and Log may be nil.
type Config struct {
	ChainID    string
	Validators consensus.ValidatorSets
	Self       crypto.Address

	WAL      WAL
	Signer   Signer // nil for a node that is not a validator
	Chain    Chain
	Builder  Builder
	Network  Network
	Timers   Timers
	Evidence Evidence
	Gate     Gate
	Observer Observer
	Log      *slog.Logger
}

// MaxHeld bounds the signing effects a Gate holds back (a few per round);
// beyond it the oldest are dropped.
const MaxHeld = 1024

// Driver feeds events to the machine and carries out its effects.
type Driver struct {
	cfg Config
	obs Observer
	log *slog.Logger

	m       *consensus.Machine
	marked  uint64       // the WAL holds the end marker of this height (or it was stored before start)
	walEnd  uint64       // the replay of this height found its end marker in the WAL (0: none)
	pending []wal.Record // records of the next height, waiting for the end marker
	// replayLater: a height decided live while the WAL holds later
	// heights; once the drain ends, the next height is replayed from the
	// WAL (replayAfterDecision) and early, the inputs of the next height
	// the old machine took (pending), are fed to the new one.
	replayLater bool
	early       []wal.Record
	queue       []queued           // events waiting for the machine, in order
	held        []consensus.Effect // signing effects waiting for the Gate, in order
	deferred    *consensus.EffectRequestValue
	replaying   bool
	halted      bool
	err         error
}

// queued is an event waiting for the machine; logged says it was read from
// the WAL, so stepping it must not log it again. Everything else is
// logged, including own messages re-signed during a replay: a second crash
// must find them.
type queued struct {
	ev     consensus.Event
	logged bool
	from   string
}

// New makes a driver; Start makes its machine.
func New(cfg Config) *Driver {
	obs := cfg.Observer
	if obs == nil {
		obs = NopObserver{}
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Driver{cfg: cfg, obs: obs, log: log}
}

// Err is the error that stopped the driver (a WAL write or a decided block
// that failed to store), if any. A stopped driver steps nothing more; the
// process must restart.
func (d *Driver) Err() error { return d.err }

// Halt stops the driver where it is, as a crash does: nothing more is
// stepped, sent or written.
func (d *Driver) Halt() { d.halted = true }

// Stopped reports whether the driver failed or was halted.
func (d *Driver) Stopped() bool { return d.halted || d.err != nil }

// Replaying reports whether the driver is feeding WAL records.
func (d *Driver) Replaying() bool { return d.replaying }

// State is the machine's position.
func (d *Driver) State() consensus.RoundState { return d.m.State() }

// Height is the height the machine is deciding.
func (d *Driver) Height() uint64 { return d.m.Height() }

// Machine is the machine itself, for read-only queries.
func (d *Driver) Machine() *consensus.Machine { return d.m }

// Held is the number of signing effects waiting for the Gate.
func (d *Driver) Held() int { return len(d.held) }

func (d *Driver) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// Start makes a machine for the height after the stored one and replays
// the WAL's records of that height into it. When the replay decides the
// height (the WAL holds a decision the store lost, such as a journal that
// lost its last synced writes), the block is stored and the next height
// is replayed the same way, so the machine resumes from the last height
// the WAL knows, with every message this validator signed there, and
// never signs anew at a height where it signed before. A value the
// machine asked for during the replay, and that the WAL did not hold, is
// built and proposed once the replay is over.
//
// Start may be called again (after block sync stored blocks): it starts
// over from the store. It does not start a height the machine waits for
// (StepNewHeight): the host does, with Input(EventNewHeight).
func (d *Driver) Start() error {
	if err := d.replayStored(); err != nil {
		return err
	}
	d.proposeDeferred()
	return d.err
}

// replayStored makes the machine of the height after the stored one and
// replays the WAL into it, height after height while the replay decides.
func (d *Driver) replayStored() error {
	for {
		h := d.cfg.Chain.Height() + 1
		if err := d.replayHeight(h); err != nil {
			d.fail(err)
			return err
		}
		if d.cfg.Chain.Height() < h || d.Stopped() {
			break
		}
		d.log.Info("recovered a decided block from the write-ahead log", "height", h)
	}
	return d.err
}

// proposeDeferred builds and proposes the value the machine asked for
// during a replay, if the WAL did not hold it and the machine still waits
// for it.
func (d *Driver) proposeDeferred() {
	dv := d.deferred
	if dv == nil || d.Stopped() {
		return
	}
	d.deferred = nil
	// Only if the replay left the machine waiting for this very value:
	// the WAL may have held it, or the replay may have moved on.
	if st := d.m.State(); st.Height == dv.Height && st.Round == dv.Round && st.Step == consensus.StepPropose {
		d.requestValue(*dv) // queues the value: step it now
		d.drain()
	}
}

// replayAfterDecision goes on after a height decided live while the WAL
// held later heights (commit wrote no end marker): like Start, it makes
// the machine of the height after the stored one and replays the WAL's
// records into it, height after height, so the machine resumes with the
// decisions and the messages this validator signed there, and the signer,
// which refuses to sign at those heights again, is never asked to outside
// the replay. The inputs of the next height the old machine had taken
// early are fed to the new one after the replay, and logged then; the
// host starts a height the machine waits for after the commit timeout, as
// after any decision.
//
// A crash at any point of this is the same as one right after the
// decided block was stored: the WAL holds no new marker, and Start
// replays the same records.
func (d *Driver) replayAfterDecision() {
	early := d.early
	d.early = nil
	d.log.Info("the write-ahead log holds later heights; replaying them", "stored_height", d.cfg.Chain.Height())
	if d.replayStored() != nil {
		return
	}
	for _, r := range early {
		ev, err := consensus.DecodeEvent(r.Data)
		if err != nil {
			d.fail(fmt.Errorf("re-read an early input of height %d: %w", r.Height, err))
			return
		}
		d.feed(ev, false, "")
		if d.Stopped() {
			return
		}
	}
	d.proposeDeferred()
	if d.Stopped() {
		return
	}
	if st := d.m.State(); st.Step == consensus.StepNewHeight {
		d.cfg.Timers.ScheduleHeight(st.Height)
	}
}

// replayHeight makes a machine for height h and feeds it the WAL's records
// of h.
func (d *Driver) replayHeight(h uint64) error {
	m, err := consensus.New(consensus.Config{
		ChainID:    d.cfg.ChainID,
		Validators: d.cfg.Validators,
		Self:       d.cfg.Self,
		ValidValue: d.cfg.Chain.Validate,
	}, h)
	if err != nil {
		return fmt.Errorf("consensus: %w", err)
	}
	d.m, d.marked, d.walEnd = m, d.cfg.Chain.Height(), 0
	d.pending, d.queue, d.deferred, d.held = nil, nil, nil, nil
	d.obs.NewMachine(h)

	var recs []wal.Record
	if err := d.cfg.WAL.Replay(h, func(r wal.Record) error {
		switch r.Kind {
		case wal.KindMessage:
			recs = append(recs, r)
		case wal.KindEndHeight:
			d.walEnd = h
		}
		return nil
	}); err != nil {
		return fmt.Errorf("replay WAL: %w", err)
	}
	if len(recs) > 0 {
		d.log.Info("replaying write-ahead log", "height", h, "records", len(recs))
	}
	d.replaying = true
	defer func() { d.replaying = false }()
	for _, r := range recs {
		ev, err := consensus.DecodeEvent(r.Data)
		if err != nil {
			return fmt.Errorf("WAL record of height %d: %w", h, err)
		}
		d.feed(ev, true, "")
		if d.Stopped() || d.cfg.Chain.Height() >= h {
			// Decided: the records after the decision are of no use to
			// this height, and the next one is replayed from scratch.
			break
		}
	}
	return nil
}

// Input feeds a new event to the machine, then the events its effects
// produce (own signed messages, built values), in order.
func (d *Driver) Input(ev consensus.Event) { d.feed(ev, false, "") }

// InputFrom is Input for an event that peer from relayed: what the machine
// refuses of it, other than duplicates and stale messages, is reported to
// Observer.Rejected with from.
func (d *Driver) InputFrom(ev consensus.Event, from string) { d.feed(ev, false, from) }

// feed queues ev (logged: it came from the WAL) and drains the queue.
func (d *Driver) feed(ev consensus.Event, logged bool, from string) {
	if d.Stopped() {
		return
	}
	d.queue = append(d.queue, queued{ev, logged, from})
	if len(d.queue) > 1 {
		return // already draining
	}
	d.drain()
}

// drain steps the queued events in order, with the ones their effects
// queue, until none is left. Whatever queues an event outside a drain must
// drain: an event left queued makes every later feed believe a drain is
// under way, and nothing is stepped again. A decision that found later
// heights in the WAL has them replayed once the queue is empty (the old
// machine's own messages of the decided height are stepped first, as
// after any decision).
func (d *Driver) drain() {
	for i := 0; i < len(d.queue) && !d.Stopped(); i++ {
		q := d.queue[i]
		d.step(q.ev, q.logged, q.from)
	}
	d.queue = d.queue[:0]
	if d.replayLater && !d.Stopped() {
		d.replayLater = false
		d.replayAfterDecision()
	}
}

// step is one turn: step the machine, log the event (unless it came from
// the WAL), carry out the effects.
func (d *Driver) step(ev consensus.Event, logged bool, from string) {
	effects, err := d.m.Step(ev)
	if err != nil {
		if !errors.Is(err, consensus.ErrDuplicate) && !errors.Is(err, consensus.ErrStale) {
			d.obs.Rejected(ev, from, err)
		}
		return
	}
	if !logged {
		data, err := consensus.EncodeEvent(ev)
		if err != nil {
			d.fail(fmt.Errorf("encode %s for the WAL: %w", ev, err))
			return
		}
		rec := wal.Record{Height: consensus.EventHeight(ev), Kind: wal.KindMessage, Data: data}
		if rec.Height > d.marked+1 {
			d.pending = append(d.pending, rec)
		} else if err := d.cfg.WAL.Append(rec, consensus.NeedsSync(effects)); err != nil {
			d.fail(fmt.Errorf("write WAL: %w", err))
			return
		}
	}
	if pv, ok := ev.(consensus.EventProposeValue); ok {
		if dv := d.deferred; dv != nil && dv.Height == pv.Height && dv.Round == pv.Round {
			d.deferred = nil // the WAL held the value proposed before the restart
		}
	}
	d.obs.Stepped(ev, effects, d.replaying)
	for i, e := range effects {
		if !d.replaying {
			d.obs.Executing(i, effects)
		}
		if d.Stopped() {
			return
		}
		d.execute(e)
		if d.Stopped() {
			return
		}
	}
	if !d.replaying {
		d.obs.Executing(len(effects), effects)
	}
}

// execute carries out one effect.
func (d *Driver) execute(e consensus.Effect) {
	switch e := e.(type) {
	case consensus.EffectBroadcastProposal:
		if !d.maySign(e, e.Proposal.Height) {
			return
		}
		p := e.Proposal
		if err := d.cfg.Signer.SignProposal(d.cfg.ChainID, &p); err != nil {
			d.refused(err)
			return
		}
		d.cfg.Network.SendProposal(&p, e.Block)
		if d.Stopped() {
			return
		}
		d.queue = append(d.queue, queued{ev: consensus.EventProposal{Proposal: &p, Block: e.Block}})
	case consensus.EffectBroadcastVote:
		if !d.maySign(e, e.Vote.Height) {
			return
		}
		v := e.Vote
		if err := d.cfg.Signer.SignVote(d.cfg.ChainID, &v); err != nil {
			d.refused(err)
			return
		}
		d.cfg.Network.SendVote(&v)
		if d.Stopped() {
			return
		}
		d.queue = append(d.queue, queued{ev: consensus.EventVote{Vote: &v}})
	case consensus.EffectScheduleTimeout:
		d.cfg.Timers.ScheduleTimeout(consensus.EventTimeout{Height: e.Height, Round: e.Round, Kind: e.Kind})
	case consensus.EffectRequestValue:
		if d.replaying {
			d.deferred = &e // the WAL may still hold the value we proposed
			return
		}
		d.requestValue(e)
	case consensus.EffectDecide:
		d.commit(e)
	case consensus.EffectEvidence:
		added := d.cfg.Evidence.Add(e.Evidence)
		if added {
			d.cfg.Network.SendEvidence(e.Evidence)
		}
		d.obs.Evidence(e.Evidence, added)
	}
}

// maySign reports whether a signing effect may run now; if not, it holds
// it. Nothing signs past a held effect: order is kept. A replay is never
// held: what it signs again, the signer refuses (it signed before), and
// what is new must reach the WAL in replay order.
func (d *Driver) maySign(e consensus.Effect, h uint64) bool {
	if d.replaying || d.cfg.Gate == nil {
		return true
	}
	if len(d.held) == 0 && d.cfg.Gate.MaySign(h) {
		return true
	}
	if len(d.held) >= MaxHeld {
		d.held = d.held[1:]
	}
	d.held = append(d.held, e)
	return false
}

// ReleaseHeld signs and sends the held effects, in order, once the Gate
// allows it; consensus then goes on where it was held. The host calls it
// after each event it handled.
func (d *Driver) ReleaseHeld() {
	if len(d.held) == 0 || len(d.queue) > 0 || d.Stopped() || !d.cfg.Gate.MaySign(d.m.Height()) {
		return
	}
	held := d.held
	d.held = nil
	d.log.Info("peers' heights checked; signing", "height", d.m.Height(), "messages", len(held))
	for _, e := range held {
		d.execute(e)
		if d.Stopped() {
			return
		}
	}
	d.drain()
}

// refused handles the signer refusing to sign. During WAL replay that is a
// message signed before the crash whose signed form the WAL holds; at any
// other time it means the machine and the guard disagree, and the guard
// wins.
func (d *Driver) refused(err error) {
	if d.replaying && errors.Is(err, privval.ErrDoubleSign) {
		return
	}
	st := d.m.State()
	d.obs.SignerRefused(st.Height, st.Round, err)
}

// requestValue asks the Builder for this validator's block and queues it.
func (d *Driver) requestValue(e consensus.EffectRequestValue) {
	b, err := d.cfg.Builder.BuildBlock(e.Height, e.Round)
	if err != nil {
		d.log.Error("build block", "height", e.Height, "err", err)
		return // the round's propose timeout moves consensus on
	}
	d.queue = append(d.queue, queued{ev: consensus.EventProposeValue{Height: e.Height, Round: e.Round, Block: b}})
}

// commit stores a decided block, writes the WAL's end marker and the
// records of the next height that waited for it, and has the next height
// start after the commit timeout.
//
// The end marker is not written when the WAL holds it already (a replay
// found it), nor when the WAL holds records of a later height: the block
// store lost blocks the WAL still knows, and the machine decided one of
// them again (from peers' messages, or from the WAL). A replay starts
// after the last marker below its height, so a marker appended after
// those records would hide them, the decisions and the signatures of the
// later heights with them, for good. Outside a replay, the next height is
// then replayed from the WAL once the drain ends (replayAfterDecision)
// instead of starting afresh; during one, Start goes on to it anyway.
func (d *Driver) commit(e consensus.EffectDecide) {
	stored := false
	if d.cfg.Chain.Height() < e.Height {
		if err := d.cfg.Chain.Store(e); err != nil {
			d.fail(fmt.Errorf("decided block %d does not apply: %w", e.Height, err))
			return
		}
		stored = true
		if d.Stopped() {
			return // halted while storing: a crash before the end marker
		}
	}
	top, err := d.cfg.WAL.MaxHeight()
	if err != nil {
		d.fail(fmt.Errorf("read WAL: %w", err))
		return
	}
	later := top > e.Height
	if d.walEnd != e.Height && !later {
		if err := d.cfg.WAL.Append(wal.Record{Height: e.Height, Kind: wal.KindEndHeight}, true); err != nil {
			d.fail(fmt.Errorf("write WAL: %w", err))
			return
		}
	}
	d.marked = e.Height
	if later && !d.replaying {
		// The next height's early inputs go to its new machine, after the
		// WAL's records of it.
		d.replayLater = true
		d.early = append(d.early, d.pending...)
	} else {
		for _, r := range d.pending {
			if err := d.cfg.WAL.Append(r, false); err != nil {
				d.fail(fmt.Errorf("write WAL: %w", err))
				return
			}
		}
	}
	d.pending = nil
	if err := d.cfg.WAL.Prune(e.Height); err != nil {
		d.log.Warn("prune WAL", "err", err)
	}
	d.obs.Decided(e, stored)
	if !d.replayLater {
		d.cfg.Timers.ScheduleHeight(e.Height + 1)
	}
}
