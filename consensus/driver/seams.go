package driver

import (
	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/consensus/wal"
	"github.com/ledgerd/ledgerd/ledger"
)

// WAL is the write-ahead log the driver appends every input to before any
// effect of that input leaves the process. wal.FileLog and wal.MemLog
// implement it.
type WAL interface {
	// Append adds r; with sync true, r and everything before it is
	// durable when Append returns nil.
	Append(r wal.Record, sync bool) error
	// Replay calls fn for the records of the unfinished height (see
	// wal.Log).
	Replay(height uint64, fn func(wal.Record) error) error
	// Prune drops what no replay of a height above belowHeight needs.
	Prune(belowHeight uint64) error
	// MaxHeight is the highest height of any record held (0 if none):
	// above a decided height, it says the WAL holds later heights (the
	// block store lost blocks the WAL still knows), which an end marker
	// appended now would hide from their replay.
	MaxHeight() (uint64, error)
}

// Signer signs this validator's votes and proposals and refuses to sign
// anything that could contradict a signature it made before (privval's
// double-sign guard). *privval.Signer implements it.
type Signer interface {
	SignVote(chainID string, v *ledger.Vote) error
	SignProposal(chainID string, p *ledger.Proposal) error
}

// Chain is the block store as the driver sees it.
type Chain interface {
	// Height is the height of the last stored block.
	Height() uint64
	// Validate is the machine's valid(v): whether b may follow the
	// stored chain.
	Validate(b *ledger.Block) error
	// Store executes and stores the decided block of d.Height, which is
	// Height()+1, with its commit, atomically.
	Store(d consensus.EffectDecide) error
}

// Builder makes this validator's value for a height and round (the
// paper's getValue()). An error leaves the round without a proposal; its
// propose timeout moves consensus on.
type Builder interface {
	BuildBlock(height uint64, round uint32) (*ledger.Block, error)
}

// Network carries this validator's signed messages and the evidence it
// detected to its peers. Sending must not block on the network: the
// driver calls it between WAL appends and machine steps.
type Network interface {
	SendProposal(p *ledger.Proposal, b *ledger.Block)
	SendVote(v *ledger.Vote)
	SendEvidence(ev *ledger.Evidence)
}

// Timers delivers the machine's timeouts and the start of the next height.
// Both come back through Driver.Input.
type Timers interface {
	// ScheduleTimeout delivers t after consensus.TimeoutDuration for its
	// kind and round.
	ScheduleTimeout(t consensus.EventTimeout)
	// ScheduleHeight delivers EventNewHeight{height} (or lets the host
	// wait for transactions first) once the commit timeout of height-1
	// has passed.
	ScheduleHeight(height uint64)
}

// Evidence is the pool of verified equivocation evidence the driver adds
// what the vote keeper detects to; the pool decides what is new.
type Evidence interface {
	Add(ev *ledger.Evidence) bool
}

// Gate says whether the validator may sign at a height now (the node's
// double-sign check holds signing until it has checked the heights its
// peers report). Signing effects wait, in order, until it allows them.
type Gate interface {
	MaySign(height uint64) bool
}

// Observer hears what the driver does, for logs, metrics, caches and the
// simulator's checks. Every method is called on the driver's goroutine.
type Observer interface {
	// NewMachine: a machine for height starts (at Start, for each height
	// replayed); what the host keeps per height is stale.
	NewMachine(height uint64)
	// Stepped: the machine accepted ev (logged to the WAL unless it came
	// from it: replaying) and returned effects, which run next.
	Stepped(ev consensus.Event, effects []consensus.Effect, replaying bool)
	// Rejected: the machine refused ev from peer from ("" for the node
	// itself) with err, other than as a duplicate or stale message.
	Rejected(ev consensus.Event, from string, err error)
	// SignerRefused: the signer refused to sign what the machine asked
	// for, outside a replay: the machine and the guard disagree.
	SignerRefused(height uint64, round uint32, err error)
	// Decided: height d.Height is decided; stored says this decision
	// stored the block (false when the store already held it).
	Decided(d consensus.EffectDecide, stored bool)
	// Evidence: the vote keeper detected ev; added says it was new to
	// the pool (and was sent to peers).
	Evidence(ev *ledger.Evidence, added bool)
	// Executing: effect i of effects is about to run (i == len(effects):
	// all of them ran) for an input that is not being replayed. The
	// simulator crashes here; Halt inside it stops the driver.
	Executing(i int, effects []consensus.Effect)
}

// NopObserver is an Observer that ignores everything; embed it to
// implement only some methods.
type NopObserver struct{}

func (NopObserver) NewMachine(uint64)                                 {}
func (NopObserver) Stepped(consensus.Event, []consensus.Effect, bool) {}
func (NopObserver) Rejected(consensus.Event, string, error)           {}
func (NopObserver) SignerRefused(uint64, uint32, error)               {}
func (NopObserver) Decided(consensus.EffectDecide, bool)              {}
func (NopObserver) Evidence(*ledger.Evidence, bool)                   {}
func (NopObserver) Executing(int, []consensus.Effect)                 {}
