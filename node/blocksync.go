package node

import (
	"context"
	"fmt"

	"github.com/ledgerd/ledgerd/ledger"
)

// syncedBlock is a block with a verified commit from block sync, waiting
// for the driver to store it; done receives the outcome.
type syncedBlock struct {
	block  *ledger.Block
	commit *ledger.Commit
	done   chan error
}

// syncLoop runs block sync passes alongside consensus for as long as ctx
// lasts: each time the network reports the node behind, one pass fetches
// and verifies blocks from the next height on and hands them to the driver
// (storeSynced); when the pass ends, the driver resumes consensus if it
// had paused it.
func (d *driver) syncLoop(ctx context.Context) error {
	n := d.n
	for {
		target, err := n.net.WaitBehind(ctx)
		if err != nil {
			return ctx.Err()
		}
		from := n.store.Height() + 1
		n.log.Info("peers report heights ahead; block sync alongside consensus", "from", from, "target", target)
		start := n.clock.Now()
		last, err := n.net.NewSyncer().Sync(ctx, from, func(b *ledger.Block, c *ledger.Commit) error {
			return d.handSynced(ctx, b, c)
		})
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("block sync: %w", err)
		}
		if last >= from {
			el := n.clock.Now().Sub(start)
			n.log.Info("block sync done", "from", from, "to", last, "blocks", last-from+1,
				"seconds", el.Seconds(), "blocks_per_s", float64(last-from+1)/max(el.Seconds(), 1e-9))
		}
		select {
		case d.syncDone <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// handSynced gives a verified block to the driver goroutine and waits for
// it to be stored.
func (d *driver) handSynced(ctx context.Context, b *ledger.Block, c *ledger.Commit) error {
	sb := syncedBlock{block: b, commit: c, done: make(chan error, 1)}
	select {
	case d.synced <- sb:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-sb.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// storeSynced stores a block from block sync whose commit verified
// against the validator set. The first such block is the proof that the
// node is behind: consensus pauses until the pass ends. A block consensus
// committed meanwhile is skipped (it must be the same block: two blocks
// with valid commits at one height would mean a third of the voting power
// equivocated).
func (d *driver) storeSynced(b *ledger.Block, c *ledger.Commit) error {
	n := d.n
	h, stored := b.Height(), n.store.Height()
	switch {
	case h <= stored:
		have, err := n.store.Block(h)
		if err != nil {
			return fmt.Errorf("read block %d: %w", h, err)
		}
		if have.Hash() != b.Hash() {
			return fmt.Errorf("block sync brought block %s at height %d, which holds %s: conflicting commits", b.Hash(), h, have.Hash())
		}
		return nil
	case h > stored+1:
		return fmt.Errorf("block sync brought height %d, the next is %d", h, stored+1)
	}
	if !d.paused {
		d.pause(h)
	}
	if err := d.apply.apply(b, c); err != nil {
		return err
	}
	n.metrics.BlocksSynced.Inc()
	return nil
}

// pause stops consensus while block sync stores verified blocks from
// height h on.
func (d *driver) pause(h uint64) {
	n := d.n
	n.log.Info("block sync has a verified block ahead; pausing consensus", "height", h, "consensus_height", d.core.Height())
	d.paused = true
	d.timers.clear()
	d.waitingTxs = false
	n.syncing.Store(true)
	n.metrics.BlockSyncing.Set(1)
}

// resume restarts consensus after the height block sync reached.
func (d *driver) resume() error {
	n := d.n
	d.paused = false
	n.syncing.Store(false)
	n.metrics.BlockSyncing.Set(0)
	if err := n.wal.Prune(n.store.Height()); err != nil {
		n.log.Warn("prune WAL", "err", err)
	}
	return d.startMachine()
}
