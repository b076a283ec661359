package p2p

import (
	"bufio"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/wire"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The status protocol: the dialler writes one status frame and closes its
// side; the listener records it, answers with its own and closes. A status
// is the sender's latest committed height and, for a node that serves
// blocks only from a base above 1 (pruned, or restored by state sync), that
// base: the lowest height whose block and commit it serves.
//
//	version 1 (1) | latest height (8)              base 1 (a full node)
//	version 2 (1) | latest height (8) | base (8)   base in [2, latest+1]
//
// A full node still sends version 1, so nodes that predate the base read
// its status as before; version 2 is only sent with a base above 1, so
// every status has one encoding.
const (
	statusProtocol    = "status"
	statusVersion     = 1
	statusBaseVersion = 2
	statusBytes       = 1 + 8 + 8 // the longer of the two
	statusWorkers     = 2
	statusTimeout     = 5 * time.Second
	chainPeerValue    = 100 // connection-manager value of a peer on this chain
)

func encodeStatus(latest, base uint64) []byte {
	w := wire.NewWriter(make([]byte, 0, statusBytes))
	if base <= 1 {
		w.U8(statusVersion)
		w.U64(latest)
		return w.Bytes()
	}
	w.U8(statusBaseVersion)
	w.U64(latest)
	w.U64(base)
	return w.Bytes()
}

// decodeStatus decodes either version; a version 1 status has base 1.
func decodeStatus(b []byte) (latest, base uint64, err error) {
	r := wire.NewReader(b)
	base = 1
	switch v := r.U8(); {
	case r.Err() != nil:
	case v == statusVersion:
		latest = r.U64()
	case v == statusBaseVersion:
		latest = r.U64()
		base = r.U64()
		if r.Err() == nil && !validBase(latest, base) {
			r.Fail(fmt.Errorf("base %d with latest height %d: want 2 <= base <= latest+1", base, latest))
		}
	default:
		r.Fail(fmt.Errorf("status: unknown encoding version %d, want %d or %d", v, statusVersion, statusBaseVersion))
	}
	if err := r.Finish("status"); err != nil {
		return 0, 0, err
	}
	return latest, base, nil
}

// validBase reports whether base, above 1, fits latest: a node serves
// heights base..latest, none when base is latest+1 (restored by state sync
// at latest, no block stored yet).
func validBase(latest, base uint64) bool { return base >= 2 && base-1 <= latest }

// BlockBase is an optional capability of a Handler whose block store does
// not reach down to height 1: a node restored by state sync, or one that
// prunes old blocks. A Handler without it serves every height from 1.
type BlockBase interface {
	// BaseHeight is the lowest height whose block and commit the node
	// serves (Handler.Block and Handler.Commit succeed from it up to
	// LatestHeight); LatestHeight+1 when it serves none. Peers never ask
	// it for lower heights, and it is not blamed for lacking them. It
	// must not block.
	BaseHeight() uint64
}

// servingRange is what this node's block store serves: heights base to
// latest (none when base is latest+1).
func (n *Node) servingRange() (latest, base uint64) {
	latest, base = n.handler.LatestHeight(), 1
	if bb, ok := n.handler.(BlockBase); ok {
		base = bb.BaseHeight()
	}
	if latest < ^uint64(0) {
		base = min(base, latest+1)
	}
	return latest, max(base, 1)
}

// peerHeights is what this node knows of its peers' latest heights and
// bases, and which of those claims block sync could not back. Only
// connected peers are kept, so it is bounded by the connection cap.
//
// A claim is unbacked from height u when the peer, asked for blocks from u
// on, had none to give (it answered with none, contradicted itself, or
// stalled). Until the peer serves a verified block at u or above, its
// credible height is below u, whatever it goes on claiming: an unbacked
// claim neither sends this node to block sync again nor counts as support.
// Heights below a peer's base are no claim at all: it is never asked for
// them, and lacking them is no fault.
type peerHeights struct {
	mu      sync.Mutex
	h       map[peer.ID]*heightClaim
	changed chan struct{} // closed and replaced whenever a credible height rises or a base changes
}

type heightClaim struct {
	claimed  uint64 // what the peer last said (or showed) its height is
	base     uint64 // the lowest height it serves, as it last said (0: not said, so 1)
	unbacked uint64 // 0, or the lowest height it failed to serve
}

// credible is the part of the claim block sync has not disproved.
func (c *heightClaim) credible() uint64 {
	if c.unbacked != 0 && c.claimed >= c.unbacked {
		return c.unbacked - 1
	}
	return c.claimed
}

// servesFrom is the peer's base (1 if it never stated one).
func (c *heightClaim) servesFrom() uint64 { return max(c.base, 1) }

func newPeerHeights() *peerHeights {
	return &peerHeights{h: make(map[peer.ID]*heightClaim), changed: make(chan struct{})}
}

// set records p's own statement of its height and base, which may be
// lower than before (a peer restored from an older state). It reports
// whether the statement repeats a claim already found unbacked.
func (ph *peerHeights) set(p peer.ID, h, base uint64) (reasserted bool) {
	return ph.update(p, h, base, true)
}

// raise records that p has at least height h.
func (ph *peerHeights) raise(p peer.ID, h uint64) { ph.update(p, h, 0, false) }

func (ph *peerHeights) update(p peer.ID, h, base uint64, exact bool) bool {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	c, ok := ph.h[p]
	if !ok {
		c = &heightClaim{}
		ph.h[p] = c
	} else if h <= c.claimed && !exact {
		return false
	}
	old, oldBase := c.credible(), c.base
	c.claimed = h
	if exact {
		c.base = base
	}
	if !ok || c.credible() > old || c.base != oldBase {
		ph.notify()
	}
	return c.unbacked != 0 && h >= c.unbacked
}

// unback records that p could not serve height from, which it claimed. It
// reports whether p had an unbacked claim already.
func (ph *peerHeights) unback(p peer.ID, from uint64) (again bool) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	c, ok := ph.h[p]
	if !ok {
		return false
	}
	again = c.unbacked != 0
	if c.unbacked == 0 || from < c.unbacked {
		c.unbacked = max(from, 1)
	}
	return again
}

// backed records that p served a verified block at height h: its claims
// up to h stand.
func (ph *peerHeights) backed(p peer.ID, h uint64) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	c, ok := ph.h[p]
	if !ok || c.unbacked == 0 || h < c.unbacked {
		return
	}
	c.unbacked = 0
	c.claimed = max(c.claimed, h)
	ph.notify()
}

func (ph *peerHeights) notify() {
	close(ph.changed)
	ph.changed = make(chan struct{})
}

func (ph *peerHeights) remove(p peer.ID) {
	ph.mu.Lock()
	delete(ph.h, p)
	ph.mu.Unlock()
}

// snapshot returns every peer's credible height.
func (ph *peerHeights) snapshot() map[peer.ID]uint64 {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	out := make(map[peer.ID]uint64, len(ph.h))
	for p, c := range ph.h {
		out[p] = c.credible()
	}
	return out
}

// peerRange is what one peer serves, as far as this node knows: heights
// base to height (its credible height).
type peerRange struct{ base, height uint64 }

// covers reports whether h is within the range.
func (r peerRange) covers(h uint64) bool { return r.base <= h && h <= r.height }

// ranges returns every peer's base and credible height.
func (ph *peerHeights) ranges() map[peer.ID]peerRange {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	out := make(map[peer.ID]peerRange, len(ph.h))
	for p, c := range ph.h {
		out[p] = peerRange{base: c.servesFrom(), height: c.credible()}
	}
	return out
}

// max returns the highest credible height and a channel closed when any
// credible height rises after this call.
func (ph *peerHeights) max() (uint64, <-chan struct{}) {
	top, _, ch := ph.top2(^uint64(0))
	return top, ch
}

// top2 returns, among the peers that serve height next (their base is at
// or below it), the highest credible height, the highest one that at
// least two of them reach (the highest when only one counts), and a
// channel closed when any credible height rises or base changes after
// this call.
func (ph *peerHeights) top2(next uint64) (first, second uint64, changed <-chan struct{}) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	counted := 0
	for _, c := range ph.h {
		if c.servesFrom() > next {
			continue
		}
		counted++
		switch h := c.credible(); {
		case h > first:
			first, second = h, first
		case h > second:
			second = h
		}
	}
	if counted == 1 {
		second = first
	}
	return first, second, ph.changed
}

// PeerHeights returns the latest height each connected peer reported (by
// the status protocol, a block-sync response, or a verified vote or
// proposal it authored).
func (n *Node) PeerHeights() map[peer.ID]uint64 { return n.heights.snapshot() }

// PeerBases returns the base each connected peer reported: the lowest
// height whose block it serves (1 for a full node, and for a peer that
// has not said).
func (n *Node) PeerBases() map[peer.ID]uint64 {
	out := make(map[peer.ID]uint64)
	for p, r := range n.heights.ranges() {
		out[p] = r.base
	}
	return out
}

// recordHeight records a peer's own statement of its height and base, if
// it is still connected. Peers that speak the status protocol are on this
// chain; the connection manager keeps them over others when it trims. A
// peer that repeats a claim block sync found unbacked, while that claim
// would put this node behind, is penalised again (and so banned the second
// time).
func (n *Node) recordHeight(p peer.ID, h, base uint64) {
	if !n.admits.admitted(p) {
		return
	}
	if n.heights.set(p, h, base) && h > n.handler.LatestHeight()+n.cfg.SyncLag {
		n.Penalize(p, PenaltyUnbackedClaim, fmt.Sprintf("claims height %d again after block sync found it unbacked", h))
	}
	n.cm.TagPeer(p, "ledgerd-chain", chainPeerValue)
}

// claimUnbacked records that p claimed height from or above but block sync
// could not get it from p, and penalises p.
func (n *Node) claimUnbacked(p peer.ID, from uint64, why string) {
	n.heights.unback(p, from)
	n.Penalize(p, PenaltyUnbackedClaim, fmt.Sprintf("claimed height %d but %s", from, why))
}

// WaitBehind blocks until this node is behind its peers and returns the
// highest credible height a peer reported. Behind means at least two peers
// (or the only peer) are more than Config.SyncLag heights ahead of
// Handler.LatestHeight, or one peer has been ahead for longer than
// Config.SyncStall: more than SyncLag ahead however the local height
// moves, or ahead at all while the local height stays put (a node that
// missed the votes of one height and cannot decide it). A lone claim thus
// waits SyncStall before it is tested; a claim block sync found unbacked
// does not count (see peerHeights), and neither does a peer whose base is
// above the local height plus one: block sync could get nothing from it
// (a node whose every peer is such is stuck for block sync, and PeerBases
// tells the driver so: state sync is its way on).
//
// The driver runs a Syncer alongside consensus and pauses consensus only
// once a verified block arrives, then calls WaitBehind again, so a node
// that falls behind while running (partitioned, paused) goes back to block
// sync by itself and a peer that lies about its height costs nothing but
// the requests that expose it.
func (n *Node) WaitBehind(ctx context.Context) (uint64, error) {
	var since time.Time // when a peer was first seen ahead of sinceLocal
	var sinceLocal uint64
	for {
		local := n.handler.LatestHeight()
		target, supported, changed := n.heights.top2(local + 1)
		var left time.Duration
		switch {
		case supported > local+n.cfg.SyncLag:
			return target, nil
		case target > local:
			// A local height that moves restarts the clock only for a
			// peer within SyncLag: that node is merely following.
			if since.IsZero() || (sinceLocal != local && target <= local+n.cfg.SyncLag) {
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

// exchangeStatus tells p our latest height and base and records p's.
func (n *Node) exchangeStatus(ctx context.Context, p peer.ID) error {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	s, err := n.host.NewStream(ctx, p, n.protocol(statusProtocol))
	if err != nil {
		return err
	}
	_ = s.SetDeadline(time.Now().Add(statusTimeout))
	h, base, err := func() (uint64, uint64, error) {
		if err := writeFrame(s, encodeStatus(n.servingRange())); err != nil {
			return 0, 0, err
		}
		if err := s.CloseWrite(); err != nil {
			return 0, 0, err
		}
		frame, err := readFrame(bufio.NewReaderSize(s, 32), statusBytes)
		if err != nil {
			return 0, 0, err
		}
		h, base, err := decodeStatus(frame)
		if err != nil {
			n.requestBan(p, err.Error())
		}
		return h, base, err
	}()
	if err != nil {
		s.Reset()
		return err
	}
	n.recordHeight(p, h, base)
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
	h, base, err := decodeStatus(frame)
	if err != nil {
		n.requestBan(p, err.Error())
		s.Reset()
		return
	}
	n.recordHeight(p, h, base)
	if err := writeFrame(s, encodeStatus(n.servingRange())); err != nil {
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
