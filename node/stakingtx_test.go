package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/mempool"
	"github.com/ledgerd/ledgerd/p2p"
)

// TestStakingTxsNeverReachABlock: until the ledger executes staking
// transactions, a node refuses them from its RPC (KindDisabled) and from
// gossip, without penalising the peer that relays them (it may run a
// version that executes them), and no block carries one, so the chain
// keeps committing: the funded sender's transfer of the same nonce
// commits.
func TestStakingTxsNeverReachABlock(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	w := startTestnet(t, 4, nil)
	w.waitHeight(1, 60*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	a := startAttacker(t, ctx, w)
	a.waitJoined(t, ctx, "tx", len(w.nodes))

	funded := w.accounts[0]
	op := w.accounts[1].PubKey().Address()
	var staking []*ledger.Tx
	for _, tx := range []*ledger.Tx{
		{Kind: ledger.TxCreateValidator, ConsKey: w.accounts[2].PubKey(), Moniker: "joiner", Amount: 1000},
		{Kind: ledger.TxDelegate, To: op, Amount: 10},
		{Kind: ledger.TxUndelegate, To: op, Amount: 10},
		{Kind: ledger.TxUnjail},
	} {
		tx.ChainID, tx.Fee, tx.Nonce = "node-test", 1, 0
		tx.Sign(funded)
		staking = append(staking, tx)
		err := w.nodes[0].SubmitTx(ctx, tx)
		if c, _ := mempool.CodeOf(err); c != mempool.KindDisabled || !errors.Is(err, ledger.ErrStakingDisabled) {
			t.Fatalf("SubmitTx of a %s: %v, want KindDisabled", tx.Kind, err)
		}
	}
	start := w.nodes[0].Store().Height()
	for range 5 {
		a.publish(t, ctx, "tx", p2p.EncodeTxsMessage(staking))
	}
	transfer := &ledger.Tx{ChainID: "node-test", To: op, Amount: 5, Fee: 1, Nonce: 0}
	transfer.Sign(funded)
	if err := w.nodes[1].SubmitTx(ctx, transfer); err != nil {
		t.Fatalf("SubmitTx of a transfer: %v", err)
	}
	w.waitHeight(start+3, 60*time.Second)
	top := w.checkSameChain()
	committed := false
	for h := uint64(1); h <= top; h++ {
		b, err := w.nodes[0].Store().Block(h)
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range b.Txs {
			if tx.Kind != ledger.TxTransfer {
				t.Fatalf("block %d carries a %s", h, tx.Kind)
			}
			committed = committed || tx.Hash() == transfer.Hash()
		}
	}
	if !committed {
		t.Fatalf("the transfer was not committed by height %d", top)
	}
	for i, nd := range w.nodes {
		for _, tx := range staking {
			if nd.Mempool().Has(tx.Hash()) {
				t.Errorf("node %d pooled a %s", i, tx.Kind)
			}
		}
		for _, p := range nd.Peers() {
			if p.ID == a.h.ID() && p.Penalty != 0 {
				t.Errorf("node %d charged the relaying peer %.0f", i, p.Penalty)
			}
		}
		if nd.net.IsBanned(a.h.ID()) {
			t.Errorf("node %d banned the relaying peer", i)
		}
	}
}
