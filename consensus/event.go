package consensus

import (
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// Event is an input to the machine. The set of events is closed: the
// types in this file are all there are, and each has a canonical binary
// encoding (EncodeEvent) for the write-ahead log.
type Event interface {
	fmt.Stringer
	isEvent()
}

// EventNewHeight starts Height: the first height of a new Machine, or the
// height after the one just decided. The paper's "upon start do
// StartRound(0)" and the height increment of L52-L54.
type EventNewHeight struct {
	Height uint64
}

// EventProposal is a signature-verified proposal together with the block it
// names (assembled from its parts by the driver).
type EventProposal struct {
	Proposal *ledger.Proposal
	Block    *ledger.Block
}

// EventVote is a signature-verified prevote or precommit, the machine's own
// included (fed back by the driver after signing).
type EventVote struct {
	Vote *ledger.Vote
}

// EventTimeout reports that the timer of an EffectScheduleTimeout fired.
type EventTimeout struct {
	Height uint64
	Round  uint32
	Kind   TimeoutKind
}

// EventProposeValue answers EffectRequestValue: the block the driver built
// for Height and Round (the paper's getValue()).
type EventProposeValue struct {
	Height uint64
	Round  uint32
	Block  *ledger.Block
}

func (EventNewHeight) isEvent()    {}
func (EventProposal) isEvent()     {}
func (EventVote) isEvent()         {}
func (EventTimeout) isEvent()      {}
func (EventProposeValue) isEvent() {}

// String renders the EventNewHeight in one line, for logs and traces.
func (e EventNewHeight) String() string { return fmt.Sprintf("new-height h=%d", e.Height) }

// String renders the EventProposal in one line, for logs and traces.
func (e EventProposal) String() string {
	if e.Proposal == nil {
		return "proposal <nil>"
	}
	p := e.Proposal
	return fmt.Sprintf("proposal h=%d r=%d pol=%d %s from %s", p.Height, p.Round, p.POLRound, ShortID(p.BlockID), ShortAddr(p.Proposer))
}

// String renders the EventVote in one line, for logs and traces.
func (e EventVote) String() string {
	if e.Vote == nil {
		return "vote <nil>"
	}
	return VoteString(e.Vote)
}

// String renders the EventTimeout in one line, for logs and traces.
func (e EventTimeout) String() string {
	return fmt.Sprintf("timeout %s h=%d r=%d", e.Kind, e.Height, e.Round)
}

// String renders the EventProposeValue in one line, for logs and traces.
func (e EventProposeValue) String() string {
	id := crypto.Hash{}
	if e.Block != nil {
		id = e.Block.Hash()
	}
	return fmt.Sprintf("propose-value h=%d r=%d %s", e.Height, e.Round, ShortID(id))
}

// VoteString renders a vote in one line for logs and traces.
func VoteString(v *ledger.Vote) string {
	return fmt.Sprintf("%s h=%d r=%d %s from %s", v.Type, v.Height, v.Round, ShortID(v.BlockID), ShortAddr(v.Validator))
}

// ShortID renders a block ID as its first four bytes in hex, or "nil".
func ShortID(id crypto.Hash) string {
	if id.IsZero() {
		return "nil"
	}
	return fmt.Sprintf("%x", id[:4])
}

// ShortAddr renders an address as its first four bytes in hex.
func ShortAddr(a crypto.Address) string { return fmt.Sprintf("%x", a[:4]) }

// EventHeight returns the height ev belongs to, under which the driver
// logs it (zero for an event missing its message).
func EventHeight(ev Event) uint64 {
	switch e := ev.(type) {
	case EventNewHeight:
		return e.Height
	case EventProposal:
		if e.Proposal != nil {
			return e.Proposal.Height
		}
	case EventVote:
		if e.Vote != nil {
			return e.Vote.Height
		}
	case EventTimeout:
		return e.Height
	case EventProposeValue:
		return e.Height
	}
	return 0
}
