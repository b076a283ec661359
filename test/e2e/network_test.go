package e2e

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// load sends transfers from the network's accounts to one recipient, each
// to a node taken round-robin from targets, and records every transfer a
// node admitted.
type load struct {
	w        *network
	to       crypto.Address
	mu       sync.Mutex
	targets  []int
	nonces   []uint64
	acked    []*ledger.Tx
	unknown  []*ledger.Tx // the node answered with an error: admitted or not, nobody knows
	sent     atomic.Int64
	failures atomic.Int64
}

func newLoad(w *network) *load {
	return &load{w: w, to: addrOf("e2e recipient"), nonces: make([]uint64, len(w.accounts)), targets: []int{0, 1, 2, 3}}
}

func addrOf(s string) crypto.Address {
	h := crypto.Sum([]byte(s))
	var a crypto.Address
	copy(a[:], h[:])
	return a
}

func (l *load) setTargets(t ...int) {
	l.mu.Lock()
	l.targets = t
	l.mu.Unlock()
}

// send submits one transfer from account a to the k-th target; it keeps
// the transfer only if the node admitted it.
func (l *load) send(ctx context.Context, a, k int) {
	l.mu.Lock()
	target := l.targets[k%len(l.targets)]
	nonce := l.nonces[a]
	l.mu.Unlock()
	tx := &ledger.Tx{ChainID: l.w.chainID, To: l.to, Amount: 1 + uint64(a), Fee: 1, Nonce: nonce}
	tx.Sign(l.w.accounts[a])
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	l.sent.Add(1)
	if _, err := l.w.clients[target].SendTx(cctx, tx); err != nil {
		if n := l.failures.Add(1); n <= 5 {
			l.w.t.Logf("send to node%d (account %d nonce %d): %v", target, a, nonce, err)
		}
		// Like a wallet: the transfer may still have been admitted, so ask
		// the node for the account's next nonce before signing another.
		l.mu.Lock()
		l.unknown = append(l.unknown, tx)
		l.mu.Unlock()
		if acc, err := l.w.clients[target].Account(cctx, l.w.accounts[a].PubKey().Address()); err == nil && acc.PendingNonce != nil {
			l.mu.Lock()
			l.nonces[a] = max(l.nonces[a], uint64(*acc.PendingNonce))
			l.mu.Unlock()
		}
		return
	}
	l.mu.Lock()
	l.nonces[a]++
	l.acked = append(l.acked, tx)
	l.mu.Unlock()
}

// run sends at about rate transfers per second until ctx ends.
func (l *load) run(ctx context.Context, rate int) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for k := 0; ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			l.send(ctx, k%len(l.w.accounts), k)
		}
	}
}

// rebroadcast re-submits, in nonce order, every transfer not yet committed
// on node i, as a wallet does: a transfer admitted by a node that was then
// killed before gossiping it is gone from every mempool, and the sender's
// later nonces wait behind the gap. Re-submitting the same bytes can never
// make a transfer commit twice (the nonce forbids it).
func (l *load) rebroadcast(i int) {
	w := l.w
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l.mu.Lock()
	all := append(append([]*ledger.Tx(nil), l.acked...), l.unknown...)
	l.mu.Unlock()
	sort.Slice(all, func(a, b int) bool { return all[a].Nonce < all[b].Nonce })
	resent := 0
	for _, tx := range all {
		got, err := w.clients[i].Tx(ctx, tx.Hash(), false)
		if err == nil && got.Status != api.TxUnknown {
			continue
		}
		if _, err := w.clients[i].SendTx(ctx, tx); err == nil {
			resent++
		}
	}
	w.t.Logf("re-submitted %d transfers that no mempool of node%d held", resent, i)
}

// waitCommitted waits until every admitted transfer is committed on node i
// and returns the amount moved to the recipient: by those, and by the
// transfers whose submission failed but which committed all the same.
// Call it once the chain has moved past every unknown transfer.
func (l *load) waitCommitted(i int, timeout time.Duration) uint64 {
	w := l.w
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	l.mu.Lock()
	acked := append([]*ledger.Tx(nil), l.acked...)
	unknown := append([]*ledger.Tx(nil), l.unknown...)
	l.mu.Unlock()
	var total uint64
	for _, tx := range acked {
		total += tx.Amount
		for {
			got, err := w.clients[i].Tx(ctx, tx.Hash(), false)
			if err == nil && got.Status == api.TxCommitted {
				break
			}
			if ctx.Err() != nil {
				w.t.Fatalf("admitted transfer %s (nonce %d) not committed on node%d within %s (last: %+v, %v)",
					tx.Hash(), tx.Nonce, i, timeout, got, err)
			}
			h, _ := w.height(ctx, i)
			w.waitHeight(i, h+1, timeout)
		}
	}
	// Transfers whose outcome the client never learned count if committed.
	// One may still sit in the mempool of a node that has not gossiped it
	// to node i yet, so they are judged once no running node holds any
	// pending transfer (the load has stopped).
	for {
		pending := 0
		for _, c := range w.clients {
			if mp, err := c.Mempool(ctx); err == nil {
				pending += mp.Txs
			}
		}
		if pending == 0 {
			break
		}
		if ctx.Err() != nil {
			w.t.Fatalf("%d transfers still pending on the nodes after %s", pending, timeout)
		}
		h, _ := w.height(ctx, i)
		w.waitHeight(i, h+1, timeout)
	}
	// A retry of the same bytes that was admitted is counted above (a send
	// that failed on a node killed mid-request leaves the nonce
	// unrefreshed, so the next transfer of that account is the identical
	// transfer).
	ackedHash := make(map[crypto.Hash]bool, len(acked))
	for _, tx := range acked {
		ackedHash[tx.Hash()] = true
	}
	for _, tx := range unknown {
		if ackedHash[tx.Hash()] {
			continue
		}
		ackedHash[tx.Hash()] = true // the same failed send twice counts once
		got, err := w.clients[i].Tx(ctx, tx.Hash(), false)
		if err != nil {
			w.t.Fatalf("node%d: %v", i, err)
		}
		if got.Status == api.TxCommitted {
			total += tx.Amount
		}
	}
	return total
}

// checkRecipient checks that every listed node shows the recipient holding
// want after height h.
func (l *load) checkRecipient(want uint64, nodes ...int) {
	w := l.w
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := w.sameChain(nodes...)
	for _, i := range nodes {
		acc, err := w.clients[i].AccountAt(ctx, l.to, api.At(h), false)
		if err != nil {
			w.t.Fatalf("node%d account: %v", i, err)
		}
		if uint64(acc.Balance) != want {
			w.t.Fatalf("node%d: recipient holds %d after height %d, want %d", i, acc.Balance, h, want)
		}
	}
}

// TestFourProcessesCommitTheSameChain: four validator processes; transfers
// submitted to different nodes all commit, and all four hold the same
// blocks, app hashes and balances.
func TestFourProcessesCommitTheSameChain(t *testing.T) {
	w := startNetwork(t, 4, 8)
	w.waitHeight(0, 1, 60*time.Second)
	l := newLoad(w)
	ctx := context.Background()
	for k := 0; k < 40; k++ {
		l.send(ctx, k%8, k)
	}
	if got := len(l.acked); got != 40 {
		t.Fatalf("%d of 40 transfers admitted", got)
	}
	want := l.waitCommitted(0, 60*time.Second)
	h, _ := w.height(ctx, 0)
	for i := 1; i < 4; i++ {
		w.waitHeight(i, h, 30*time.Second)
	}
	l.checkRecipient(want, 0, 1, 2, 3)
}

// TestValidatorCrashes kills validators with SIGKILL under load: with one
// of four down the others keep committing and the restarted one catches up
// onto the same chain; with two of four down progress stops without a
// fork, and resumes when one comes back. No admitted transfer is lost.
func TestValidatorCrashes(t *testing.T) {
	w := startNetwork(t, 4, 16)
	w.waitHeight(0, 2, 60*time.Second)
	l := newLoad(w)
	ctx, stopLoad := context.WithCancel(context.Background())
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		l.run(ctx, 200)
	}()
	defer func() {
		stopLoad()
		<-loadDone
	}()

	// One of four down: the other three keep committing.
	l.setTargets(0, 1, 2)
	if err := w.net.Kill(3); err != nil {
		t.Fatal(err)
	}
	h0, _ := w.height(context.Background(), 0)
	for i := 0; i < 3; i++ {
		w.waitHeight(i, h0+5, 60*time.Second)
	}
	w.sameChain(0, 1, 2)

	// Restarted, it catches up and holds the same chain.
	w.start(3)
	h1, _ := w.height(context.Background(), 0)
	w.waitHeight(3, h1+2, 90*time.Second)
	w.sameChain(0, 1, 2, 3)
	t.Logf("node3 killed at height ~%d, restarted at %d, caught up", h0, h1)

	// Two of four down: no progress, no fork.
	l.setTargets(0, 1)
	if err := w.net.Kill(2); err != nil {
		t.Fatal(err)
	}
	if err := w.net.Kill(3); err != nil {
		t.Fatal(err)
	}
	stuck, _ := w.height(context.Background(), 0)
	w.noNewHeights(stuck+1, 5*time.Second, 0, 1)
	w.sameChain(0, 1)

	// One back: progress resumes.
	w.start(2)
	for i := 0; i < 3; i++ {
		w.waitHeight(i, stuck+3, 90*time.Second)
	}
	w.start(3)
	stopLoad()
	<-loadDone
	l.rebroadcast(0)
	want := l.waitCommitted(0, 90*time.Second)
	top, _ := w.height(context.Background(), 0)
	w.waitHeight(3, top, 90*time.Second)
	l.checkRecipient(want, 0, 1, 2, 3)
	t.Logf("%d transfers sent, %d admitted, all committed; %d refused while nodes were down",
		l.sent.Load(), len(l.acked), l.failures.Load())
}

// noNewHeights watches the listed nodes' new block headers for d and fails
// if any of them commits a height above max.
func (w *network) noNewHeights(max uint64, d time.Duration, nodes ...int) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	errs := make(chan error, len(nodes))
	for _, i := range nodes {
		ws, err := w.clients[i].DialWS(ctx)
		if err != nil {
			w.t.Fatalf("node%d: %v", i, err)
		}
		defer ws.Close()
		sub, err := ws.SubscribeNewHeads(ctx)
		if err != nil {
			w.t.Fatalf("node%d: %v", i, err)
		}
		go func() {
			for {
				head, err := sub.NextHead(ctx)
				if err != nil {
					errs <- nil // the watch ended
					return
				}
				if uint64(head.Height) > max {
					errs <- fmt.Errorf("node%d committed height %d; no height above %d may commit", i, head.Height, max)
					return
				}
			}
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			w.t.Fatal(err)
		}
	}
	for _, i := range nodes {
		if h, err := w.height(context.Background(), i); err == nil && h > max {
			w.t.Fatalf("node%d at height %d, above %d", i, h, max)
		}
	}
}
