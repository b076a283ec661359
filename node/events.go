package node

import (
	"sync"

	"github.com/ledgerd/ledgerd/ledger"
)

// BlockEvent announces a committed block.
type BlockEvent struct {
	Block  *ledger.Block
	Commit *ledger.Commit
	Result *ledger.Result
}

// Subscription delivers committed blocks in order. A subscriber that falls
// more than its buffer behind is dropped: its channel is closed and
// Dropped reports true, so a slow reader can never stall the node.
type Subscription struct {
	c       chan BlockEvent
	hub     *eventHub
	dropped bool
}

// C is the channel of events; it is closed when the subscription ends.
func (s *Subscription) C() <-chan BlockEvent { return s.c }

// Dropped reports whether the subscription ended because the reader was too slow.
func (s *Subscription) Dropped() bool {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.dropped
}

// Close ends the subscription.
func (s *Subscription) Close() { s.hub.remove(s, false) }

// maxSubscriptions bounds the subscriptions a node serves at once.
const maxSubscriptions = 4096

type eventHub struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

func newEventHub() *eventHub { return &eventHub{subs: make(map[*Subscription]struct{})} }

// subscribe returns a subscription with the given buffer, or nil when the
// node already serves maxSubscriptions.
func (h *eventHub) subscribe(buffer int) *Subscription {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= maxSubscriptions {
		return nil
	}
	s := &Subscription{c: make(chan BlockEvent, max(buffer, 1)), hub: h}
	h.subs[s] = struct{}{}
	return s
}

func (h *eventHub) remove(s *Subscription, slow bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(s, slow)
}

func (h *eventHub) removeLocked(s *Subscription, slow bool) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	s.dropped = slow
	close(s.c)
}

// publish delivers ev to every subscriber without blocking.
func (h *eventHub) publish(ev BlockEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.c <- ev:
		default:
			h.removeLocked(s, true)
		}
	}
}
