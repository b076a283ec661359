package consensus

import (
	"time"

	"github.com/ledgerd/ledgerd/ledger"
)

// MaxPaceCarry bounds how many rounds of timeout growth a Pacer carries
// from one height into the next: with the default parameters the first
// propose timeout of a height is then at most 1 s + 10 x 0.5 s.
const MaxPaceCarry = 10

// Pacer carries round-timeout growth across heights, so that a network
// slower than the chain's base timeouts stops paying for the same failed
// rounds at every height.
//
// Timeouts grow with the round within a height (base + round*delta), which
// is what makes a height decide once they exceed the message delay; but
// they start again at round 0's value at the next height. On a network
// whose delays exceed the base timeouts, every height then spends the same
// failed rounds before reaching one long enough to decide (the simulator's
// churn runs at up to 600 ms one way against a 300 ms propose timeout
// decided heights at rounds 2 to 4, 3.4 s a height). A Pacer remembers the
// rounds it took: a height decided at round r >= 2 raises the carry by
// r-1, a height decided at round 0 lowers it by one, round 1 leaves it,
// and timeouts of round r are those of round r+carry. One failed round
// (a crashed or lagging proposer) therefore costs nothing at the next
// height, and the carry falls back to zero once heights decide at round 0
// again.
//
// Only how long a node waits changes, never what it may sign or accept:
// timeouts play no part in safety, and a Pacer is host state (it starts
// at zero after a restart). It is pure and deterministic; the node and
// the simulator each hold one.
type Pacer struct{ carry uint32 }

// Decided records that a height was decided at round.
func (p *Pacer) Decided(round uint32) {
	switch {
	case round == 0 && p.carry > 0:
		p.carry--
	case round >= 2:
		p.carry = min(p.carry+round-1, MaxPaceCarry)
	}
}

// Carry is the number of rounds of growth the next timeouts start from.
func (p *Pacer) Carry() uint32 { return p.carry }

// Duration is TimeoutDuration for round plus the carried rounds.
func (p *Pacer) Duration(params ledger.ConsensusParams, k TimeoutKind, round uint32) time.Duration {
	return TimeoutDuration(params, k, round+p.carry)
}
