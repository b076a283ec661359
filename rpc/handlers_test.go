package rpc

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
	"github.com/ledgerd/ledgerd/ledger/store"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// These tests run the handlers over fakeBackend: each puts the chain or
// the pool in one precise state and checks the answer. The tests over a
// real store and mempool (methods_test.go and the others) check that the
// same answers come from the real thing.

// startFake serves b with the default configuration, logging into log
// when it is not nil.
func startFake(t testing.TB, b *fakeBackend, log *lockedBuffer) *testServer {
	t.Helper()
	cfg := Config{}
	if log != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(log, nil))
	}
	s, err := New(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, s, nil)
}

// lockedBuffer is a log sink the server's goroutines may share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestTxCommittingBetweenReadsIsReportedCommitted commits a pending
// transaction (it leaves the pool and enters the chain) at the one moment
// a lookup is between its store read and its mempool read: the answer must
// be the committed transaction, never "unknown".
func TestTxCommittingBetweenReadsIsReportedCommitted(t *testing.T) {
	b := newFakeBackend(t, 100)
	ts := startFake(t, b, nil)
	tx := ledgertest.Transfer(b.chain.Accounts[0], b.chain.Accounts[1].PubKey().Address(), 5, 1, 0)
	b.pool.add(tx)
	blk := b.block(tx)
	var once sync.Once
	b.pool.onGet = func(h crypto.Hash) {
		once.Do(func() {
			b.ch.add(blk, nil)
			b.pool.remove(h)
		})
	}

	var got api.Transaction
	ts.call(t, api.MethodGetTransaction, &got, tx.Hash())
	if got.Status != api.TxCommitted || got.Height == nil || *got.Height != 1 || got.Index == nil || *got.Index != 0 {
		t.Fatalf("tx committed during the lookup: %+v, want committed at height 1 index 0", got)
	}
	h := tx.Hash()
	if got.Proof == nil || got.Proof.Proof.Verify(blk.Header.TxRoot, h[:]) != nil {
		t.Fatalf("inclusion proof %+v does not verify against the block's tx root", got.Proof)
	}
}

// TestSuggestFeeOutbidsTheNextBlocksLowest checks the fee suggestion
// against pools of each shape: room for everyone suggests 0; a pool
// holding more than a block suggests one more than the lowest fee the next
// block would take, whatever the fees left out.
func TestSuggestFeeOutbidsTheNextBlocksLowest(t *testing.T) {
	cases := []struct {
		name          string
		fees          []uint64 // in the order the next blocks would take them
		wantFee       uint64
		wantCongested bool
	}{
		{"empty pool", nil, 0, false},
		{"one block's worth", []uint64{9, 1, 5}, 0, false},
		{"one more than a block", []uint64{9, 4, 7, 100}, 5, true},
		{"lowest taken last", []uint64{9, 8, 2, 1, 1}, 3, true},
		{"zero fees taken", []uint64{0, 0, 0, 0}, 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newFakeBackend(t, 3)
			ts := startFake(t, b, nil)
			to := b.chain.Accounts[2].PubKey().Address()
			for i, fee := range c.fees {
				b.pool.add(ledgertest.Transfer(b.chain.Accounts[i%2], to, 1, fee, uint64(i)))
			}
			var got api.FeeSuggestion
			ts.call(t, api.MethodSuggestFee, &got)
			if uint64(got.Fee) != c.wantFee || got.Congested != c.wantCongested || got.PendingTxs != len(c.fees) || got.MaxBlockTxs != 3 {
				t.Fatalf("fees %v: got %+v, want fee %d congested %v pending %d max 3", c.fees, got, c.wantFee, c.wantCongested, len(c.fees))
			}
		})
	}
}

// TestPendingNonceIsTheHigherOfPoolAndChain checks getAccount's
// pending_nonce: the pool's next nonce when it is ahead of the chain, the
// committed nonce when the pool holds nothing for the sender or lags the
// chain (a commit it has not re-checked yet), and absent for a past height.
func TestPendingNonceIsTheHigherOfPoolAndChain(t *testing.T) {
	b := newFakeBackend(t, 100)
	ts := startFake(t, b, nil)
	b.ch.add(b.block(), nil)
	cases := []struct {
		name        string
		poolNext    uint64 // 0: the pool holds nothing for the sender
		height      any
		wantPending uint64 // 0: no pending_nonce in the answer
	}{
		{"nothing pending", 0, "latest", 5},
		{"pool ahead", 7, "latest", 7},
		{"pool behind the chain", 3, "latest", 5},
		{"past height", 7, "1", 0},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := crypto.Address{byte(i + 1)}
			b.ch.setAccount(addr, ledger.Account{Balance: 10, Nonce: 5})
			if c.poolNext != 0 {
				b.pool.setNextNonce(addr, c.poolNext)
			}
			var got api.Account
			ts.call(t, api.MethodGetAccount, &got, addr, c.height)
			if got.Nonce != 5 || got.Balance != 10 {
				t.Fatalf("account: nonce %d balance %d, want 5 and 10", got.Nonce, got.Balance)
			}
			switch {
			case c.wantPending == 0 && got.PendingNonce != nil:
				t.Fatalf("pending_nonce %d at a past height, want none", *got.PendingNonce)
			case c.wantPending != 0 && (got.PendingNonce == nil || uint64(*got.PendingNonce) != c.wantPending):
				t.Fatalf("pending_nonce %v, want %d", got.PendingNonce, c.wantPending)
			}
		})
	}
}

// TestMissingChainDataIsNotFound checks that heights and hashes the chain
// cannot answer for get CodeNotFound, whether they lie beyond the tip or
// the chain has lost them.
func TestMissingChainDataIsNotFound(t *testing.T) {
	b := newFakeBackend(t, 100)
	ts := startFake(t, b, nil)
	empty := []struct {
		method string
		params []any
	}{
		{api.MethodGetBlockByHeight, []any{"latest"}},
		{api.MethodGetBlockByHeight, []any{1}},
		{api.MethodGetCommit, nil},
		{api.MethodValidators, []any{3}},
		{api.MethodValidators, []any{0}},
		{api.MethodGetAccount, []any{crypto.Address{1}, "1"}},
	}
	for _, c := range empty {
		if r := ts.callRaw(t, c.method, c.params...); r.errCode() != api.CodeNotFound {
			t.Errorf("%s %v before the first block: code %d (%+v), want %d", c.method, c.params, r.errCode(), r.Error, api.CodeNotFound)
		}
	}
	var vals api.Validators
	ts.call(t, api.MethodValidators, &vals, 1) // the height being decided
	if vals.Height != 1 {
		t.Fatalf("validators for the height being decided: %+v", vals)
	}

	// Block 1 without its commit, then a height 2 whose block is lost.
	b.ch.add(b.block(), nil)
	b.ch.setHeight(2)
	lost := []struct {
		method string
		params []any
	}{
		{api.MethodGetCommit, []any{1}},
		{api.MethodGetBlockByHeight, []any{2}},
		{api.MethodGetCommit, []any{"latest"}},
		{api.MethodGetBlockByHash, []any{crypto.Sum([]byte("no such block"))}},
	}
	for _, c := range lost {
		if r := ts.callRaw(t, c.method, c.params...); r.errCode() != api.CodeNotFound {
			t.Errorf("%s %v with the data missing: code %d (%+v), want %d", c.method, c.params, r.errCode(), r.Error, api.CodeNotFound)
		}
	}
}

// TestChainFailuresAreInternalErrors makes every chain read fail as a
// broken disk would and checks that each read method answers
// CodeInternal with a message that leaks nothing, logs the cause, and
// never panics.
func TestChainFailuresAreInternalErrors(t *testing.T) {
	b := newFakeBackend(t, 100)
	log := &lockedBuffer{}
	ts := startFake(t, b, log)
	tx := ledgertest.Transfer(b.chain.Accounts[0], b.chain.Accounts[1].PubKey().Address(), 5, 1, 0)
	blk := b.block(tx)
	b.ch.add(blk, nil)
	b.ch.fail(errors.New("disk on fire"))
	addr := b.chain.Accounts[0].PubKey().Address()
	calls := []struct {
		method string
		params []any
	}{
		{api.MethodGetBlockByHeight, []any{1}},
		{api.MethodGetBlockByHash, []any{blk.Hash()}},
		{api.MethodGetCommit, []any{1}},
		{api.MethodGetAccount, []any{addr}},
		{api.MethodGetAccount, []any{addr, "latest", true}},
		{api.MethodGetAccountTransactions, []any{addr}},
	}
	for _, c := range calls {
		r := ts.callRaw(t, c.method, c.params...)
		if r.errCode() != api.CodeInternal || strings.Contains(r.Error.Message, "disk") {
			t.Errorf("%s %v over a failing chain: %+v, want code %d without the cause", c.method, c.params, r.Error, api.CodeInternal)
		}
	}
	logs := log.String()
	if strings.Contains(logs, "panicked") || strings.Count(logs, "disk on fire") != len(calls) {
		t.Fatalf("want each failure logged once with its cause and no panic; logs:\n%s", logs)
	}
}

// TestCorruptTxIndexIsAnErrorNotAPanic points the transaction index past
// the end of its block: the lookup is an internal error, logged, and the
// server keeps answering.
func TestCorruptTxIndexIsAnErrorNotAPanic(t *testing.T) {
	b := newFakeBackend(t, 100)
	log := &lockedBuffer{}
	ts := startFake(t, b, log)
	tx := ledgertest.Transfer(b.chain.Accounts[0], b.chain.Accounts[1].PubKey().Address(), 5, 1, 0)
	b.ch.add(b.block(tx), nil)
	ghost := crypto.Sum([]byte("ghost"))
	b.ch.setTxLocation(ghost, store.TxLocation{Height: 1, Index: 5})

	for _, prove := range []bool{false, true} {
		r := ts.callRaw(t, api.MethodGetTransaction, ghost, prove)
		if r.errCode() != api.CodeInternal {
			t.Fatalf("tx indexed past its block (prove %v): %+v, want code %d", prove, r.Error, api.CodeInternal)
		}
	}
	if logs := log.String(); strings.Contains(logs, "panicked") || !strings.Contains(logs, "index 5 beyond block 1") {
		t.Fatalf("want the corrupt entry logged and no panic; logs:\n%s", logs)
	}
	var good api.Transaction
	ts.call(t, api.MethodGetTransaction, &good, tx.Hash())
	if good.Status != api.TxCommitted {
		t.Fatalf("the intact entry after the corrupt one: %+v", good)
	}
}
