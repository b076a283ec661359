package node

import (
	"container/heap"
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

// timerQueue is a min-heap of timer entries by deadline. It is bounded by
// the machine itself: at most one timeout per kind per round it is in.
type timerQueue []*timerEntry

func (q timerQueue) Len() int { return len(q) }
func (q timerQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q timerQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *timerQueue) Push(x any)   { *q = append(*q, x.(*timerEntry)) }
func (q *timerQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// timers is the driver's schedule, served by one Timer of the Clock.
type timers struct {
	clock Clock
	q     timerQueue
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
	heap.Push(&ts.q, e)
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
	var out []*timerEntry
	for len(ts.q) > 0 && !ts.q[0].at.After(now) {
		out = append(out, heap.Pop(&ts.q).(*timerEntry))
	}
	ts.arm()
	return out
}

// clear drops every entry (a new machine after block sync).
func (ts *timers) clear() {
	ts.q = ts.q[:0]
	ts.t.Stop()
}
