package p2p

import (
	"bufio"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The status protocol: the dialler writes one status frame and closes its
// side; the listener records it, answers with its own and closes. A status
// is the sender's latest committed height:
//
//	version (1) | latest height (8, big-endian)
const (
	statusProtocol = "status"
	statusVersion  = 1
	statusBytes    = 1 + 8
	statusWorkers  = 2
	statusTimeout  = 5 * time.Second
	chainPeerValue = 100 // connection-manager value of a peer on this chain
)

func encodeStatus(latest uint64) []byte {
	w := wireWriter{buf: make([]byte, 0, statusBytes)}
	w.u8(statusVersion)
	w.u64(latest)
	return w.buf
}

func decodeStatus(b []byte) (uint64, error) {
	r := wireReader{b: b}
	if v := r.u8(); r.err == nil && v != statusVersion {
		return 0, fmt.Errorf("decode status: unknown version %d", v)
	}
	h := r.u64()
	return h, r.finish("status")
}

// peerHeights is what this node knows of its peers' latest heights. Only
// connected peers are kept, so it is bounded by the connection cap.
type peerHeights struct {
	mu      sync.Mutex
	h       map[peer.ID]uint64
	changed chan struct{} // closed and replaced whenever a height rises
}

func newPeerHeights() *peerHeights {
	return &peerHeights{h: make(map[peer.ID]uint64), changed: make(chan struct{})}
}

// set records p's own statement of its height, which may be lower than
// before (a peer restored from an older state).
func (ph *peerHeights) set(p peer.ID, h uint64) { ph.update(p, h, true) }

// raise records that p has at least height h.
func (ph *peerHeights) raise(p peer.ID, h uint64) { ph.update(p, h, false) }

func (ph *peerHeights) update(p peer.ID, h uint64, exact bool) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	old, ok := ph.h[p]
	if ok && h <= old && !exact {
		return
	}
	ph.h[p] = h
	if !ok || h > old {
		close(ph.changed)
		ph.changed = make(chan struct{})
	}
}

func (ph *peerHeights) remove(p peer.ID) {
	ph.mu.Lock()
	delete(ph.h, p)
	ph.mu.Unlock()
}

func (ph *peerHeights) snapshot() map[peer.ID]uint64 {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	out := make(map[peer.ID]uint64, len(ph.h))
	for p, h := range ph.h {
		out[p] = h
	}
	return out
}

// max returns the highest known height and a channel closed when any
// height rises after this call.
func (ph *peerHeights) max() (uint64, <-chan struct{}) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	var m uint64
	for _, h := range ph.h {
		m = max(m, h)
	}
	return m, ph.changed
}

// PeerHeights returns the latest height each connected peer reported (by
// the status protocol, a block-sync response, or a verified vote or
// proposal it authored).
func (n *Node) PeerHeights() map[peer.ID]uint64 { return n.heights.snapshot() }

// recordHeight records a peer's own statement of its height, if it is
// still connected.
// Peers that speak the status protocol are on this chain; the connection
// manager keeps them over others when it trims.
func (n *Node) recordHeight(p peer.ID, h uint64) {
	if n.admits.admitted(p) {
		n.heights.set(p, h)
		n.cm.TagPeer(p, "ledgerd-chain", chainPeerValue)
	}
}

// WaitBehind blocks until this node is behind its peers and returns the
// highest height a peer reported. Behind means a peer is more than
// Config.SyncLag heights ahead of Handler.LatestHeight, or ahead at all
// while the latest height has not moved for Config.SyncStall (a node that
// missed the votes of one height and cannot decide it). The driver then
// pauses consensus and runs a Syncer, and calls WaitBehind again once it
// has rejoined, so a node that falls behind while running (partitioned,
// paused) goes back to block sync by itself.
func (n *Node) WaitBehind(ctx context.Context) (uint64, error) {
	var since time.Time // when a peer was first seen ahead of sinceLocal
	var sinceLocal uint64
	for {
		target, changed := n.heights.max()
		local := n.handler.LatestHeight()
		var left time.Duration
		switch {
		case target > local+n.cfg.SyncLag:
			return target, nil
		case target > local:
			if since.IsZero() || sinceLocal != local {
				since, sinceLocal = time.Now(), local
			}
			if left = n.cfg.SyncStall - time.Since(since); left <= 0 {
				return target, nil
			}
		default:
			since = time.Time{}
			left = n.cfg.SyncStall // re-check now and then: LatestHeight has no event
		}
		t := time.NewTimer(left)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// exchangeStatus tells p our latest height and records p's.
func (n *Node) exchangeStatus(ctx context.Context, p peer.ID) error {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	s, err := n.host.NewStream(ctx, p, n.protocol(statusProtocol))
	if err != nil {
		return err
	}
	_ = s.SetDeadline(time.Now().Add(statusTimeout))
	h, err := func() (uint64, error) {
		if err := writeFrame(s, encodeStatus(n.handler.LatestHeight())); err != nil {
			return 0, err
		}
		if err := s.CloseWrite(); err != nil {
			return 0, err
		}
		frame, err := readFrame(bufio.NewReaderSize(s, 32), statusBytes)
		if err != nil {
			return 0, err
		}
		h, err := decodeStatus(frame)
		if err != nil {
			n.requestBan(p, err.Error())
		}
		return h, err
	}()
	if err != nil {
		s.Reset()
		return err
	}
	n.recordHeight(p, h)
	return s.Close()
}

// serveStatus answers a peer's status exchange.
func (n *Node) serveStatus(s network.Stream) {
	if !n.track() {
		s.Reset()
		return
	}
	defer n.wg.Done()
	p := s.Conn().RemotePeer()
	_ = s.SetDeadline(time.Now().Add(statusTimeout))
	frame, err := readFrame(bufio.NewReaderSize(s, 32), statusBytes)
	if err != nil {
		n.log.Debug("status: read", "peer", p, "err", err)
		s.Reset()
		return
	}
	h, err := decodeStatus(frame)
	if err != nil {
		n.requestBan(p, err.Error())
		s.Reset()
		return
	}
	n.recordHeight(p, h)
	if err := writeFrame(s, encodeStatus(n.handler.LatestHeight())); err != nil {
		s.Reset()
		return
	}
	_ = s.Close()
}

// statusWorker exchanges status with queued peers.
func (n *Node) statusWorker() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case p := <-n.statusCh:
			if !n.admits.admitted(p) {
				continue
			}
			if err := n.exchangeStatus(n.ctx, p); err != nil {
				n.log.Debug("status exchange failed", "peer", p, "err", err)
			}
		}
	}
}

// statusTicker queues every connected peer for a status exchange every
// StatusInterval.
func (n *Node) statusTicker() {
	t := time.NewTicker(n.cfg.StatusInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			for _, p := range n.admittedPeers() {
				select {
				case n.statusCh <- p:
				default:
				}
			}
		}
	}
}

// refreshStatus exchanges status with every connected peer at once and
// returns when all have answered or failed.
func (n *Node) refreshStatus(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range n.admittedPeers() {
		wg.Go(func() {
			if err := n.exchangeStatus(ctx, p); err != nil {
				n.log.Debug("status exchange failed", "peer", p, "err", err)
			}
		})
	}
	wg.Wait()
}
