package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
)

// blockSeen is one committed block as the observer saw it.
type blockSeen struct {
	Height  uint64
	Arrived time.Duration // since the load started (negative: before)
	Time    ledger.Timestamp
	Txs     int // all transactions in the block
	Ours    int // those of this run
	// PrevRound is the round in which the previous height was decided
	// (from this block's last commit); -1 when unknown.
	PrevRound int
}

// arrival is a head notification and when it came.
type arrival struct {
	height uint64
	at     time.Duration
}

// observer watches one node's committed blocks and marks this run's
// transfers committed.
type observer struct {
	c    *client.Client
	plan *plan
	t0   time.Time
	// after is the last height committed before the observer started.
	after uint64
	slots chan struct{} // closed loop: released as transfers commit

	committed atomic.Int64
	twice     atomic.Int64  // transfers found in a second block (must stay 0)
	changed   chan struct{} // signalled (non-blocking) after every block

	mu     sync.Mutex
	blocks []blockSeen
	err    error // the last error fetching blocks, for the report
}

// newObserver subscribes to node c's new heads; the heights above the
// node's current one are this run's. Set t0, then run it with run.
func newObserver(ctx context.Context, c *client.Client, p *plan, slots chan struct{}) (*observer, *client.WSClient, *client.Subscription, error) {
	ws, err := c.DialWS(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("observe: %w", err)
	}
	sub, err := ws.SubscribeNewHeads(ctx)
	if err != nil {
		ws.Close()
		return nil, nil, nil, fmt.Errorf("observe: subscribe to new heads: %w", err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		ws.Close()
		return nil, nil, nil, fmt.Errorf("observe: %w", err)
	}
	o := &observer{c: c, plan: p, after: uint64(st.LatestHeight), slots: slots, changed: make(chan struct{}, 1)}
	return o, ws, sub, nil
}

// run follows the heads until ctx ends: one goroutine stamps each head as
// it arrives (re-dialling if the WebSocket drops, and filling any gap in
// the heights), another fetches each block and matches its transactions.
func (o *observer) run(ctx context.Context, ws *client.WSClient, sub *client.Subscription) {
	queue := make(chan arrival, 1<<16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(queue)
		o.follow(ctx, ws, sub, queue)
	}()
	for a := range queue {
		o.fetch(ctx, a)
	}
	wg.Wait()
}

// follow feeds queue with every height above o.after, in order.
func (o *observer) follow(ctx context.Context, ws *client.WSClient, sub *client.Subscription, queue chan<- arrival) {
	last := o.after
	enqueue := func(h uint64, at time.Duration) {
		for ; last < h; last++ {
			select {
			case queue <- arrival{height: last + 1, at: at}:
			case <-ctx.Done():
				return
			}
		}
	}
	defer func() {
		if ws != nil {
			ws.Close()
		}
	}()
	for ctx.Err() == nil {
		for {
			head, err := sub.NextHead(ctx)
			if err != nil {
				break
			}
			enqueue(uint64(head.Height), time.Since(o.t0))
		}
		if ws != nil {
			ws.Close()
			ws = nil
		}
		if ctx.Err() != nil {
			return
		}
		// The connection dropped: dial again, then catch up on the heights
		// missed meanwhile (their arrival is when we learnt of them).
		for ctx.Err() == nil {
			w, err := o.c.DialWS(ctx)
			if err == nil {
				if sub, err = w.SubscribeNewHeads(ctx); err == nil {
					ws = w
					break
				}
				w.Close()
			}
			if ctx.Err() == nil {
				o.setErr(fmt.Errorf("re-subscribe to new heads: %w", err))
			}
			select {
			case <-time.After(200 * time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
		if st, err := o.c.Status(ctx); err == nil {
			enqueue(uint64(st.LatestHeight), time.Since(o.t0))
		}
	}
}

// blockHashes is the part of ledger_getBlockByHeight's answer the
// observer reads (the transactions themselves are skipped).
type blockHashes struct {
	TxHashes []crypto.Hash `json:"tx_hashes"`
	Block    struct {
		Header struct {
			Time ledger.Timestamp `json:"time"`
		} `json:"header"`
		LastCommit *struct {
			Round uint32 `json:"round"`
		} `json:"last_commit"`
	} `json:"block"`
}

// fetch reads the block at a.height (retrying until ctx ends) and marks
// this run's transfers in it committed at a.at.
func (o *observer) fetch(ctx context.Context, a arrival) {
	var b blockHashes
	for {
		err := o.c.Call(ctx, api.MethodGetBlockByHeight, &b, api.At(a.height))
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		o.setErr(fmt.Errorf("block %d: %w", a.height, err))
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
	ours := 0
	for _, h := range b.TxHashes {
		i, ok := o.plan.byHash[h]
		if !ok {
			continue
		}
		t := &o.plan.txs[i]
		if !t.committed.CompareAndSwap(0, max(1, a.at.Nanoseconds())) {
			o.twice.Add(1) // a replay: the chain is broken
			continue
		}
		ours++
		if o.slots != nil && t.slot.CompareAndSwap(true, false) {
			<-o.slots
		}
	}
	o.committed.Add(int64(ours))
	prev := -1
	if b.Block.LastCommit != nil {
		prev = int(b.Block.LastCommit.Round)
	}
	o.mu.Lock()
	o.blocks = append(o.blocks, blockSeen{Height: a.height, Arrived: a.at, Time: b.Block.Header.Time, Txs: len(b.TxHashes), Ours: ours, PrevRound: prev})
	o.mu.Unlock()
	select {
	case o.changed <- struct{}{}:
	default:
	}
}

func (o *observer) setErr(err error) {
	o.mu.Lock()
	o.err = err
	o.mu.Unlock()
}

// seen returns the blocks observed so far, in height order, and the last
// error met fetching them.
func (o *observer) seen() ([]blockSeen, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]blockSeen(nil), o.blocks...), o.err
}

// waitUntil waits until done holds (checked after every block) or ctx ends.
func (o *observer) waitUntil(ctx context.Context, done func() bool) error {
	for !done() {
		select {
		case <-o.changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
