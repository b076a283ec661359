package mempool

import (
	"sync/atomic"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// EventKind says what happened to a transaction; kinds combine as a mask
// when subscribing.
type EventKind uint8

// The kinds of events.
const (
	// EventAdmitted: the transaction entered the pool (the node gossips it).
	EventAdmitted EventKind = 1 << iota
	// EventRemoved: the transaction left the pool; Event.Reason says why.
	EventRemoved
)

// Event is one change to the pool. Tx must not be modified.
type Event struct {
	Kind   EventKind
	Tx     *ledger.Tx
	Hash   crypto.Hash
	Reason Code // for EventRemoved: Committed, Replaced, Evicted, Expired, NonceTooLow, InsufficientFunds or SenderLimit
}

// Subscription delivers pool events in the order they happened. The pool
// never blocks on a subscriber: an event that finds the buffer full is
// dropped and counted.
type Subscription struct {
	m       *Mempool
	kinds   EventKind
	ch      chan Event
	dropped atomic.Uint64
	closed  bool // guarded by m.mu
}

// Subscribe returns a subscription to the events of the given kinds, with
// room for buffer undelivered events (at least 1).
func (m *Mempool) Subscribe(buffer int, kinds EventKind) *Subscription {
	if buffer < 1 {
		buffer = 1
	}
	sub := &Subscription{m: m, kinds: kinds, ch: make(chan Event, buffer)}
	m.mu.Lock()
	m.subs = append(m.subs, sub)
	m.mu.Unlock()
	return sub
}

// C returns the channel events arrive on; Close closes it.
func (s *Subscription) C() <-chan Event { return s.ch }

// Dropped returns how many events were lost because the buffer was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and closes C. It is safe to call twice.
func (s *Subscription) Close() {
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for i, x := range m.subs {
		if x == s {
			m.subs = append(m.subs[:i:i], m.subs[i+1:]...)
			break
		}
	}
	close(s.ch)
}

// emit delivers ev to every interested subscriber without blocking.
// The caller holds m.mu for writing.
func (m *Mempool) emit(ev Event) {
	for _, s := range m.subs {
		if s.kinds&ev.Kind == 0 {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			s.dropped.Add(1)
		}
	}
}
