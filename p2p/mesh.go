package p2p

import (
	"log/slog"
	"sync"
	"sync/atomic"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// meshTracker follows gossipsub's mesh (which peers each topic forwards to
// at once) and counts what pubsub drops: RPCs to a peer whose outbound
// queue is full, and deliveries to this node's handler that a slow handler
// could not take. Its methods run on pubsub's event loop and only take a
// short lock.
type meshTracker struct {
	log *slog.Logger

	mu      sync.Mutex
	mesh    map[string]map[peer.ID]struct{}
	changed chan struct{} // closed and replaced on every mesh change

	droppedRPCs       atomic.Int64
	undeliverableMsgs atomic.Int64
}

var _ pubsub.RawTracer = (*meshTracker)(nil)

func newMeshTracker(log *slog.Logger) *meshTracker {
	return &meshTracker{log: log, mesh: make(map[string]map[peer.ID]struct{}), changed: make(chan struct{})}
}

// peers returns the mesh peers of topic and a channel closed on the next
// change of any mesh.
func (m *meshTracker) peers(topic string) ([]peer.ID, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]peer.ID, 0, len(m.mesh[topic]))
	for p := range m.mesh[topic] {
		out = append(out, p)
	}
	return out, m.changed
}

func (m *meshTracker) notify() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// Graft records p joining topic's mesh.
func (m *meshTracker) Graft(p peer.ID, topic string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mesh[topic] == nil {
		m.mesh[topic] = make(map[peer.ID]struct{})
	}
	m.mesh[topic][p] = struct{}{}
	m.notify()
}

// Prune records p leaving topic's mesh.
func (m *meshTracker) Prune(p peer.ID, topic string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.mesh[topic], p)
	m.notify()
}

// OnClosedOutboundStream records p leaving every mesh.
func (m *meshTracker) OnClosedOutboundStream(p peer.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ps := range m.mesh {
		delete(ps, p)
	}
	m.notify()
}

// Leave forgets topic's mesh.
func (m *meshTracker) Leave(topic string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.mesh, topic)
	m.notify()
}

// DropRPC counts an RPC dropped because p's outbound queue was full.
func (m *meshTracker) DropRPC(_ *pubsub.RPC, p peer.ID) {
	if n := m.droppedRPCs.Add(1); n&(n-1) == 0 { // log at powers of two
		m.log.Warn("gossip: dropped RPCs to slow peers", "peer", p, "total", n)
	}
}

// UndeliverableMessage counts a message the handler was too slow to take.
func (m *meshTracker) UndeliverableMessage(msg *pubsub.Message) {
	if n := m.undeliverableMsgs.Add(1); n&(n-1) == 0 {
		m.log.Warn("gossip: handler too slow, dropped deliveries", "topic", msg.GetTopic(), "total", n)
	}
}

// The remaining events are of no interest.

func (m *meshTracker) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (m *meshTracker) Join(string)                              {}
func (m *meshTracker) ValidateMessage(*pubsub.Message)          {}
func (m *meshTracker) DeliverMessage(*pubsub.Message)           {}
func (m *meshTracker) RejectMessage(*pubsub.Message, string)    {}
func (m *meshTracker) DuplicateMessage(*pubsub.Message)         {}
func (m *meshTracker) ThrottlePeer(peer.ID)                     {}
func (m *meshTracker) RecvRPC(*pubsub.RPC)                      {}
func (m *meshTracker) SendRPC(*pubsub.RPC, peer.ID)             {}
