package node

import (
	"cmp"
	"slices"
	"time"

	"github.com/ledgerd/ledgerd/consensus"
)

// timerEntry is one scheduled driver input: a consensus timeout, or the
// start of the next height (ev == nil, height set).
type timerEntry struct {
	at     time.Time
	ev     consensus.Event
	height uint64 // for the start of a height
	seq    uint64 // FIFO among equal deadlines
}

// The schedule is bounded by the machine itself: at most one timeout per
// kind per round it is in, and the start of one height. A slice kept in
// deadline order (FIFO among equal deadlines) serves it.

// timers is the driver's schedule, served by one Timer of the Clock.
type timers struct {
	clock Clock
	q     []*timerEntry // by (at, seq)
	t     Timer
	seq   uint64
}

func newTimers(c Clock) *timers {
	t := c.NewTimer(time.Hour)
	t.Stop()
	return &timers{clock: c, t: t}
}

func (ts *timers) add(at time.Time, e *timerEntry) {
	ts.seq++
	e.at, e.seq = at, ts.seq
	i, _ := slices.BinarySearchFunc(ts.q, e, func(a, b *timerEntry) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	ts.q = slices.Insert(ts.q, i, e)
	ts.arm()
}

// arm programs the timer for the earliest entry.
func (ts *timers) arm() {
	if len(ts.q) == 0 {
		ts.t.Stop()
		return
	}
	ts.t.Reset(max(ts.q[0].at.Sub(ts.clock.Now()), 0))
}

// due pops every entry whose deadline has passed.
func (ts *timers) due() []*timerEntry {
	now := ts.clock.Now()
	n := 0
	for n < len(ts.q) && !ts.q[n].at.After(now) {
		n++
	}
	out := slices.Clone(ts.q[:n])
	ts.q = slices.Delete(ts.q, 0, n)
	ts.arm()
	return out
}

// clear drops every entry (a new machine after block sync).
func (ts *timers) clear() {
	ts.q = ts.q[:0]
	ts.t.Stop()
}
