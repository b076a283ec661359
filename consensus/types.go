package consensus

import (
	"errors"
	"fmt"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// Step is where the machine stands within a height.
type Step uint8

// The steps. StepPropose, StepPrevote and StepPrecommit are the paper's
// steps; StepNewHeight and StepDecided bracket a height.
const (
	// StepNewHeight: the height has not started; the machine collects
	// messages for it and waits for EventNewHeight.
	StepNewHeight Step = iota
	StepPropose
	StepPrevote
	StepPrecommit
	// StepDecided: the height is decided; the machine waits for
	// EventNewHeight of the next height and keeps that height's messages.
	StepDecided
)

// inRound reports whether s is one of the paper's three round steps.
func (s Step) inRound() bool { return s >= StepPropose && s <= StepPrecommit }

// String renders the Step in one line, for logs and traces.
func (s Step) String() string {
	switch s {
	case StepNewHeight:
		return "new-height"
	case StepPropose:
		return "propose"
	case StepPrevote:
		return "prevote"
	case StepPrecommit:
		return "precommit"
	case StepDecided:
		return "decided"
	}
	return fmt.Sprintf("Step(%d)", uint8(s))
}

// TimeoutKind names one of the three round timeouts.
type TimeoutKind uint8

// The timeouts of Algorithm 1.
const (
	TimeoutPropose   TimeoutKind = 1 // L57
	TimeoutPrevote   TimeoutKind = 2 // L61
	TimeoutPrecommit TimeoutKind = 3 // L65
)

func (k TimeoutKind) valid() bool { return k >= TimeoutPropose && k <= TimeoutPrecommit }

// String renders the TimeoutKind in one line, for logs and traces.
func (k TimeoutKind) String() string {
	switch k {
	case TimeoutPropose:
		return "propose"
	case TimeoutPrevote:
		return "prevote"
	case TimeoutPrecommit:
		return "precommit"
	}
	return fmt.Sprintf("TimeoutKind(%d)", uint8(k))
}

// TimeoutDuration is how long the driver waits before delivering a timeout
// of kind k in round: base + round*delta from the chain's genesis
// parameters. The machine itself never sees durations.
func TimeoutDuration(p ledger.ConsensusParams, k TimeoutKind, round uint32) time.Duration {
	switch k {
	case TimeoutPropose:
		return p.TimeoutPropose.For(round)
	case TimeoutPrevote:
		return p.TimeoutPrevote.For(round)
	case TimeoutPrecommit:
		return p.TimeoutPrecommit.For(round)
	}
	panic(fmt.Sprintf("consensus: unknown timeout kind %d", k))
}

// Bounds on what the machine stores for messages that run ahead.
const (
	// MaxFutureRounds is how many distinct rounds above the current one a
	// single validator's messages may occupy; more are refused until the
	// machine catches up. Honest validators move one round at a time, so
	// this only limits a faulty validator's ability to make us allocate.
	MaxFutureRounds = 2
	// MaxProposalsPerRound is how many distinct proposals a round keeps
	// from its proposer (more than one means the proposer equivocated)
	// unless some vote of that round names the extra value.
	MaxProposalsPerRound = 2
	// MaxVoteValues is how many different values the vote keeper keeps
	// and counts of one validator for one round and vote type (more than
	// one means the validator equivocated). The first
	// MaxUnbackedVoteValues are kept whatever they name; the others only
	// for a value backed by more than a third of the power: validators
	// other than the signer whose first vote of the round and type names
	// it. Each validator's first vote backs one value, so at most two
	// values are ever backed in a round and type, and those two places
	// are never taken by anything else (see VoteKeeper).
	MaxVoteValues = MaxUnbackedVoteValues + 2
	// MaxUnbackedVoteValues is how many different values of one
	// validator, round and type the keeper keeps unconditionally.
	MaxUnbackedVoteValues = 3
)

// Errors Step returns for events it refuses. A refused event changes
// nothing. Drivers compare with errors.Is; ErrStale and ErrDuplicate are
// routine and deserve no more than a debug log.
var (
	// ErrStale: the event is for a height, round or step already left
	// behind, or answers a request no longer pending.
	ErrStale = errors.New("consensus: stale event")
	// ErrDuplicate: the machine already holds this message, or as many
	// conflicting votes of its signer as it keeps (MaxVoteValues).
	ErrDuplicate = errors.New("consensus: duplicate message")
	// ErrTooFarAhead: the event is more than one height ahead, or its
	// sender exceeded MaxFutureRounds or MaxProposalsPerRound.
	ErrTooFarAhead = errors.New("consensus: message too far ahead")
	// ErrNotValidator: the signer is not in the validator set.
	ErrNotValidator = errors.New("consensus: signer is not a validator")
	// ErrWrongProposer: the proposal is not from the round's proposer.
	ErrWrongProposer = errors.New("consensus: proposal not from the round's proposer")
	// ErrMalformed: the event is inconsistent in itself.
	ErrMalformed = errors.New("consensus: malformed event")
	// ErrHeightSequence: EventNewHeight skips a height or comes before
	// the current height is decided.
	ErrHeightSequence = errors.New("consensus: height started out of sequence")
)

// nilID is the block ID of a vote for nil.
var nilID = crypto.Hash{}
