package rpc

import (
	"context"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/statetree"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// TestMethodsAnswerFromTheChain drives every read method over a small
// chain and checks each answer against the store, including that the
// account and inclusion proofs verify.
func TestMethodsAnswerFromTheChain(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{})
	a0, a1 := b.addr(0), b.addr(1)

	var sent api.SendResult
	tx0 := b.transfer(0, a1, 100, 3, 0)
	ts.call(t, api.MethodSendTransaction, &sent, hex.EncodeToString(tx0.Encode()))
	if sent.Hash != tx0.Hash() {
		t.Fatalf("send: hash %s, want %s", sent.Hash, tx0.Hash())
	}
	var pend api.Transaction
	ts.call(t, api.MethodGetTransaction, &pend, tx0.Hash())
	if pend.Status != api.TxPending || pend.Tx == nil || pend.Tx.Hash() != tx0.Hash() {
		t.Fatalf("pending tx: %+v", pend)
	}
	var acc api.Account
	ts.call(t, api.MethodGetAccount, &acc, a0)
	if acc.Nonce != 0 || acc.PendingNonce == nil || *acc.PendingNonce != 1 {
		t.Fatalf("account with one pending tx: nonce %d pending %v, want 0 and 1", acc.Nonce, acc.PendingNonce)
	}
	tx1 := b.transfer(0, a1, 5, 0, 1)
	ts.call(t, api.MethodSendTransaction, nil, tx1) // the JSON object form
	var mp api.Mempool
	ts.call(t, api.MethodMempool, &mp)
	if mp.Txs != 2 {
		t.Fatalf("mempool: %d txs, want 2", mp.Txs)
	}
	var pl api.Pending
	ts.call(t, api.MethodPendingTransactions, &pl, 1)
	if pl.Total != 2 || len(pl.Txs) != 1 || pl.Txs[0].Hash != tx0.Hash() {
		t.Fatalf("pending list: %+v", pl)
	}

	blk1 := b.commit(t, tx0, tx1)
	blk2 := b.commit(t) // commits blk1's commit and the state after it

	var tx api.Transaction
	ts.call(t, api.MethodGetTransaction, &tx, tx1.Hash())
	if tx.Status != api.TxCommitted || tx.Height == nil || *tx.Height != 1 || tx.Index == nil || *tx.Index != 1 {
		t.Fatalf("committed tx: %+v", tx)
	}
	if tx.Receipt == nil || tx.Receipt.Fee != 0 || tx.BlockHash == nil || *tx.BlockHash != blk1.Hash() {
		t.Fatalf("receipt: %+v", tx)
	}
	h1 := tx1.Hash()
	if err := tx.Proof.Proof.Verify(blk1.Header.TxRoot, h1[:]); err != nil {
		t.Fatalf("inclusion proof: %v", err)
	}
	var unknown api.Transaction
	ts.call(t, api.MethodGetTransaction, &unknown, crypto.Sum([]byte("nothing")))
	if unknown.Status != api.TxUnknown {
		t.Fatalf("unknown tx: %+v", unknown)
	}

	// The account after height 1, proven against the app hash in header 2.
	var proven api.Account
	ts.call(t, api.MethodGetAccount, &proven, a1, "1", true)
	want := ledger.Account{Balance: 1_000_000_000 + 105}
	if uint64(proven.Balance) != want.Balance || proven.PendingNonce != nil {
		t.Fatalf("account at 1: %+v", proven)
	}
	if proven.Proof.AppHash != blk2.Header.AppHash || proven.Proof.HeaderHeight != 2 {
		t.Fatalf("proof against %s (header %d), want %s (2)", proven.Proof.AppHash, proven.Proof.HeaderHeight, blk2.Header.AppHash)
	}
	if err := statetree.Verify(blk2.Header.AppHash, ledger.AccountKey(a1), want.Encode(), proven.Proof.Proof); err != nil {
		t.Fatalf("account proof: %v", err)
	}
	var absent api.Account
	stranger := crypto.Address{9}
	ts.call(t, api.MethodGetAccount, &absent, map[string]any{"address": stranger, "height": 1, "prove": true})
	if err := statetree.Verify(blk2.Header.AppHash, ledger.AccountKey(stranger), nil, absent.Proof.Proof); err != nil {
		t.Fatalf("absence proof: %v", err)
	}

	var byHeight, byHash, latest api.Block
	ts.call(t, api.MethodGetBlockByHeight, &byHeight, 1)
	ts.call(t, api.MethodGetBlockByHash, &byHash, blk1.Hash())
	ts.call(t, api.MethodGetBlockByHeight, &latest, "latest")
	if byHeight.Hash != blk1.Hash() || byHash.Hash != blk1.Hash() || byHeight.Block.Hash() != blk1.Hash() || len(byHeight.TxHashes) != 2 {
		t.Fatalf("block 1: by height %s, by hash %s, want %s", byHeight.Hash, byHash.Hash, blk1.Hash())
	}
	if latest.Hash != blk2.Hash() {
		t.Fatalf("latest block %s, want %s", latest.Hash, blk2.Hash())
	}
	var cm api.Commit
	ts.call(t, api.MethodGetCommit, &cm, 2)
	if err := cm.Commit.Verify(b.doc.ChainID, b.Validators(), 2, cm.Header.Hash()); err != nil || cm.BlockHash != blk2.Hash() {
		t.Fatalf("commit 2 does not verify for its header: %v", err)
	}

	var st api.Status
	ts.call(t, api.MethodStatus, &st)
	if st.LatestHeight != 2 || st.LatestBlockHash != blk2.Hash() || st.ChainID != b.doc.ChainID || st.GenesisHash != b.doc.Hash() ||
		st.ValidatorAddress == nil || st.CatchingUp {
		t.Fatalf("status: %+v", st)
	}
	var vals api.Validators
	ts.call(t, api.MethodValidators, &vals, 3)
	if vals.Hash != b.Validators().Hash() || len(vals.Validators) != 1 || vals.Height != 3 {
		t.Fatalf("validators: %+v", vals)
	}
	var g api.Genesis
	ts.call(t, api.MethodGenesis, &g)
	doc, err := genesis.Parse(g.Genesis)
	if err != nil || doc.Hash() != b.doc.Hash() || g.Hash != b.doc.Hash() {
		t.Fatalf("genesis: %v (hash %s, want %s)", err, g.Hash, b.doc.Hash())
	}
	var peers api.Peers
	ts.call(t, api.MethodPeers, &peers)
	if peers.Count != 0 || peers.Peers == nil {
		t.Fatalf("peers: %+v", peers)
	}
	var fee api.FeeSuggestion
	ts.call(t, api.MethodSuggestFee, &fee)
	if fee.Fee != 0 || fee.Congested {
		t.Fatalf("fee on an empty pool: %+v", fee)
	}
	var hist api.AccountTxs
	ts.call(t, api.MethodGetAccountTransactions, &hist, a1)
	if len(hist.Txs) != 2 || hist.Txs[0].Hash != tx0.Hash() || hist.Txs[1].Amount != 5 || hist.NextFromHeight != nil {
		t.Fatalf("history: %+v", hist)
	}
}

// TestAccountTransactionsPagesInsideBlocks checks that paging neither
// repeats nor skips a transaction when a page ends inside a block.
func TestAccountTransactionsPagesInsideBlocks(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{})
	to := b.addr(1)
	var want []historyEntry
	nonce := uint64(0)
	for h := 0; h < 4; h++ { // blocks of 3 transfers each
		var txs []*ledger.Tx
		for i := 0; i < 3; i++ {
			tx := b.transfer(0, to, 1, 0, nonce)
			nonce++
			txs = append(txs, tx)
		}
		blk := b.commit(t, txs...)
		for i, tx := range txs {
			want = append(want, historyEntry{blk.Height(), uint32(i), tx.Hash()})
		}
	}
	for _, limit := range []int{1, 2, 4, 5, 100} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			got := pageThrough(t, ts, to, limit, len(want))
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("pages gave %d txs %v,\nwant %d %v", len(got), got, len(want), want)
			}
		})
	}
}

// TestPrunedHeightAnswersPruned: once the store pruned the state below a
// height, an account read there (with or without a proof) answers -32014
// with the lowest height still kept, and the heights kept still answer.
func TestPrunedHeightAnswersPruned(t *testing.T) {
	b := newTestBackend(t, 1)
	ts := startServer(t, b, Config{})
	a1 := b.addr(1)
	for i := range 4 {
		b.commit(t, b.transfer(0, a1, 10, 0, uint64(i)))
	}
	if _, err := b.st.PruneState(context.Background(), 3, 100); err != nil {
		t.Fatal(err)
	}
	for _, prove := range []bool{false, true} {
		r := ts.callRaw(t, api.MethodGetAccount, a1, "2", prove)
		if r.Error == nil || r.Error.Code != api.CodePruned || r.Error.Data.Reason != "pruned" ||
			r.Error.Data.OldestHeight == nil || *r.Error.Data.OldestHeight != 3 {
			t.Fatalf("account at pruned height 2 (prove %v): %+v", prove, r.Error)
		}
		var acc api.Account
		ts.call(t, api.MethodGetAccount, &acc, a1, "3", prove)
		if acc.Balance != 1_000_000_000+30 {
			t.Fatalf("account at kept height 3 (prove %v): balance %d", prove, acc.Balance)
		}
	}
}
