package p2p

import (
	"bufio"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// waitBase waits until n knows that p serves from base.
func waitBase(tb testing.TB, ctx context.Context, n *Node, p peer.ID, base uint64) {
	tb.Helper()
	for {
		changed := n.heightsChanged()
		if n.PeerBases()[p] == base {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			tb.Fatalf("never learned that %s serves from %d (knows %d)", p, base, n.PeerBases()[p])
		}
	}
}

// TestBlockSyncRespectsPeerBase has a peer that serves blocks only from
// height 50 (pruned, or restored by state sync) and a full peer. A node
// syncing from 1 gets 1..49 from the full peer and nobody is penalised; a
// node syncing from 60 gets blocks from both.
func TestBlockSyncRespectsPeerBase(t *testing.T) {
	const N, base = 140, 50
	tc := getChain(t, N, 3)
	pruned := newTestHandler(1, 0).serving(tc, N)
	pruned.base.Store(base)
	full := newTestHandler(1, 0).serving(tc, N)
	sn := startSyncNet(t, []*testHandler{pruned, full}, func(c *Config) { c.Sync.BatchSize = 4 })
	ctx := waitCtx(t, 60*time.Second)
	prunedID, fullID := sn.servers[0].ID(), sn.servers[1].ID()
	waitBase(t, ctx, sn.fresh, prunedID, base)
	if b := sn.fresh.PeerBases()[fullID]; b != 1 {
		t.Fatalf("full peer's base is %d, want 1", b)
	}

	var got []crypto.Hash
	reached, err := sn.fresh.NewSyncer().Sync(ctx, 1, inOrder(1, &got))
	if err != nil {
		t.Fatal(err)
	}
	if reached != N {
		t.Fatalf("reached %d, want %d", reached, N)
	}
	checkApplied(t, tc, 1, got, N)
	for _, p := range []peer.ID{prunedID, fullID} {
		if pen := sn.fresh.Penalty(p); pen != 0 || sn.fresh.IsBanned(p) {
			t.Fatalf("peer %s penalised (%.0f, banned %v) though it served all it claimed", p, pen, sn.fresh.IsBanned(p))
		}
	}
	if h := sn.fresh.PeerHeights()[prunedID]; h != N {
		t.Fatalf("pruned peer's credible height %d, want %d", h, N)
	}

	// A node at 59 syncs from 60: both peers serve those heights.
	pruned.served.Store(0)
	full.served.Store(0)
	late := newTestHandler(1, 0)
	late.latest.Store(59)
	n2 := startNode(t, late, testConfig(func(c *Config) {
		c.BootstrapPeers = []string{addrOf(t, sn.servers[0], false), addrOf(t, sn.servers[1], false)}
		c.Sync.BatchSize = 4
	}))
	waitHeight(t, ctx, n2, prunedID, N)
	waitHeight(t, ctx, n2, fullID, N)
	got = nil
	reached, err = n2.NewSyncer().Sync(ctx, 60, inOrder(60, &got))
	if err != nil {
		t.Fatal(err)
	}
	if reached != N {
		t.Fatalf("reached %d, want %d", reached, N)
	}
	checkApplied(t, tc, 60, got, N)
	if pruned.served.Load() == 0 || full.served.Load() == 0 {
		t.Fatalf("pruned peer served %d blocks, full peer %d: want both", pruned.served.Load(), full.served.Load())
	}
}

// TestPickPeerRespectsBase: a peer is never chosen for a height below its
// base or above its height.
func TestPickPeerRespectsBase(t *testing.T) {
	s := &Syncer{cfg: SyncConfig{PerPeerRequests: 2}}
	pruned, full := genPeerID(t), genPeerID(t)
	heights := map[peer.ID]peerRange{pruned: {base: 50, height: 100}, full: {base: 1, height: 80}}
	now := time.Now()
	for h := uint64(1); h <= 110; h++ {
		for range 8 {
			p := s.pickPeer(heights, h, map[peer.ID]int{}, map[peer.ID]time.Time{}, now)
			if p != "" && !heights[p].covers(h) {
				t.Fatalf("height %d asked of a peer serving [%d, %d]", h, heights[p].base, heights[p].height)
			}
			if p == "" && h <= 100 {
				t.Fatalf("height %d: no peer chosen though one serves it", h)
			}
		}
	}
}

// TestBlockSyncPeerPrunedMeanwhile: a peer's status says base 1 (it was
// sent before the peer pruned), but it has pruned to 50: its block-sync
// answers for lower heights carry no blocks and an end frame naming base
// 50. That is no fault: it is not penalised, its new base is recorded,
// and the sync completes from the full peer.
func TestBlockSyncPeerPrunedMeanwhile(t *testing.T) {
	const N, base = 80, 50
	tc := getChain(t, N, 2)
	full := newTestHandler(1, 0).serving(tc, N)
	// No periodic status: the only statuses are the ones below.
	sn := startSyncNet(t, []*testHandler{full}, func(c *Config) {
		c.Sync.BatchSize = 8
		c.StatusInterval = time.Hour
	})
	ctx := waitCtx(t, 60*time.Second)

	raw := attacker(t, ctx, "127.0.0.1", sn.fresh)
	var asked atomic.Int64
	raw.SetStreamHandler(sn.fresh.protocol(statusProtocol), func(s network.Stream) {
		defer s.Close()
		if _, err := readFrame(bufio.NewReaderSize(s, 32), statusBytes); err != nil {
			return
		}
		_ = writeFrame(s, encodeStatus(N, 1))
	})
	raw.SetStreamHandler(sn.fresh.protocol(syncProtocol), func(s network.Stream) {
		defer s.Close()
		frame, err := readFrame(bufio.NewReaderSize(s, 32), syncRequestBytes)
		if err != nil {
			return
		}
		req, err := decodeSyncRequest(frame)
		if err != nil {
			return
		}
		w := bufio.NewWriter(s)
		if req.from < base {
			asked.Add(1)
		} else {
			for h := req.from; h < req.from+uint64(req.count) && h <= N; h++ {
				_ = writeFrame(w, encodeSyncBlock(h, tc.blocks[h-1], tc.commits[h-1].Encode()))
			}
		}
		_ = writeFrame(w, encodeSyncEnd(N, base))
		_ = w.Flush()
	})
	if err := sn.fresh.exchangeStatus(ctx, raw.ID()); err != nil {
		t.Fatal(err)
	}
	if b := sn.fresh.PeerBases()[raw.ID()]; b != 1 {
		t.Fatalf("base %d after the status, want 1", b)
	}

	var got []crypto.Hash
	reached, err := sn.fresh.NewSyncer().Sync(ctx, 1, inOrder(1, &got))
	if err != nil {
		t.Fatal(err)
	}
	if reached != N {
		t.Fatalf("reached %d, want %d", reached, N)
	}
	checkApplied(t, tc, 1, got, N)
	if asked.Load() == 0 {
		t.Fatal("the pruned peer was never asked below its new base; the test proves nothing")
	}
	if pen := sn.fresh.Penalty(raw.ID()); pen != 0 || sn.fresh.IsBanned(raw.ID()) {
		t.Fatalf("peer that pruned meanwhile penalised %.0f (banned %v)", pen, sn.fresh.IsBanned(raw.ID()))
	}
	if b := sn.fresh.PeerBases()[raw.ID()]; b != base {
		t.Fatalf("base %d after the answers, want %d", b, base)
	}
}

// TestBelowEveryBase: when the only peer ahead serves blocks only from
// above the next height, WaitBehind does not send the node to block sync
// (there is nothing to get), and a Sync started anyway returns at once,
// without error and without blaming the peer. A peer cannot stop a node
// by stating a high base: node/blocksync.go treats a Sync error as fatal.
func TestBelowEveryBase(t *testing.T) {
	const N = 60
	tc := getChain(t, N, 1)
	pruned := newTestHandler(1, 0).serving(tc, N)
	pruned.base.Store(30)
	sn := startSyncNet(t, []*testHandler{pruned}, func(c *Config) { c.SyncStall = 100 * time.Millisecond })
	ctx := waitCtx(t, 30*time.Second)
	waitBase(t, ctx, sn.fresh, sn.servers[0].ID(), 30)

	wctx, cancel := context.WithTimeout(ctx, time.Second) // ten times SyncStall
	defer cancel()
	if target, err := sn.fresh.WaitBehind(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitBehind returned %d, %v: a peer that cannot serve height 1 sent the node to block sync", target, err)
	}
	reached, err := sn.fresh.NewSyncer().Sync(ctx, 1, func(*ledger.Block, *ledger.Commit) error { return nil })
	if err != nil || reached != 0 {
		t.Fatalf("Sync reached %d with %v, want 0 and no error", reached, err)
	}
	if pen := sn.fresh.Penalty(sn.servers[0].ID()); pen != 0 {
		t.Fatalf("pruned peer penalised %.0f", pen)
	}

	// At 29 the node is at the peer's base minus one: the peer counts.
	sn.handler.latest.Store(29)
	target, err := sn.fresh.WaitBehind(ctx)
	if err != nil || target != N {
		t.Fatalf("WaitBehind at 29: %d, %v; want %d", target, err, N)
	}
	var got []crypto.Hash
	reached, err = sn.fresh.NewSyncer().Sync(ctx, 30, inOrder(30, &got))
	if err != nil || reached != N {
		t.Fatalf("Sync from 30 reached %d with %v", reached, err)
	}
	checkApplied(t, tc, 30, got, N)
}

// TestStatusCarriesBase: decodeStatus reads both versions, and a full
// node's status is the version 1 frame nodes without bases read.
func TestStatusCarriesBase(t *testing.T) {
	for _, c := range []struct {
		latest, base uint64
		size         int
	}{{0, 1, 9}, {100, 1, 9}, {100, 2, 17}, {100, 101, 17}} {
		b := encodeStatus(c.latest, c.base)
		if len(b) != c.size {
			t.Fatalf("status (%d, %d) is %d bytes, want %d", c.latest, c.base, len(b), c.size)
		}
		h, base, err := decodeStatus(b)
		if err != nil || h != c.latest || base != c.base {
			t.Fatalf("status (%d, %d) decodes to (%d, %d, %v)", c.latest, c.base, h, base, err)
		}
	}
	for _, bad := range [][]byte{
		encodeStatus(100, 102), // base above latest+1
		{statusBaseVersion, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1}, // version 2 with base 1
		{3, 0, 0, 0, 0, 0, 0, 0, 9},
	} {
		if _, _, err := decodeStatus(bad); err == nil {
			t.Fatalf("status %x accepted", bad)
		}
	}
}
