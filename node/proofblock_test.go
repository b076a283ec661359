package node

import (
	"context"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// nextBlock waits for the next block event of sub.
func nextBlock(t *testing.T, n *Node, sub *Subscription, timeout time.Duration, what string) BlockEvent {
	t.Helper()
	select {
	case ev, ok := <-sub.C():
		if !ok {
			t.Fatalf("%s: subscription closed", what)
		}
		return ev
	case <-n.Done():
		t.Fatalf("%s: node stopped: %v", what, n.Err())
	case <-time.After(timeout):
		t.Fatalf("%s: no block after %s; the node is at height %d", what, timeout, n.Store().Height())
	}
	return BlockEvent{}
}

// A node that does not create empty blocks still makes one block after a
// block that changed the state: the app hash of block h is only in header
// h+1, so without it a light client could never verify the newest state
// of a quiet chain. After that proof block it waits again.
func TestProofBlockAfterAStateChange(t *testing.T) {
	cfg, devKey, err := InitDevHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Consensus.CreateEmptyBlocks {
		t.Fatal("a dev home creates empty blocks: the test proves nothing")
	}
	cfg.P2P.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.RPC.ListenAddr = "127.0.0.1:0"
	n, err := New(cfg, Options{Logger: testLogger(0)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	sub := n.Subscribe(64)
	defer sub.Close()

	payee, _ := crypto.GenerateKey(nil)
	tx := &ledger.Tx{ChainID: DevChainID, To: payee.PubKey().Address(), Amount: 5, Fee: 1, Nonce: 0}
	tx.Sign(devKey)
	if err := n.SubmitTx(ctx, tx); err != nil {
		t.Fatal(err)
	}
	const wait = 30 * time.Second // generous: a loaded machine
	b := nextBlock(t, n, sub, wait, "the block of the transfer")
	if len(b.Block.Txs) != 1 || b.Block.Txs[0].Hash() != tx.Hash() {
		t.Fatalf("block %d holds %d transactions, want the transfer", b.Block.Header.Height, len(b.Block.Txs))
	}
	h := b.Block.Header.Height
	changed, err := n.Store().AppHash(h)
	if err != nil {
		t.Fatal(err)
	}
	if changed == b.Block.Header.AppHash {
		t.Fatalf("block %d did not change the app hash", h)
	}
	proof := nextBlock(t, n, sub, wait, "the proof block")
	if got := proof.Block.Header; got.Height != h+1 || got.AppHash != changed || len(proof.Block.Txs) != 0 {
		t.Fatalf("next block %d with %d transactions and app hash %s, want the empty block %d committing to %s",
			got.Height, len(proof.Block.Txs), got.AppHash, h+1, changed)
	}
	// The proof block changed nothing, so nothing more is due: no block
	// while the waiting driver checks its mempool twice (the dev chain's
	// commit timeout is 10ms, so an empty-block loop would show at once).
	quiet := 2 * emptyBlockCheck
	select {
	case ev := <-sub.C():
		t.Fatalf("block %d (%d transactions) after the proof block, with nothing to prove or to include",
			ev.Block.Header.Height, len(ev.Block.Txs))
	case <-time.After(quiet):
	}
}
