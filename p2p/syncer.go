package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Syncer brings a node that is behind up to its peers' height by fetching
// committed blocks over the block-sync protocol. Heights are requested in
// batches from several peers at once, within a bounded window ahead of the
// next height to apply, with a per-peer request limit and a timeout per
// request. Every block is checked before it reaches the apply callback:
// its commit verifies against the validator set for the block's hash and
// height (ledger.Commit.Verify), and its transactions, evidence and last
// commit match the roots in its header. A peer that serves anything else is
// banned and its heights are fetched from another; a peer that times out is
// rested for SyncConfig.RetryBackoff.
//
// A peer's height claim is what sends it requests, so a claim it cannot
// back is misbehaviour: a peer that answers with no blocks for heights it
// claims (in its status or in the same answer), or that fails
// maxSyncFailures requests in a row (no first frame within
// SyncConfig.ResponseTimeout, empty answers), is left out for the rest of
// the Sync, penalised (PenaltyUnbackedClaim), and its claim stops counting
// from that height on, across Syncs, until it serves a verified block
// there. Claiming it again gets it banned (Node.recordHeight).
//
// A peer serves heights from its base (BlockBase; the status protocol and
// every block-sync answer state it) to its height. It is never asked for
// heights below its base, and an answer with no blocks for a request that
// turns out to start below its base (it pruned meanwhile) is no fault: the
// base it states in that answer is recorded and the heights are asked of
// another peer.
//
// A Syncer runs one Sync at a time.
type Syncer struct {
	n   *Node
	cfg SyncConfig
}

const maxSyncFailures = 3

// NewSyncer returns a Syncer that fetches through n with n's SyncConfig.
func (n *Node) NewSyncer() *Syncer { return &Syncer{n: n, cfg: n.cfg.Sync} }

// fetched is one block and its commit, checked as far as the node could
// when it arrived. A commit of a height whose validator set was not known
// then (the set of a height is known once the height two below it is
// stored) is verified just before the block is applied, in height order.
type fetched struct {
	block    *ledger.Block
	commit   *ledger.Commit
	from     peer.ID
	verified bool // the commit verified against its height's set
}

// fetchResult is the outcome of one request.
type fetchResult struct {
	peer    peer.ID
	claimed peerRange // the peer's base and credible height when it was asked
	req     syncRequest
	blocks  []fetched // verified, consecutive from req.from
	latest  uint64    // the peer's latest height, if gotEnd
	base    uint64    // the peer's base, if gotEnd
	gotEnd  bool
	err     error // the request failed (timeout, stream error): not the peer's fault for sure
	bad     error // the peer served something invalid
}

// Sync fetches the blocks from height `from` up to the highest height its
// peers report and calls apply for each, in height order, after checking
// it. It returns the last height applied (from-1 if none) once no peer
// reports a higher one, or with an error when apply fails or ctx ends. An
// apply error is returned as is: the block it was given carried a valid
// commit, so the fault is local (or the validator set's). It also returns
// (without error) when the next height is below the base of every peer
// that reports it: the blocks were pruned everywhere this node can reach,
// block sync cannot go on from there (state sync can), and WaitBehind no
// longer counts those peers. A peer's claim never makes Sync fail.
func (s *Syncer) Sync(ctx context.Context, from uint64, apply func(*ledger.Block, *ledger.Commit) error) (uint64, error) {
	n := s.n
	from = max(from, 1)
	log := n.log.With("sync_from", from)
	n.refreshStatus(ctx)

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	results := make(chan fetchResult)

	var (
		next     = from
		ready    = make(map[uint64]fetched)
		inflight = make(map[uint64]bool)
		active   = make(map[peer.ID]int)
		rested   = make(map[peer.ID]time.Time)
		excluded = make(map[peer.ID]bool)
		failures = make(map[peer.ID]int)
		started  = time.Now()
	)
	for {
		for f, ok := ready[next]; ok; f, ok = ready[next] {
			delete(ready, next)
			if !f.verified {
				vals, err := n.vals.ValidatorsAt(next)
				if err != nil {
					return next - 1, fmt.Errorf("block %d: validators of its height: %w", next, err)
				}
				if err := f.commit.Verify(n.cfg.ChainID, vals, next, f.block.Hash()); err != nil {
					// The peer served a commit its height's set did not
					// sign: drop all it served and fetch them elsewhere.
					excluded[f.from] = true
					n.Ban(f.from, fmt.Sprintf("block sync: height %d: %v", next, err))
					for h, g := range ready {
						if g.from == f.from {
							delete(ready, h)
						}
					}
					break
				}
			}
			if err := apply(f.block, f.commit); err != nil {
				return next - 1, fmt.Errorf("apply block %d: %w", next, err)
			}
			next++
		}

		changed := n.heightsChanged()
		all := n.heights.ranges()
		heights := make(map[peer.ID]peerRange, len(all))
		var target uint64
		covered, lowestBase := false, uint64(0)
		for p, r := range all {
			if !excluded[p] {
				heights[p] = r
				target = max(target, r.height)
				if r.height >= next {
					covered = covered || r.covers(next)
					if lowestBase == 0 || r.base < lowestBase {
						lowestBase = r.base
					}
				}
			}
		}
		if next <= target && !covered && len(inflight) == 0 {
			log.Info("block sync: no peer serves the next height; their blocks start above it", "height", next, "target", target, "lowest_base", lowestBase)
			return next - 1, nil
		}
		if next > target && len(inflight) == 0 {
			if next > from {
				el := time.Since(started)
				log.Info("block sync done", "height", next-1, "blocks", next-from, "elapsed", el,
					"blocks_per_s", float64(next-from)/max(el.Seconds(), 1e-9))
			}
			return next - 1, nil
		}

		now := time.Now()
		limit := min(next+uint64(s.cfg.Window)-1, target)
		for h := next; h <= limit; {
			if _, ok := ready[h]; ok || inflight[h] {
				h++
				continue
			}
			p := s.pickPeer(heights, h, active, rested, now)
			if p == "" {
				break
			}
			count := uint64(1)
			for count < uint64(s.cfg.BatchSize) && h+count <= min(limit, heights[p].height) && !inflight[h+count] {
				if _, ok := ready[h+count]; ok {
					break
				}
				count++
			}
			req := syncRequest{from: h, count: uint32(count)}
			for i := range count {
				inflight[h+i] = true
			}
			active[p]++
			claimed := heights[p]
			wg.Go(func() {
				r := s.fetch(ctx, p, req)
				r.claimed = claimed
				select {
				case results <- r:
				case <-ctx.Done():
				}
			})
			h += count
		}

		var wake *time.Timer
		if len(inflight) == 0 {
			// Every peer ahead is resting: wait for the first to be ready.
			var first time.Time
			for p, until := range rested {
				if _, ok := heights[p]; ok && until.After(now) && (first.IsZero() || until.Before(first)) {
					first = until
				}
			}
			if !first.IsZero() {
				wake = time.NewTimer(first.Sub(now))
			}
		}
		r, ok, err := s.wait(ctx, changed, wake, results)
		if err != nil {
			return next - 1, err
		}
		if ok {
			active[r.peer]--
			for i := range uint64(r.req.count) {
				delete(inflight, r.req.from+i)
			}
			for _, f := range r.blocks {
				if h := f.block.Height(); h >= next {
					ready[h] = f
				}
			}
			// The answer says the peer lacks heights it claimed: in its
			// status (claimed) or in this very answer (latest), from a base
			// at or below them.
			empty := r.bad == nil && r.err == nil && len(r.blocks) == 0 && r.gotEnd
			belowBase := empty && r.req.from < max(r.base, r.claimed.base)
			contradicts := empty && !belowBase && (r.latest >= r.req.from || r.claimed.height >= r.req.from)
			switch {
			case r.bad != nil:
				excluded[r.peer] = true
				n.Ban(r.peer, "block sync: "+r.bad.Error())
			case belowBase:
				// It pruned those heights since it last said; its new base,
				// recorded below, keeps them from being asked of it again.
				log.Debug("block sync: heights below the peer's base", "peer", r.peer, "from", r.req.from, "base", r.base)
			case contradicts:
				log.Info("block sync: peer lacks heights it claimed", "peer", r.peer, "from", r.req.from, "claimed", r.claimed, "latest", r.latest)
				excluded[r.peer] = true
				n.claimUnbacked(r.peer, r.req.from, fmt.Sprintf("served none of it (its latest: %d)", r.latest))
			case r.err != nil || len(r.blocks) == 0:
				log.Debug("block sync request failed", "peer", r.peer, "from", r.req.from, "blocks", len(r.blocks), "err", r.err)
				rested[r.peer] = time.Now().Add(s.cfg.RetryBackoff)
				if failures[r.peer]++; failures[r.peer] >= maxSyncFailures {
					// It claims heights it does not serve: stop counting on
					// it, in this sync and the next.
					log.Info("block sync: giving up on peer", "peer", r.peer, "failures", failures[r.peer])
					excluded[r.peer] = true
					n.claimUnbacked(r.peer, r.req.from, fmt.Sprintf("%d requests in a row failed (last: %v)", failures[r.peer], r.err))
				}
			default:
				failures[r.peer] = 0
				n.heights.backed(r.peer, r.blocks[len(r.blocks)-1].block.Height())
			}
			if r.gotEnd && r.bad == nil && !(contradicts && r.latest >= r.req.from) {
				n.recordHeight(r.peer, r.latest, r.base)
			}
		}
	}
}

// wait blocks until a result arrives (ok), a peer's height rises, the
// timer fires, or ctx ends (err).
func (s *Syncer) wait(ctx context.Context, changed <-chan struct{}, t *time.Timer, results <-chan fetchResult) (r fetchResult, ok bool, err error) {
	var fire <-chan time.Time
	if t != nil {
		defer t.Stop()
		fire = t.C
	}
	select {
	case <-ctx.Done():
		return r, false, ctx.Err()
	case <-changed:
	case <-fire:
	case r = <-results:
		ok = true
	}
	return r, ok, nil
}

// heightsChanged returns a channel closed when a peer's height rises.
func (n *Node) heightsChanged() <-chan struct{} {
	_, ch := n.heights.max()
	return ch
}

// pickPeer chooses, among peers that serve height h (at or above their
// base, at or below their height) and are not resting and below their
// request limit, one with the fewest requests in flight.
func (s *Syncer) pickPeer(heights map[peer.ID]peerRange, h uint64, active map[peer.ID]int, rested map[peer.ID]time.Time, now time.Time) peer.ID {
	var best []peer.ID
	bestActive := s.cfg.PerPeerRequests
	for p, pr := range heights {
		if !pr.covers(h) || active[p] >= s.cfg.PerPeerRequests || rested[p].After(now) {
			continue
		}
		switch a := active[p]; {
		case a < bestActive:
			best, bestActive = append(best[:0], p), a
		case a == bestActive:
			best = append(best, p)
		}
	}
	if len(best) == 0 {
		return ""
	}
	return best[rand.N(len(best))]
}

// fetch runs one request and verifies what comes back.
func (s *Syncer) fetch(ctx context.Context, p peer.ID, req syncRequest) (r fetchResult) {
	r = fetchResult{peer: p, req: req}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	st, err := s.n.host.NewStream(ctx, p, s.n.protocol(syncProtocol))
	if err != nil {
		r.err = err
		return r
	}
	// Until the first frame, the shorter ResponseTimeout applies: an honest
	// peer answers at once, one that stalls is found out quickly.
	deadline, _ := ctx.Deadline()
	first := time.Now().Add(s.cfg.ResponseTimeout)
	if first.After(deadline) {
		first = deadline
	}
	_ = st.SetDeadline(first)
	defer func() {
		if r.gotEnd {
			_ = st.Close()
		} else {
			_ = st.Reset()
		}
	}()
	if err := writeFrame(st, req.encode()); err != nil {
		r.err = err
		return r
	}
	if err := st.CloseWrite(); err != nil {
		r.err = err
		return r
	}
	br := bufio.NewReaderSize(st, 64<<10)
	for i := uint64(0); ; i++ {
		frame, err := readFrame(br, maxSyncFrameBytes)
		if err != nil {
			r.err = err
			return r
		}
		if i == 0 {
			_ = st.SetDeadline(deadline)
		}
		f, err := decodeSyncFrame(frame)
		if err != nil {
			r.bad = err
			return r
		}
		if f.end {
			r.latest, r.base, r.gotEnd = f.height, f.base, true
			return r
		}
		if i >= uint64(req.count) || f.height != req.from+i {
			r.bad = fmt.Errorf("served height %d, want %d of [%d, %d)", f.height, req.from+i, req.from, req.from+uint64(req.count))
			return r
		}
		got, err := s.verify(f)
		if err != nil {
			r.bad = fmt.Errorf("height %d: %w", f.height, err)
			return r
		}
		got.from = p
		r.blocks = append(r.blocks, got)
	}
}

// verify decodes a served block and commit and checks that the block's
// body matches its header and, when the validator set of its height is
// known, that the commit decides this block at this height.
func (s *Syncer) verify(f syncFrame) (fetched, error) {
	b, err := ledger.DecodeBlock(f.block)
	if err != nil {
		return fetched{}, err
	}
	c, err := ledger.DecodeCommit(f.commit)
	if err != nil {
		return fetched{}, err
	}
	if b.Header.ChainID != s.n.cfg.ChainID {
		return fetched{}, fmt.Errorf("block: %w: %q", ledger.ErrWrongChain, b.Header.ChainID)
	}
	if b.Height() != f.height {
		return fetched{}, fmt.Errorf("block at height %d claims height %d", f.height, b.Height())
	}
	if err := checkBody(b); err != nil {
		return fetched{}, err
	}
	out := fetched{block: b, commit: c}
	if vals, err := s.n.vals.ValidatorsAt(f.height); err == nil && vals != nil {
		if err := c.Verify(s.n.cfg.ChainID, vals, f.height, b.Hash()); err != nil {
			return fetched{}, err
		}
		out.verified = true
	}
	return out, nil
}

// checkBody checks that a block's contents are the ones its header (and so
// its commit) names.
func checkBody(b *ledger.Block) error {
	h := &b.Header
	switch {
	case h.TxRoot != ledger.TxRootOf(b.Txs):
		return errors.New("transactions do not match the header's tx root")
	case h.EvidenceHash != ledger.EvidenceRootOf(b.Evidence):
		return errors.New("evidence does not match the header's evidence hash")
	case h.LastCommitHash != b.LastCommit.Hash():
		return errors.New("last commit does not match the header's last commit hash")
	}
	return nil
}
