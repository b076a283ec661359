package chaos

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// Workload pacing.
const (
	sendWait   = 5 * time.Second        // ledger_sendTransactionAndWait's timeout per attempt
	retryPause = 200 * time.Millisecond // between attempts at one transfer, so a dead node is not hammered
	readEvery  = 100 * time.Millisecond // per reader
	readFor    = 3 * time.Second        // a read not served fresh enough by then is dropped
	callFor    = time.Second            // one ledger_getAccount or ledger_getTransaction
)

// group is one sender and the recipient it pays.
type group struct {
	sender    crypto.PrivKey
	recipient crypto.Address
}

// recipientOf is the address sender group g pays: derived from the seed,
// held by nobody.
func recipientOf(seed int64, g int) crypto.Address {
	h := crypto.Sum([]byte("ledgerd chaos recipient/" + strconv.FormatInt(seed, 10) + "/" + strconv.Itoa(g)))
	var a crypto.Address
	copy(a[:], h[:])
	return a
}

// workload drives transfers and reads against the validators and records
// them in a History.
//
// Each sender has one transfer in flight: it signs nonce n, submits it
// with ledger_sendTransactionAndWait to a random validator, and on any
// error asks another validator whether it committed; it re-submits the
// same signed bytes until it sees it committed (which cannot commit it
// twice: the nonce forbids it), and only then signs n+1. The transfer is
// acknowledged at that moment.
//
// Readers read a random account of a random group from a random
// validator. A read counts only if the node answers at a height at least
// the highest height of any operation completed before the read began
// (the fence): a client of a replicated ledger that wants linearizable
// reads must not accept a lagging replica's answer, and this is how it
// knows one. Stale or failed reads are retried on the next validator, and
// dropped after readFor.
type workload struct {
	c       cluster
	hist    *History
	chainID string
	seed    int64
	groups  []group
	readers int
	targets int // validators 0..targets-1 receive the traffic

	fence       atomic.Uint64
	submissions atomic.Int64
	failures    atomic.Int64
	staleReads  atomic.Int64
	droppedRead atomic.Int64

	mu     sync.Mutex
	signed []*ledger.Tx
}

// raiseFence lifts the fence to h.
func (w *workload) raiseFence(h uint64) {
	for {
		f := w.fence.Load()
		if h <= f || w.fence.CompareAndSwap(f, h) {
			return
		}
	}
}

// run sends and reads until ctx ends; transfers in flight then keep being
// retried until drain ends. It returns when every sender and reader has.
func (w *workload) run(ctx, drain context.Context) {
	var wg sync.WaitGroup
	for g := range w.groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.send(ctx, drain, g)
		}()
	}
	for k := 0; k < w.readers; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.read(ctx, k)
		}()
	}
	wg.Wait()
}

func (w *workload) send(ctx, drain context.Context, g int) {
	amounts := newRNG(w.seed, fmt.Sprintf("sender/%d", g))
	nodes := newRNG(w.seed, fmt.Sprintf("sender-nodes/%d", g))
	gr := w.groups[g]
	for nonce := uint64(0); ctx.Err() == nil; nonce++ {
		tx := &ledger.Tx{ChainID: w.chainID, To: gr.recipient, Amount: 1 + uint64(amounts.intn(100)), Fee: 1, Nonce: nonce}
		tx.Sign(gr.sender)
		w.mu.Lock()
		w.signed = append(w.signed, tx)
		w.mu.Unlock()
		op := Op{Client: g, Kind: OpTransfer, Group: g, TxHash: tx.Hash(), Amount: tx.Amount, Fee: tx.Fee, Nonce: nonce,
			Call: w.hist.Now()}
		h, node, ok := w.commit(drain, tx, nodes)
		if !ok {
			op.Return = Pending
			w.hist.Add(op)
			return
		}
		op.Return, op.Height, op.Node = w.hist.Now(), h, node
		w.hist.Add(op)
		w.raiseFence(h)
	}
}

// commit submits tx until some validator says it committed, or ctx ends.
// It returns the commit height and the node that said so.
func (w *workload) commit(ctx context.Context, tx *ledger.Tx, nodes *rng) (uint64, int, bool) {
	for {
		n := nodes.intn(w.targets)
		cctx, cancel := context.WithTimeout(ctx, sendWait+time.Second)
		res, err := w.c.Client(n).SendTxAndWait(cctx, tx, sendWait)
		cancel()
		w.submissions.Add(1)
		if err == nil && res.Status == api.TxCommitted && res.Height != nil {
			return uint64(*res.Height), n, true
		}
		w.failures.Add(1)
		// The answer may have been lost, or the node may have died after
		// the commit: ask another one.
		m := nodes.intn(w.targets)
		cctx, cancel = context.WithTimeout(ctx, callFor)
		got, err := w.c.Client(m).Tx(cctx, tx.Hash(), false)
		cancel()
		if err == nil && got.Status == api.TxCommitted && got.Height != nil {
			return uint64(*got.Height), m, true
		}
		select {
		case <-ctx.Done():
			return 0, 0, false
		case <-time.After(retryPause):
		}
	}
}

func (w *workload) read(ctx context.Context, k int) {
	r := newRNG(w.seed, fmt.Sprintf("reader/%d", k))
	t := time.NewTicker(readEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g, role, n := r.intn(len(w.groups)), Role(r.intn(2)), r.intn(w.targets)
		addr := w.groups[g].recipient
		if role == Sender {
			addr = w.groups[g].sender.PubKey().Address()
		}
		op := Op{Client: len(w.groups) + k, Kind: OpRead, Group: g, Role: role, Call: w.hist.Now()}
		fence := w.fence.Load()
		deadline := time.Now().Add(readFor)
		for tries := 1; ; tries++ {
			cctx, cancel := context.WithTimeout(ctx, callFor)
			acc, err := w.c.Client(n).Account(cctx, addr)
			cancel()
			if err == nil && uint64(acc.Height) >= fence {
				op.Return = w.hist.Now()
				op.Balance, op.Nonce, op.Height, op.Node = uint64(acc.Balance), uint64(acc.Nonce), uint64(acc.Height), n
				w.hist.Add(op)
				w.raiseFence(op.Height)
				break
			}
			if err == nil {
				w.staleReads.Add(1)
			}
			if ctx.Err() != nil || time.Now().After(deadline) {
				w.droppedRead.Add(1)
				break
			}
			n = (n + 1) % w.targets
			if tries%w.targets == 0 {
				// Every validator was stale or down: give them a moment.
				select {
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
	}
}

// signedTxs returns every transfer signed so far.
func (w *workload) signedTxs() []*ledger.Tx {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*ledger.Tx(nil), w.signed...)
}
