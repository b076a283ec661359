package consensus

import (
	"container/heap"
	"math/bits"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// sainteLague is the proposer selector this package had before carried-over
// priorities (issue 11), kept only so that the fairness test can show it
// fails across set changes: a pure function of one set, the Sainte-Laguë
// (Webster) order with height h, round r taking slot (h-1)+r. With a fixed
// set it is exactly proportional over every window of T slots; when the set
// changes, the order restarts from another point of another cycle, so the
// turns a validator was owed are forgotten.
type sainteLague struct {
	vals    *ledger.ValidatorSet
	weights []uint64
	total   uint64
}

// newSainteLague returns the old selector for vals.
func newSainteLague(vals *ledger.ValidatorSet) *sainteLague {
	s := &sainteLague{vals: vals, weights: make([]uint64, vals.Size()), total: vals.TotalPower()}
	for i := range s.weights {
		s.weights[i] = vals.Get(i).Power
	}
	return s
}

// Index returns the validator-set index of the proposer of (height, round).
func (s *sainteLague) Index(height uint64, round uint32) int {
	// Slot (height-1)+round, reduced modulo the period T. T < 2^61, so
	// the sum of the two residues cannot overflow.
	h := height
	if h > 0 {
		h--
	}
	o := (h%s.total + uint64(round)%s.total) % s.total
	return s.slot(o)
}

// Proposer returns the address of the proposer of (height, round).
func (s *sainteLague) Proposer(height uint64, round uint32) crypto.Address {
	return s.vals.Get(s.Index(height, round)).Address()
}

// slot returns the validator holding slot o (0 <= o < total) of the cycle.
//
// The slots with time <= x number floor(x*w_i + 1/2) for validator i, and
// form a prefix of the sequence. Taking x = q/T with q = max(0, o-n) counts
// m <= o slots; the rest are popped from a heap of each validator's next
// slot, at most 3n/2+1 pops.
func (s *sainteLague) slot(o uint64) int {
	n := uint64(len(s.weights))
	var q uint64
	if o > n {
		q = o - n
	}
	h := slotHeap{w: s.weights, items: make([]slotItem, 0, len(s.weights))}
	var m uint64
	for i, w := range s.weights {
		c := halfUpDiv(q, w, s.total) // floor((2qw + T) / 2T)
		m += c
		h.items = append(h.items, slotItem{i: i, j: c})
	}
	heap.Init(&h)
	for {
		top := &h.items[0]
		if m == o {
			return top.i
		}
		m++
		top.j++
		heap.Fix(&h, 0)
	}
}

// halfUpDiv is floor((2*q*w + t) / (2*t)) computed in 128 bits; q < t and
// w, t < 2^61 keep every intermediate in range.
func halfUpDiv(q, w, t uint64) uint64 {
	hi, lo := bits.Mul64(q, w)
	hi = hi<<1 | lo>>63
	lo <<= 1
	var c uint64
	lo, c = bits.Add64(lo, t, 0)
	hi += c
	quo, _ := bits.Div64(hi, lo, 2*t)
	return quo
}

// slotItem is validator i's next slot, number j (time (2j+1)/(2w_i)).
type slotItem struct {
	i int
	j uint64
}

type slotHeap struct {
	w     []uint64
	items []slotItem
}

func (h *slotHeap) Len() int { return len(h.items) }

// Less orders slots by time, (2j+1)/w_i, then by validator index.
func (h *slotHeap) Less(a, b int) bool {
	x, y := h.items[a], h.items[b]
	xh, xl := bits.Mul64(2*x.j+1, h.w[y.i])
	yh, yl := bits.Mul64(2*y.j+1, h.w[x.i])
	if xh != yh {
		return xh < yh
	}
	if xl != yl {
		return xl < yl
	}
	return x.i < y.i
}

func (h *slotHeap) Swap(a, b int) { h.items[a], h.items[b] = h.items[b], h.items[a] }
func (h *slotHeap) Push(x any)    { h.items = append(h.items, x.(slotItem)) }
func (h *slotHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}
