package node

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/ledger/store"
)

// pruner removes old versions of the state tree in the background, as
// the [pruning] configuration says. The driver tells it of each commit
// (committed, which never blocks); every Interval heights it prunes the
// state of the heights below the window it keeps, in small batches that
// never touch a retained version, so consensus goes on meanwhile. A kill
// at any moment loses nothing retained: the store's Prune records the new
// oldest height first and resumes the deletions on the next run.
type pruner struct {
	store    *store.Store
	log      *slog.Logger
	keep     uint64 // heights of state kept, the latest included
	interval uint64
	// pinned, when set, returns the lowest height whose state something
	// still reads (a snapshot being written), and false when nothing is
	// pinned; pruning never goes above it.
	pinned func() (uint64, bool)

	trigger chan uint64 // the latest height to prune for; at most one waits
	mu      sync.Mutex
	last    pruneRun
}

// pruneRun is what the last pruning did, for the status and the logs.
type pruneRun struct {
	KeepFrom uint64
	Deleted  int
	Took     time.Duration
	Err      error
}

// pruneBatchOps bounds the deletions of one pruning batch: small enough
// that a batch never holds up a commit's write for long.
const pruneBatchOps = 10_000

// newPruner returns the pruner of cfg, or nil when cfg keeps everything.
func newPruner(cfg PruningConfig, st *store.Store, log *slog.Logger) *pruner {
	keep, ok := cfg.Keep()
	if !ok {
		return nil
	}
	return &pruner{store: st, log: log, keep: keep, interval: cfg.Interval, trigger: make(chan uint64, 1)}
}

// committed tells the pruner that height h is committed. It never blocks:
// when a pruning is under way or waiting, the newer height replaces the
// waiting one.
func (p *pruner) committed(h uint64) {
	if p == nil || h%p.interval != 0 {
		return
	}
	p.kick(h)
}

// kick asks for a pruning for latest height h now, whatever the interval.
func (p *pruner) kick(h uint64) {
	for {
		select {
		case p.trigger <- h:
			return
		default:
		}
		select {
		case <-p.trigger: // drop the older request; the newer covers it
		default:
		}
	}
}

// keepFrom is the lowest height whose state pruning for latest keeps: the
// window of keep heights ending at latest, lowered to what is pinned.
func (p *pruner) keepFrom(latest uint64) uint64 {
	from := uint64(0)
	if latest+1 > p.keep {
		from = latest + 1 - p.keep
	}
	if p.pinned != nil {
		if pin, ok := p.pinned(); ok && pin < from {
			from = pin
		}
	}
	return from
}

// run prunes on each trigger until ctx is done.
func (p *pruner) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case h := <-p.trigger:
			from := p.keepFrom(h)
			if from <= p.store.OldestState() {
				continue
			}
			start := time.Now()
			n, err := p.store.PruneState(ctx, from, pruneBatchOps)
			run := pruneRun{KeepFrom: from, Deleted: n, Took: time.Since(start), Err: err}
			p.mu.Lock()
			p.last = run
			p.mu.Unlock()
			switch {
			case err != nil && ctx.Err() == nil:
				p.log.Error("pruning the state", "keep_from", from, "err", err)
			case err == nil:
				p.log.Debug("pruned the state", "keep_from", from, "nodes", n, "took", run.Took)
			}
		}
	}
}
