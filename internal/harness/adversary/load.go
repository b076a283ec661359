package adversary

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/internal/harness/bench"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
)

// transfer is one honest transfer and what happened to it; times are
// since the load started.
type transfer struct {
	firstTry  time.Duration // the client's clock starts at the first attempt
	committed time.Duration // head arrival at the observer; 0: not yet
	height    uint64
	seen      int // blocks it appeared in (must end at exactly 1)
	admitted  bool
}

// load is the honest workload: every funded account sends 1-unit
// transfers in nonce order, each at rate/accounts per second, to one node
// (account i to clients[i mod len]), retrying refusals that may pass later.
// A transfer counts as admitted once a node answered with its hash.
type load struct {
	t0 time.Time

	mu       sync.Mutex
	txs      map[crypto.Hash]*transfer
	refusals map[string]int
}

func newLoad(t0 time.Time) *load {
	return &load{t0: t0, txs: make(map[crypto.Hash]*transfer), refusals: make(map[string]int)}
}

// run sends until ctx ends.
func (l *load) run(ctx context.Context, chainID string, keys []crypto.PrivKey, clients []*client.Client, rate float64) error {
	per := rate / float64(len(keys))
	var wg sync.WaitGroup
	errs := make([]error, len(keys))
	for i, k := range keys {
		c := clients[i%len(clients)]
		b, err := bench.NewPhasedBucket(per, 1, time.Now(), float64(i)/float64(len(keys)))
		if err != nil {
			return err
		}
		wg.Go(func() { errs[i] = l.account(ctx, chainID, k, c, b) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (l *load) account(ctx context.Context, chainID string, k crypto.PrivKey, c *client.Client, b *bench.Bucket) error {
	to := crypto.AddressFromPubKey(crypto.PubKey(k.PubKey()))
	to[0] ^= 0xff // a fixed recipient of its own
	var nonce uint64
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		acc, err := c.Account(actx, k.PubKey().Address())
		cancel()
		if err == nil {
			nonce = uint64(acc.Nonce)
			if acc.PendingNonce != nil {
				nonce = uint64(*acc.PendingNonce)
			}
			break
		}
		if sleepCtx(ctx, 200*time.Millisecond) != nil {
			return nil
		}
	}
	for {
		if b.Wait(ctx) != nil {
			return nil
		}
		tx := &ledger.Tx{ChainID: chainID, To: to, Amount: 1, Fee: 1, Nonce: nonce}
		tx.Sign(k)
		if !l.send(ctx, c, tx) {
			return nil
		}
		nonce++
	}
}

// send submits tx until a node admits it or ctx ends; it reports whether
// it was admitted.
func (l *load) send(ctx context.Context, c *client.Client, tx *ledger.Tx) bool {
	h := tx.Hash()
	first := time.Since(l.t0)
	backoff := 5 * time.Millisecond
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		got, err := c.SendTx(rctx, tx)
		cancel()
		code, coded := client.CodeOf(err)
		switch {
		case err == nil && got == h,
			coded && code == api.CodeDuplicate,
			coded && code == api.CodeNonceTooLow && attempt > 0:
			l.mu.Lock()
			t := l.txs[h]
			if t == nil { // not yet seen in a block
				t = &transfer{}
				l.txs[h] = t
			}
			t.firstTry, t.admitted = first, true
			l.mu.Unlock()
			return true
		case coded:
			l.refuse(api.CodeName(code))
		default:
			l.refuse("transport")
		}
		if sleepCtx(ctx, backoff) != nil {
			return false
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

func (l *load) refuse(reason string) {
	l.mu.Lock()
	l.refusals[reason]++
	l.mu.Unlock()
}

// markCommitted records that tx h was in the block at height whose head
// arrived at at. Every committed transfer is recorded, so one whose
// admission answer comes after its block is still matched.
func (l *load) markCommitted(h crypto.Hash, height uint64, at time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.txs[h]
	if t == nil {
		t = &transfer{}
		l.txs[h] = t
	}
	t.seen++
	if t.committed == 0 {
		t.committed, t.height = at, height
	}
}

// snapshot copies every admitted transfer.
func (l *load) snapshot() []transfer {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]transfer, 0, len(l.txs))
	for _, t := range l.txs {
		if t.admitted {
			out = append(out, *t)
		}
	}
	return out
}

// uncommitted counts admitted transfers not seen committed.
func (l *load) uncommitted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, t := range l.txs {
		if t.admitted && t.committed == 0 {
			n++
		}
	}
	return n
}
