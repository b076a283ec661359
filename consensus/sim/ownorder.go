package sim

import (
	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/ledger"
)

// The own-order oracle checks the driver's contract on own messages on
// every honest node: a vote the driver signs and sends is fed back to its
// machine after the input that caused it, before any later input, and in
// the order the votes were signed. Sent votes wait in node.unfed until the
// machine holds them. (A wrong order need not break agreement or
// liveness, which is why the other checks cannot see it; but the WAL, and
// so every replay, records inputs in the order the machine took them.)

// holds reports whether the machine holds own vote v, or v's height is
// behind it (a vote fed back after its height ended is dropped as stale).
func (n *node) holds(v *ledger.Vote) bool {
	m := n.core.Machine()
	if v.Height < m.Height() {
		return true
	}
	for _, h := range m.VotesFor(v.Height, v.Round, v.Type, v.BlockID) {
		if h.Validator == v.Validator {
			return true
		}
	}
	return false
}

// checkOwnOrder runs when the machine accepts vote v: if it is an own
// vote, every own vote sent before it must be held already.
func (n *node) checkOwnOrder(v *ledger.Vote) {
	if !n.honest || v.Validator != n.addr || len(n.unfed) == 0 {
		return
	}
	n.s.stats.Checks[InvOwnOrder]++
	for i, u := range n.unfed {
		if u.Height == v.Height && u.Round == v.Round && u.Type == v.Type {
			n.unfed = n.unfed[i+1:]
			return
		}
		if !n.holds(u) {
			n.s.check.fail(InvOwnOrder, n, "own %s h=%d r=%d fed back before own %s h=%d r=%d, signed earlier",
				v.Type, v.Height, v.Round, u.Type, u.Height, u.Round)
			return
		}
	}
}

// checkFedBack runs before an input from outside the driver (a message,
// a timer, a new height): every own vote sent so far must be held.
func (n *node) checkFedBack(ev consensus.Event) {
	if !n.honest || len(n.unfed) == 0 || n.core == nil || n.core.Stopped() {
		return
	}
	n.s.stats.Checks[InvOwnOrder]++
	for _, u := range n.unfed {
		if !n.holds(u) {
			n.s.check.fail(InvOwnOrder, n, "%s comes in before own %s h=%d r=%d was fed back", ev, u.Type, u.Height, u.Round)
			return
		}
	}
	n.unfed = n.unfed[:0]
}
