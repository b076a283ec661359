package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/internal/testkit/testseed"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/node"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// killLoopRestarts is how many times TestKillLoop kills the dev chain.
const killLoopRestarts = 50

// acked is a transfer the client saw committed.
type acked struct {
	tx     *ledger.Tx
	height uint64
}

// killLoad sends transfers from the dev account in small batches and
// records those it saw committed. It survives the node going away: after an
// error it waits for the node and re-reads the committed nonce (the
// mempool died with the process).
type killLoad struct {
	d   *devChain
	key crypto.PrivKey
	to  crypto.Address

	mu     sync.Mutex
	acked  []acked
	errors int
}

func (l *killLoad) run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := l.batch(ctx, 4); err != nil {
			l.mu.Lock()
			l.errors++
			l.mu.Unlock()
			select { // the node is down or restarting: back off before asking again
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// batch sends n transfers with consecutive nonces from the committed one,
// then waits for each and records the committed ones.
func (l *killLoad) batch(ctx context.Context, n int) error {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	acc, err := l.d.client.Account(cctx, l.key.PubKey().Address())
	if err != nil {
		return err
	}
	nonce := uint64(acc.Nonce)
	var txs []*ledger.Tx
	for i := 0; i < n; i++ {
		tx := &ledger.Tx{ChainID: node.DevChainID, To: l.to, Amount: 1 + uint64(i), Fee: 1, Nonce: nonce + uint64(i)}
		tx.Sign(l.key)
		if _, err := l.d.client.SendTx(cctx, tx); err != nil {
			break
		}
		txs = append(txs, tx)
	}
	if len(txs) == 0 {
		return context.DeadlineExceeded
	}
	last := txs[len(txs)-1]
	var firstErr error
	for _, tx := range txs {
		var got *api.Transaction
		if tx == last {
			got, err = l.d.client.SendTxAndWait(cctx, tx, 2*time.Second) // the same bytes again: waits for the commit
		} else {
			got, err = l.d.client.Tx(cctx, tx.Hash(), false)
		}
		if err == nil && got.Status == api.TxCommitted && got.Height != nil {
			l.mu.Lock()
			l.acked = append(l.acked, acked{tx: tx, height: uint64(*got.Height)})
			l.mu.Unlock()
		} else if firstErr == nil && err != nil {
			firstErr = err
		}
	}
	return firstErr
}

// TestKillLoop kills a dev chain under load with SIGKILL at random
// instants (from the printed seed), 50 times, restarting it each time on
// the same home. At the end every transfer a client saw committed is in the
// chain exactly once at the height it was seen at, no transaction is in the
// chain twice, the supply is conserved (sender, recipient and the proposer
// that earned the fees hold the genesis supply), no
// temporary file of an interrupted write is left, and the node is healthy.
func TestKillLoop(t *testing.T) {
	rng, _ := testseed.Rand(t)
	d := newDevChain(t)
	d.start()
	l := &killLoad{d: d, key: d.devKey(), to: addrOf("kill-loop recipient")}
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); l.run(ctx) }()

	began := time.Now()
	for i := 0; i < killLoopRestarts; i++ {
		// A few kills land while the node starts (WAL replay, recovery),
		// the rest while it commits under load.
		var wait time.Duration
		if rng.IntN(5) == 0 {
			wait = time.Duration(rng.IntN(300)) * time.Millisecond
		} else {
			d.waitRPC(60 * time.Second)
			wait = time.Duration(100+rng.IntN(900)) * time.Millisecond
		}
		select {
		case <-d.exited:
			t.Fatalf("kill %d: the node exited by itself: %v\n%s", i, d.cmd.ProcessState, d.logTail(3000))
		case <-time.After(wait):
		}
		d.kill()
		d.startNoWait()
	}
	d.waitRPC(60 * time.Second)
	// Let the load commit a last batch on the final run, then stop it.
	want := len(l.ackedSnapshot()) + 1
	deadline := time.Now().Add(60 * time.Second)
	for len(l.ackedSnapshot()) < want {
		if time.Now().After(deadline) {
			t.Fatalf("no transfer committed after the last restart within 60s\n%s", d.logTail(3000))
		}
		select {
		case <-d.exited:
			t.Fatalf("the node exited after the last restart: %v\n%s", d.cmd.ProcessState, d.logTail(3000))
		case <-time.After(50 * time.Millisecond): // polling the load's progress
		}
	}
	stopLoad()
	wg.Wait()
	acks := l.ackedSnapshot()
	t.Logf("%d kills in %s; %d transfers acknowledged, %d client errors", killLoopRestarts, time.Since(began).Round(time.Millisecond), len(acks), l.errors)
	if len(acks) < killLoopRestarts {
		t.Fatalf("only %d transfers acknowledged over %d restarts: the load did not run", len(acks), killLoopRestarts)
	}
	checkKillLoopChain(t, d, l, acks)
}

func (l *killLoad) ackedSnapshot() []acked {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]acked(nil), l.acked...)
}

// checkKillLoopChain reads the whole chain and checks it against what the
// client saw.
func checkKillLoopChain(t *testing.T, d *devChain, l *killLoad, acks []acked) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	st, err := d.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	top := uint64(st.LatestHeight)
	where := map[crypto.Hash][]uint64{}
	proposers := map[crypto.Address]bool{}
	var moved, fees uint64
	for h := uint64(1); h <= top; h++ {
		b, err := d.client.Block(ctx, api.At(h))
		if err != nil {
			t.Fatalf("block %d: %v", h, err)
		}
		proposers[b.Block.Header.Proposer] = true
		for _, tx := range b.Block.Txs {
			where[tx.Hash()] = append(where[tx.Hash()], h)
			if tx.To == l.to {
				moved += tx.Amount
			}
			fees += tx.Fee
		}
	}
	for hash, hs := range where {
		if len(hs) != 1 {
			t.Errorf("transaction %s is in the chain %d times (heights %v)", hash, len(hs), hs)
		}
	}
	for _, a := range acks {
		hs := where[a.tx.Hash()]
		if len(hs) != 1 || hs[0] != a.height {
			t.Errorf("acknowledged transfer %s (nonce %d, seen committed at height %d) is at heights %v",
				a.tx.Hash(), a.tx.Nonce, a.height, hs)
		}
	}
	dev, err := d.client.AccountAt(ctx, l.key.PubKey().Address(), api.At(top), false)
	if err != nil {
		t.Fatal(err)
	}
	rcpt, err := d.client.AccountAt(ctx, l.to, api.At(top), false)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(rcpt.Balance) != moved {
		t.Errorf("recipient holds %d, the chain's transfers moved %d", rcpt.Balance, moved)
	}
	// Fees go to the block's proposer (the dev validator).
	var earned uint64
	for p := range proposers {
		acc, err := d.client.AccountAt(ctx, p, api.At(top), false)
		if err != nil {
			t.Fatal(err)
		}
		earned += uint64(acc.Balance)
	}
	if earned != fees {
		t.Errorf("proposers hold %d, the chain's transfers paid %d in fees", earned, fees)
	}
	if sum := uint64(dev.Balance) + uint64(rcpt.Balance) + earned; sum != node.DevBalance {
		t.Errorf("balances: dev %d + recipient %d + proposers %d = %d, want the genesis supply %d",
			dev.Balance, rcpt.Balance, earned, sum, node.DevBalance)
	}
	cfg := node.DefaultConfig(d.home)
	for _, dir := range []string{cfg.ConfigDir(), cfg.DataDir()} {
		left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
		if len(left) > 0 {
			t.Errorf("temporary files left in %s: %q", dir, left)
		}
	}
	h, err := d.client.Health(ctx)
	if err != nil || !h.Healthy {
		t.Errorf("health after the loop: %+v, %v", h, err)
	}
	if t.Failed() {
		os.Stderr.WriteString(d.logTail(4000))
	}
}
