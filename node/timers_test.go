package node

import (
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/consensus"
)

// stepClock is a Clock whose time moves only when the test says.
type stepClock struct{ now time.Time }

func (c *stepClock) Now() time.Time                 { return c.now }
func (c *stepClock) NewTimer(d time.Duration) Timer { return &stepTimer{} }

type stepTimer struct{ c chan time.Time }

func (t *stepTimer) C() <-chan time.Time   { return t.c }
func (t *stepTimer) Reset(d time.Duration) {}
func (t *stepTimer) Stop()                 {}

// TestTimersServeByDeadlineThenArrival: due returns what has come due, by
// deadline, entries of equal deadline in the order they were added, and
// keeps the rest.
func TestTimersServeByDeadlineThenArrival(t *testing.T) {
	c := &stepClock{now: time.Unix(1000, 0)}
	ts := newTimers(c)
	at := func(ms int) time.Time { return c.now.Add(time.Duration(ms) * time.Millisecond) }
	ts.add(at(30), &timerEntry{height: 3})
	ts.add(at(10), &timerEntry{height: 1})
	ts.add(at(20), &timerEntry{height: 21})
	ts.add(at(20), &timerEntry{height: 22})
	ts.add(at(50), &timerEntry{ev: consensus.EventTimeout{Height: 5}})
	if got := ts.due(); len(got) != 0 {
		t.Fatalf("%d entries due before any deadline", len(got))
	}
	c.now = at(30)
	var got []uint64
	for _, e := range ts.due() {
		got = append(got, e.height)
	}
	want := []uint64{1, 21, 22, 3}
	if len(got) != len(want) {
		t.Fatalf("due at 30ms: %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("due at 30ms: %v, want %v", got, want)
		}
	}
	c.now = at(60)
	if rest := ts.due(); len(rest) != 1 || rest[0].ev == nil {
		t.Fatalf("the 50ms timeout was not kept: %v", rest)
	}
	ts.add(at(70), &timerEntry{height: 7})
	ts.clear()
	c.now = at(100)
	if got := ts.due(); len(got) != 0 {
		t.Fatalf("%d entries due after clear", len(got))
	}
}
