package adversary

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
)

// blockInfo is one committed block as the observer saw it.
type blockInfo struct {
	height   uint64
	hash     crypto.Hash
	time     time.Time     // header time
	arrived  time.Duration // head arrival, since the load started
	evidence []crypto.Address
}

// observer follows one node's committed blocks: it timestamps every head
// as it arrives over a newHeads subscription (re-dialling when the
// WebSocket drops, filling gaps in the heights), fetches each block and
// marks the load's transfers committed.
type observer struct {
	c    *client.Client
	load *load

	mu      sync.Mutex
	blocks  []blockInfo // by height from first
	changed chan struct{}
	err     error
}

// stampedHead is a head's height and its arrival, since the load started.
type stampedHead struct {
	height uint64
	at     time.Duration
}

// maxQueuedHeads bounds the heads stamped but not yet fetched (minutes of
// blocks); when it is full the reader waits, and arrivals are late.
const maxQueuedHeads = 4096

func newObserver(c *client.Client, l *load) *observer {
	return &observer{c: c, load: l, changed: make(chan struct{})}
}

// run follows heads from the node's current height until ctx ends.
func (o *observer) run(ctx context.Context) {
	var last uint64
	for ctx.Err() == nil {
		ws, err := o.c.DialWS(ctx)
		if err != nil {
			o.setErr(err)
			_ = sleepCtx(ctx, 200*time.Millisecond)
			continue
		}
		sub, err := ws.SubscribeNewHeads(ctx)
		if err != nil {
			o.setErr(err)
			ws.Close()
			_ = sleepCtx(ctx, 200*time.Millisecond)
			continue
		}
		if last == 0 {
			st, err := o.c.Status(ctx)
			if err != nil {
				o.setErr(err)
				ws.Close()
				continue
			}
			last = uint64(st.LatestHeight)
		}
		// One goroutine stamps each head as it arrives; this one fetches
		// the blocks. Stamping after a fetch would charge a slow Block
		// call (a busy node, a loaded machine) to every head queued
		// behind it, as commit latency.
		heads := make(chan stampedHead, maxQueuedHeads)
		var reader sync.WaitGroup
		reader.Go(func() {
			defer close(heads)
			for {
				head, err := sub.NextHead(ctx)
				if err != nil {
					return
				}
				select {
				case heads <- stampedHead{height: uint64(head.Height), at: time.Since(o.load.t0)}:
				case <-ctx.Done():
					return
				}
			}
		})
		for hd := range heads {
			for ; last < hd.height; last++ {
				if err := o.fetch(ctx, last+1, hd.at); err != nil {
					o.setErr(err)
					break
				}
			}
		}
		reader.Wait()
		ws.Close()
	}
}

func (o *observer) fetch(ctx context.Context, h uint64, at time.Duration) error {
	for attempt := 0; ; attempt++ {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		b, err := o.c.Block(fctx, api.At(h))
		cancel()
		if err == nil && b.Block != nil {
			info := blockInfo{height: h, hash: b.Hash, time: b.Block.Header.Time.Time(), arrived: at}
			for _, ev := range b.Block.Evidence {
				info.evidence = append(info.evidence, ev.VoteA.Validator)
			}
			for _, th := range b.TxHashes {
				o.load.markCommitted(th, h, at)
			}
			o.mu.Lock()
			o.blocks = append(o.blocks, info)
			close(o.changed)
			o.changed = make(chan struct{})
			o.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil || attempt == 20 {
			return fmt.Errorf("fetch block %d: %w", h, err)
		}
		_ = sleepCtx(ctx, 100*time.Millisecond)
	}
}

func (o *observer) setErr(err error) {
	o.mu.Lock()
	o.err = err
	o.mu.Unlock()
}

// seen returns the blocks so far and a channel closed at the next one.
func (o *observer) seen() ([]blockInfo, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]blockInfo(nil), o.blocks...), o.changed
}

// waitFor waits until cond holds for the blocks seen, or timeout.
func (o *observer) waitFor(ctx context.Context, timeout time.Duration, cond func([]blockInfo) bool) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		bs, changed := o.seen()
		if cond(bs) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		}
	}
}

// maxGap is the longest gap between consecutive block header times that
// overlaps the window [from, to] of load time, and the heights around it.
// A window after which no block has come yet counts its wait until now.
func maxGap(bs []blockInfo, t0 time.Time, from, to time.Duration, now time.Duration) (time.Duration, uint64) {
	start, end := t0.Add(from), t0.Add(to)
	var gap time.Duration
	var at uint64
	for i := 1; i < len(bs); i++ {
		a, b := bs[i-1].time, bs[i].time
		if b.Before(start) || a.After(end) {
			continue
		}
		if d := b.Sub(a); d > gap {
			gap, at = d, bs[i].height
		}
	}
	if n := len(bs); n > 0 && bs[n-1].time.Before(end) {
		if d := t0.Add(now).Sub(bs[n-1].time); d > gap {
			gap, at = d, 0
		}
	}
	return gap, at
}
