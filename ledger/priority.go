package ledger

import (
	"errors"
	"fmt"
	"math"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/wire"
)

// Proposer selection with carried-over priorities, CometBFT's algorithm.
//
// Every member of the set deciding height h has a priority; P_h are the
// priorities at the start of h. One increment adds each member's power to
// its priority, then the member with the highest priority (ties to the
// lower address, the lower set index) is the proposer chosen by that
// increment and loses the total power. Increments keep the sum of the
// priorities, so over any run a member is chosen in proportion to its
// power, and its debt of T after a turn spreads its turns evenly.
//
// The proposer of (h, r) is the one chosen by increment r+1 from
// normalize(P_h): round 0 takes one increment, as in CometBFT, where the
// proposer of round 0 is the one the set's last increment chose. The next
// height starts from that one increment, whatever the number of rounds
// height h took (CometBFT: once per block, not per round), with the set
// changes applied:
//
//	P_{h+1} = normalize(update(increment(normalize(P_h)), set(h) -> set(h+1)))
//
// update keeps the priority of a member of both sets (with its new power),
// drops removed members, and gives a new member -1.125 * T', T' being the
// total power of the new set plus that of the removed members (CometBFT's
// total "after updates, before removals"), so that leaving and rejoining
// never clears a debt. normalize divides every priority by the smallest
// integer that brings max-min within 2T (T the set's total power), then
// subtracts the floor of the mean. The genesis set starts at zero.
//
// Bounds: a normalized vector has max-min <= 2T and, its mean lying in
// [0, 1), every |p| <= 2T <= 2^61. An increment never makes the least
// priority smaller than min(least, -T) (only the highest one loses T, and
// it is at least the mean after the additions, which is positive), and
// the sum is constant; at MaxTotalVotingPower the tests see every
// priority stay within ±1.04T over thousands of rounds, an eighth of the
// int64 range. The arithmetic saturates all the same (CometBFT's
// safeAddClip), so that no input can make it wrap.

// priorityWindow is CometBFT's PriorityWindowSizeFactor: normalized
// priorities span at most priorityWindow times the total power.
const priorityWindow = 2

// ProposerPriorities are the proposer priorities of a validator set at the
// start of one height, P_h, indexed like the set. A value is immutable.
type ProposerPriorities struct {
	vals *ValidatorSet
	prio []int64
}

// GenesisPriorities returns the priorities of the first height: zero for
// every member of vals.
func GenesisPriorities(vals *ValidatorSet) *ProposerPriorities {
	return &ProposerPriorities{vals: vals, prio: make([]int64, vals.Size())}
}

// NewProposerPriorities returns prio (copied) as the priorities of vals.
// It fails unless there is one priority per member, each within the bound
// normalized priorities keep (|p| <= 2 * total power).
func NewProposerPriorities(vals *ValidatorSet, prio []int64) (*ProposerPriorities, error) {
	if vals == nil || vals.Size() == 0 {
		return nil, errors.New("proposer priorities: no validator set")
	}
	if len(prio) != vals.Size() {
		return nil, fmt.Errorf("proposer priorities: %d priorities for %d validators", len(prio), vals.Size())
	}
	bound := priorityBound(vals)
	for i, p := range prio {
		if p > bound || p < -bound {
			return nil, fmt.Errorf("proposer priorities: validator %d has priority %d, outside ±%d", i, p, bound)
		}
	}
	return &ProposerPriorities{vals: vals, prio: append([]int64(nil), prio...)}, nil
}

// priorityBound is the largest |p| of normalized priorities of vals.
func priorityBound(vals *ValidatorSet) int64 {
	return priorityWindow * int64(vals.TotalPower())
}

// Validators is the set the priorities belong to.
func (p *ProposerPriorities) Validators() *ValidatorSet { return p.vals }

// Priority returns the priority of the member at set index i.
func (p *ProposerPriorities) Priority(i int) int64 { return p.prio[i] }

// Priorities returns a copy of the priorities, by set index.
func (p *ProposerPriorities) Priorities() []int64 { return append([]int64(nil), p.prio...) }

// Equal reports whether p and o hold the same priorities for sets with the
// same members and powers.
func (p *ProposerPriorities) Equal(o *ProposerPriorities) bool {
	if p == o {
		return true
	}
	if p == nil || o == nil || p.vals.Hash() != o.vals.Hash() || len(p.prio) != len(o.prio) {
		return false
	}
	for i := range p.prio {
		if p.prio[i] != o.prio[i] {
			return false
		}
	}
	return true
}

// Rounds returns the proposers of the height's rounds, in order.
func (p *ProposerPriorities) Rounds() *ProposerRounds {
	q := append([]int64(nil), p.prio...)
	normalize(q, p.vals)
	return &ProposerRounds{prio: q, powers: powersOf(p.vals), total: int64(p.vals.total)}
}

// powersOf returns the members' powers by set index.
func powersOf(vals *ValidatorSet) []int64 {
	w := make([]int64, len(vals.vals))
	for i := range vals.vals {
		w[i] = int64(vals.vals[i].Power)
	}
	return w
}

// Proposer returns the set index of the proposer of round r. It costs r+1
// increments; a caller that asks for many rounds keeps a ProposerRounds.
func (p *ProposerPriorities) Proposer(r uint32) int {
	it := p.Rounds()
	var i int
	for k := uint64(0); k <= uint64(r); k++ {
		i = it.Next()
	}
	return i
}

// Next returns P_{h+1}, the priorities of next (the set of the next
// height, which may be the same set) after height h with priorities p.
func (p *ProposerPriorities) Next(next *ValidatorSet) *ProposerPriorities {
	q := append([]int64(nil), p.prio...)
	normalize(q, p.vals)
	increment(q, powersOf(p.vals), int64(p.vals.total))
	out := &ProposerPriorities{vals: next, prio: make([]int64, next.Size())}
	if next == p.vals || next.Hash() == p.vals.Hash() {
		copy(out.prio, q)
		normalize(out.prio, next)
		return out
	}
	// T' is the new total plus the power of the removed members: at most
	// 2 * MaxTotalVotingPower, so -1.125 * T' fits in an int64.
	joined := next.TotalPower()
	for i := range p.vals.Size() {
		if _, ok := next.ByAddress(p.vals.Get(i).Address()); !ok {
			joined += p.vals.Get(i).Power
		}
	}
	fresh := -int64(joined + joined>>3)
	for i := range next.Size() {
		if j, ok := p.vals.ByAddress(next.Get(i).Address()); ok {
			out.prio[i] = q[j]
		} else {
			out.prio[i] = fresh
		}
	}
	normalize(out.prio, next)
	return out
}

// ProposerRounds runs the increments of one height: each Next is the
// proposer of the next round, from round 0. It is not safe for concurrent
// use.
type ProposerRounds struct {
	prio   []int64
	powers []int64
	total  int64
	round  uint64 // rounds returned so far
}

// Next returns the set index of the proposer of the next round.
func (r *ProposerRounds) Next() int {
	r.round++
	return increment(r.prio, r.powers, r.total)
}

// Done is the number of rounds Next has returned.
func (r *ProposerRounds) Done() uint64 { return r.round }

// increment adds every member's power (w, by set index) to its priority
// and takes the total from the highest (ties to the lower index), whose
// index it returns.
func increment(p, w []int64, total int64) int {
	best := 0
	w = w[:len(p)]
	for i := range p {
		p[i] = addClip(p[i], w[i])
		if p[i] > p[best] {
			best = i
		}
	}
	p[best] = subClip(p[best], total)
	return best
}

// normalize rescales p so that max-min <= 2T, dividing by the smallest
// integer that does it (truncating toward zero, like CometBFT), then
// subtracts the floor of the mean. Every |p[i]| must be at most 2^62,
// which the callers' inputs are (see the bounds above).
func normalize(p []int64, vals *ValidatorSet) {
	if len(p) == 0 {
		return
	}
	lo, hi := p[0], p[0]
	for _, v := range p[1:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	window := priorityWindow * int64(vals.total)
	if diff := hi - lo; diff > window {
		ratio := diff / window
		if diff%window != 0 {
			ratio++
		}
		for i := range p {
			p[i] /= ratio
		}
	}
	var mean int64
	if hi <= 1<<52 && lo >= -1<<52 { // rescaling only shrank them; MaxValidators * 2^52 < 2^63
		var sum int64
		for _, v := range p {
			sum += v
		}
		n := int64(len(p))
		mean = sum / n
		if sum%n < 0 {
			mean--
		}
	} else {
		mean = floorMean(p)
	}
	for i := range p {
		p[i] = subClip(p[i], mean)
	}
}

// floorMean is floor(sum(p) / len(p)) without overflow for |p[i]| <= 2^62
// and len(p) <= MaxValidators: the sum of the floored quotients plus the
// floored mean of the remainders.
func floorMean(p []int64) int64 {
	n := int64(len(p))
	var quo, rem int64
	for _, v := range p {
		q, r := v/n, v%n
		if r < 0 {
			q, r = q-1, r+n
		}
		quo += q
		rem += r
	}
	return quo + rem/n
}

func addClip(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	if b < 0 && a < math.MinInt64-b {
		return math.MinInt64
	}
	return a + b
}

func subClip(a, b int64) int64 {
	if b > 0 && a < math.MinInt64+b {
		return math.MinInt64
	}
	if b < 0 && a > math.MaxInt64+b {
		return math.MaxInt64
	}
	return a - b
}

// proposerPrioritiesVersion is the encoding version of ProposerPriorities.
const proposerPrioritiesVersion = 1

// Encode returns the canonical encoding: the set's hash (to pair the
// priorities with their set on decoding), the count, and each priority as
// a big-endian two's-complement int64.
func (p *ProposerPriorities) Encode() []byte {
	e := wire.NewWriter(make([]byte, 0, 1+crypto.HashSize+2+8*len(p.prio)))
	e.U8(proposerPrioritiesVersion)
	h := p.vals.Hash()
	e.Fixed(h[:])
	e.Uvarint(uint64(len(p.prio)))
	for _, v := range p.prio {
		e.I64(v)
	}
	return e.Bytes()
}

// DecodeProposerPriorities decodes the priorities of vals: the encoding
// must name vals by hash, hold one priority per member, and keep each
// within the bound NewProposerPriorities checks.
func DecodeProposerPriorities(vals *ValidatorSet, b []byte) (*ProposerPriorities, error) {
	if vals == nil {
		return nil, errors.New("decode proposer priorities: no validator set")
	}
	d := wire.NewReader(b)
	d.Version("proposer priorities", proposerPrioritiesVersion)
	var h crypto.Hash
	d.Fixed(h[:])
	n := d.Count("priorities", MaxValidators, 8)
	prio := make([]int64, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		prio = append(prio, d.I64())
	}
	if err := d.Finish("proposer priorities"); err != nil {
		return nil, err
	}
	if h != vals.Hash() {
		return nil, fmt.Errorf("decode proposer priorities: they belong to validator set %s, not %s", h, vals.Hash())
	}
	p, err := NewProposerPriorities(vals, prio)
	if err != nil {
		return nil, fmt.Errorf("decode %w", err)
	}
	return p, nil
}
