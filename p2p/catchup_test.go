package p2p

import (
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// roundFixture is what a peer holds for one round: a proposal whose block
// has several parts, and prevotes and precommits from every validator.
func roundFixture(t *testing.T, height uint64, round uint32) RoundMessages {
	t.Helper()
	tc := getChain(t, 0, 0)
	_, keys := testVals(t)
	acct := tc.c.Accounts
	txs := make([]*ledger.Tx, 900)
	for i := range txs {
		txs[i] = ledgertest.Transfer(acct[0], acct[1].PubKey().Address(), 1, 1, uint64(i))
	}
	prop, parts := signedProposal(keys, 1, height, round, tc.c.NextBlock(tc.c.Genesis, txs, nil, 1))
	rm := RoundMessages{Proposal: prop, Parts: parts}
	for i := range keys {
		rm.Votes = append(rm.Votes,
			signedVote(keys, i, ledger.Prevote, height, round, prop.BlockID),
			signedVote(keys, i, ledger.Precommit, height, round, prop.BlockID))
	}
	return rm
}

// expectRound waits until h has received everything in rm.
func expectRound(t *testing.T, h *testHandler, rm RoundMessages, timeout time.Duration) {
	t.Helper()
	ctx := waitCtx(t, timeout)
	if got := recvOne(t, ctx, h.proposals, "proposal"); *got != *rm.Proposal {
		t.Fatalf("got proposal %+v, want %+v", got, rm.Proposal)
	}
	ps, err := ledger.NewPartSet(rm.Proposal.Parts)
	if err != nil {
		t.Fatal(err)
	}
	for !ps.Complete() {
		if _, err := ps.Add(recvOne(t, ctx, h.parts, "part")); err != nil {
			t.Fatal(err)
		}
	}
	want := make(map[ledger.Vote]bool)
	for _, v := range rm.Votes {
		want[*v] = true
	}
	for len(want) > 0 {
		v := recvOne(t, ctx, h.votes, "vote")
		delete(want, *v)
	}
}

// TestCatchUpRecoversMissedRound: a node that missed a round's gossip
// entirely (it connected after the messages went out) stays at the same
// position, asks a peer by itself, and receives the proposal, every block
// part and every vote.
func TestCatchUpRecoversMissedRound(t *testing.T) {
	const H, R = 12, 3
	rm := roundFixture(t, H, R)
	server := newTestHandler(H, R)
	server.setRound(H, R, rm)
	server.latest.Store(H - 1)
	s := startNode(t, server, testConfig())

	stuck := newTestHandler(H, R)
	startNode(t, stuck, testConfig(func(c *Config) {
		c.CatchupInterval = 100 * time.Millisecond
		c.BootstrapPeers = []string{addrOf(t, s, false)}
	}))
	expectRound(t, stuck, rm, 20*time.Second)
}

// TestCatchUpExplicit: the driver asks for a round itself; a server that
// answers with a forged vote is banned.
func TestCatchUpExplicit(t *testing.T) {
	const H, R = 5, 0
	rm := roundFixture(t, H, R)
	good := newTestHandler(H, R)
	good.setRound(H, R, rm)
	good.latest.Store(H - 1)
	g := startNode(t, good, testConfig())

	forged := *rm.Votes[0]
	forged.Sig[9] ^= 1
	liar := newTestHandler(H, R)
	liar.setRound(H, R, RoundMessages{Votes: []*ledger.Vote{&forged}})
	l := startNode(t, liar, testConfig())

	h := newTestHandler(H, R)
	n := startNode(t, h, testConfig())
	ctx := waitCtx(t, 20*time.Second)
	for _, peer := range []*Node{g, l} {
		if err := n.Connect(ctx, addrOf(t, peer, false)); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.fetchRound(ctx, l.ID(), H, R); err == nil {
		t.Fatal("forged catch-up answer accepted")
	}
	waitConnectedness(t, ctx, n.host, l.ID(), false)
	if !n.IsBanned(l.ID()) {
		t.Fatal("peer that served a forged vote is not banned")
	}
	if err := n.CatchUp(ctx, H, R); err != nil {
		t.Fatal(err)
	}
	expectRound(t, h, rm, 10*time.Second)
}
