package p2p

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/libp2p/go-libp2p/core/peer"
)

// lightHandler serves light blocks of its chain (from its base to its
// latest height), snapshots and blocks.
type lightHandler struct {
	*snapHandler
	calls   atomic.Int64
	missing bool                                       // answers "not found" for every height
	forge   func(h uint64, lb *LightBlock) *LightBlock // replaces what it serves
}

func newLightHandler(tc *testChain, latest uint64) *lightHandler {
	h := &lightHandler{snapHandler: newSnapHandler()}
	h.serving(tc, latest)
	return h
}

func (h *lightHandler) LightBlock(height uint64) (*LightBlock, error) {
	h.calls.Add(1)
	if h.missing || h.chain == nil || height == 0 || height > h.latest.Load() || height < h.base.Load() {
		return nil, fmt.Errorf("light block %d: %w", height, ErrNotFound)
	}
	b, err := ledger.DecodeBlock(h.chain.blocks[height-1])
	if err != nil {
		return nil, err
	}
	lb := &LightBlock{Header: &b.Header, Commit: h.chain.commits[height-1], Validators: h.chain.vals}
	if h.forge != nil {
		lb = h.forge(height, lb)
	}
	return lb, nil
}

// forkedLightBlock is a light block of height on a fork: another header
// (a later time), signed by the same validators, so it is self-consistent.
func forkedLightBlock(tc *testChain, height uint64) *LightBlock {
	b, err := ledger.DecodeBlock(tc.blocks[height-1])
	if err != nil {
		panic(err)
	}
	b.Header.Time++
	return &LightBlock{Header: &b.Header, Commit: tc.c.Commit(b), Validators: tc.vals}
}

// TestFetchLightBlock fetches a light block from a peer: the header, commit
// and set are the chain's.
func TestFetchLightBlock(t *testing.T) {
	const N = 12
	tc := getChain(t, N, 3)
	sn := startSnapNet(t, []Handler{newLightHandler(tc, N)})
	ctx := waitCtx(t, 30*time.Second)
	for _, h := range []uint64{1, 7, N} {
		lb, err := sn.fresh.FetchLightBlock(ctx, sn.servers[0].ID(), h)
		if err != nil {
			t.Fatal(err)
		}
		if lb.Height() != h || lb.Header.Hash() != tc.hashes[h-1] || lb.Commit.Hash() != tc.commits[h-1].Hash() || lb.Validators.Hash() != tc.vals.Hash() {
			t.Fatalf("light block %d is not the chain's", h)
		}
		if !slices.Equal(lb.Peers, []peer.ID{sn.servers[0].ID()}) {
			t.Fatalf("light block %d names peers %v", h, lb.Peers)
		}
	}
	_, err := sn.fresh.FetchLightBlock(ctx, sn.servers[0].ID(), N+1)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("light block above the peer's height: %v, want ErrNotFound", err)
	}
	if sn.fresh.IsBanned(sn.servers[0].ID()) || sn.fresh.Penalty(sn.servers[0].ID()) != 0 {
		t.Fatal("honest peer penalised")
	}
}

// TestFetchLightBlockBansInconsistentPeer: a peer serving a light block
// that does not hold together, or is of another height, is banned.
func TestFetchLightBlockBansInconsistentPeer(t *testing.T) {
	const N = 8
	tc := getChain(t, N, 2)
	other, err := ledger.NewValidatorSet(tc.vals.Validators()[:3])
	if err != nil {
		t.Fatal(err)
	}
	twice := tc.vals.Validators()
	for i := range twice {
		twice[i].Power *= 2
	}
	doubled, err := ledger.NewValidatorSet(twice)
	if err != nil {
		t.Fatal(err)
	}
	for name, forge := range map[string]func(uint64, *LightBlock) *LightBlock{
		"commit of another block": func(h uint64, lb *LightBlock) *LightBlock {
			lb.Commit = tc.commits[h%N]
			return lb
		},
		"commit below quorum": func(_ uint64, lb *LightBlock) *LightBlock {
			c := *lb.Commit
			c.Sigs = c.Sigs[:2]
			lb.Commit = &c
			return lb
		},
		"set the header does not name": func(_ uint64, lb *LightBlock) *LightBlock {
			lb.Validators = other
			return lb
		},
		"set with other powers": func(_ uint64, lb *LightBlock) *LightBlock {
			// The same keys at twice the power: the commit still carries
			// +2/3 of it, only the header's ValidatorsHash tells.
			lb.Validators = doubled
			return lb
		},
		"header of another height": func(h uint64, _ *LightBlock) *LightBlock {
			b, _ := ledger.DecodeBlock(tc.blocks[h%N])
			return &LightBlock{Header: &b.Header, Commit: tc.commits[h%N], Validators: tc.vals}
		},
	} {
		t.Run(name, func(t *testing.T) {
			bad := newLightHandler(tc, N)
			bad.forge = forge
			sn := startSnapNet(t, []Handler{bad})
			_, err := sn.fresh.FetchLightBlock(waitCtx(t, 30*time.Second), sn.servers[0].ID(), 4)
			if err == nil {
				t.Fatal("inconsistent light block accepted")
			}
			if !sn.fresh.IsBanned(sn.servers[0].ID()) {
				t.Fatalf("peer serving it not banned (%v)", err)
			}
		})
	}
}

// TestLightBlocksFromPeers: the provider returns a light block two peers
// agree on, never asks a peer below its base, and charges a peer that
// lacks a height its range covers.
func TestLightBlocksFromPeers(t *testing.T) {
	const N = 60
	tc := getChain(t, N, 1)
	pruned, full, liar := newLightHandler(tc, N), newLightHandler(tc, N), newLightHandler(tc, N)
	pruned.base.Store(40)
	liar.missing = true
	sn := startSnapNet(t, []Handler{pruned, full, liar})
	ctx := waitCtx(t, 30*time.Second)
	for _, s := range sn.servers {
		waitHeight(t, ctx, sn.fresh, s.ID(), N)
	}
	waitBase(t, ctx, sn.fresh, sn.servers[0].ID(), 40)
	lbs := sn.fresh.LightBlocks(2)

	// Below the pruned peer's base only the full peer (and the liar, which
	// fails) can serve it: one witness is all there is.
	lb, err := lbs.LightBlock(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if lb.Header.Hash() != tc.hashes[9] || !slices.Equal(lb.Peers, sn.ids(1)) {
		t.Fatalf("light block 10 from %v", lb.Peers)
	}
	if pruned.calls.Load() != 0 {
		t.Fatal("the pruned peer was asked below its base")
	}
	if liar.calls.Load() == 0 {
		t.Fatal("the liar was never asked; the test proves nothing")
	}
	if p := sn.fresh.Penalty(sn.servers[2].ID()); p < PenaltyUnbackedClaim*0.9 {
		t.Fatalf("peer lacking a height it claims has penalty %.0f", p)
	}
	if sn.fresh.Penalty(sn.servers[1].ID()) != 0 {
		t.Fatal("honest peer penalised")
	}

	lb, err = lbs.LightBlock(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	got, want := slices.Sorted(slices.Values(lb.Peers)), slices.Sorted(slices.Values(sn.ids(0, 1)))
	if lb.Header.Hash() != tc.hashes[49] || !slices.Equal(got, want) {
		t.Fatalf("light block 50 from %v, want the two honest peers %v", got, want)
	}
}

// TestLightBlocksConflict: two peers serve different self-consistent light
// blocks of one height (a fork signed by the validators): the provider
// reports the conflict with both, and bans no one (which is right is for
// the light client to say).
func TestLightBlocksConflict(t *testing.T) {
	const N = 10
	tc := getChain(t, N, 1)
	forker := newLightHandler(tc, N)
	forker.forge = func(h uint64, _ *LightBlock) *LightBlock { return forkedLightBlock(tc, h) }
	sn := startSnapNet(t, []Handler{newLightHandler(tc, N), forker})
	ctx := waitCtx(t, 30*time.Second)
	for _, s := range sn.servers {
		waitHeight(t, ctx, sn.fresh, s.ID(), N)
	}
	_, err := sn.fresh.LightBlocks(2).LightBlock(ctx, 5)
	var c *LightBlockConflict
	if !errors.As(err, &c) || !errors.Is(err, ErrConflictingLightBlocks) {
		t.Fatalf("conflicting light blocks: %v", err)
	}
	hashes := []string{c.Blocks[0].Header.Hash().String(), c.Blocks[1].Header.Hash().String()}
	if !slices.Contains(hashes, tc.hashes[4].String()) || hashes[0] == hashes[1] {
		t.Fatalf("conflict between %v", hashes)
	}
	for _, s := range sn.servers {
		if sn.fresh.IsBanned(s.ID()) {
			t.Fatal("a peer was banned for a conflict the light client must judge")
		}
	}
}
