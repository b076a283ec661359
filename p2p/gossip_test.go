package p2p

import (
	"fmt"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// TestGossipReachesEveryPeer starts four nodes (two joined by bootstrap
// peers over TCP, one by a persistent peer over QUIC) and publishes a
// transaction, a vote, a proposal whose block of 1,500 transfers travels in
// several parts, and evidence; every other node's handler receives each one
// decoded.
func TestGossipReachesEveryPeer(t *testing.T) {
	const H, R = 7, 1
	_, keys := testVals(t)
	handlers := make([]*testHandler, 4)
	for i := range handlers {
		handlers[i] = newTestHandler(H, R)
	}
	a := startNode(t, handlers[0], testConfig())
	b := startNode(t, handlers[1], testConfig(func(c *Config) { c.BootstrapPeers = []string{addrOf(t, a, false)} }))
	c := startNode(t, handlers[2], testConfig(func(c *Config) { c.BootstrapPeers = []string{addrOf(t, a, false)} }))
	d := startNode(t, handlers[3], testConfig(func(c *Config) { c.PersistentPeers = []string{addrOf(t, a, true)} }))
	nodes := []*Node{a, b, c, d}

	ctx := waitCtx(t, 30*time.Second)
	// Publish once every mesh is formed: gossipsub forwards a message to
	// its mesh peers at once, and to a peer grafted after the message
	// passed through, never (recovering that is what catch-up is for).
	if err := a.WaitMesh(ctx, 3); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		if err := n.WaitMesh(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}

	// A block of 1,500 transfers: more than three parts.
	tc := getChain(t, 0, 0)
	acct := tc.c.Accounts
	txs := make([]*ledger.Tx, 1500)
	for i := range txs {
		txs[i] = ledgertest.Transfer(acct[0], acct[1].PubKey().Address(), 1, 1, uint64(i))
	}
	blk := tc.c.NextBlock(tc.c.Genesis, txs, nil, 0)
	prop, parts := signedProposal(keys, 2, H, R, blk)
	if len(parts) < 3 {
		t.Fatalf("block split into %d parts, want at least 3", len(parts))
	}
	tx := ledgertest.Transfer(acct[1], acct[0].PubKey().Address(), 3, 1, 0)
	vote := signedVote(keys, 1, ledger.Prevote, H, R, prop.BlockID)
	ev := ledger.NewEvidence(signedVote(keys, 3, ledger.Precommit, H-1, 0, hashOf("x")), signedVote(keys, 3, ledger.Precommit, H-1, 0, hashOf("y")))

	// b is a leaf: its messages reach c and d only through a's forwarding.
	if err := b.PublishTx(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishVote(ctx, vote); err != nil {
		t.Fatal(err)
	}
	if err := d.PublishProposal(ctx, prop, parts); err != nil {
		t.Fatal(err)
	}
	if err := a.PublishEvidence(ctx, ev); err != nil {
		t.Fatal(err)
	}

	for i, h := range handlers {
		if i != 1 {
			if got := recvOne(t, ctx, h.txs, fmt.Sprintf("tx at node %d", i)); got.Hash() != tx.Hash() {
				t.Errorf("node %d: got tx %s, want %s", i, got.Hash(), tx.Hash())
			}
			if got := recvOne(t, ctx, h.votes, fmt.Sprintf("vote at node %d", i)); *got != *vote {
				t.Errorf("node %d: got vote %+v, want %+v", i, got, vote)
			}
		}
		if i != 3 {
			if got := recvOne(t, ctx, h.proposals, fmt.Sprintf("proposal at node %d", i)); *got != *prop {
				t.Errorf("node %d: got proposal %+v, want %+v", i, got, prop)
			}
			ps, err := ledger.NewPartSet(prop.Parts)
			if err != nil {
				t.Fatal(err)
			}
			for !ps.Complete() {
				if _, err := ps.Add(recvOne(t, ctx, h.parts, fmt.Sprintf("part at node %d", i))); err != nil {
					t.Fatalf("node %d: %v", i, err)
				}
			}
			got, err := ps.Block()
			if err != nil {
				t.Fatalf("node %d: reassemble: %v", i, err)
			}
			if got.Hash() != prop.BlockID || len(got.Txs) != len(txs) {
				t.Errorf("node %d: reassembled block %s with %d txs, want %s with %d", i, got.Hash(), len(got.Txs), prop.BlockID, len(txs))
			}
		}
		if i != 0 {
			if got := recvOne(t, ctx, h.evidence, fmt.Sprintf("evidence at node %d", i)); got.Hash() != ev.Hash() {
				t.Errorf("node %d: got evidence %s, want %s", i, got.Hash(), ev.Hash())
			}
		}
	}
	// The publisher never hears its own messages back.
	for i, ch := range []int{len(handlers[1].txs), len(handlers[3].proposals), len(handlers[0].evidence)} {
		if ch != 0 {
			t.Errorf("publisher %d received its own message", i)
		}
	}
}
