package node

import (
	"log/slog"

	"github.com/ledgerd/ledgerd/consensus/evidence"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/store"
	"github.com/ledgerd/ledgerd/mempool"
	"github.com/ledgerd/ledgerd/metrics"
)

// applier is the apply pipeline every stored block goes through, decided
// by consensus or fetched by block sync: execute and store it, update the
// metrics, the mempool and the evidence pool, tell the driver (applied)
// and then the subscribers (publish).
type applier struct {
	store    *store.Store
	pool     *mempool.Mempool
	evidence *evidence.Pool
	metrics  *metrics.Metrics
	log      *slog.Logger
	applied  func(*ledger.State)
	publish  func(BlockEvent)
}

// apply commits b with its commit c to the store.
func (a *applier) apply(b *ledger.Block, c *ledger.Commit) error {
	prevTime := a.store.State().LastBlockTime
	st, res, err := a.store.Apply(b, c)
	if err != nil {
		return err
	}
	m := a.metrics
	m.Height.Set(float64(st.Height))
	m.TxsCommitted.Add(float64(len(b.Txs)))
	m.BlockTxs.Observe(float64(len(b.Txs)))
	if st.Height > 1 {
		m.BlockInterval.Observe(b.Header.Time.Time().Sub(prevTime.Time()).Seconds())
	}
	if err := a.pool.Update(st.Height, b.Txs, a.store.Reader()); err != nil {
		a.log.Warn("mempool update", "height", st.Height, "err", err)
	}
	a.evidence.Committed(b.Evidence)
	txs, bytes := a.pool.Size()
	m.MempoolTxs.Set(float64(txs))
	m.MempoolBytes.Set(float64(bytes))
	a.applied(st)
	a.publish(BlockEvent{Block: b, Commit: c, Result: res})
	return nil
}

// applied updates the node's status after a block is stored.
func (d *driver) applied(st *ledger.State) {
	n := d.n
	n.setStatus(st)
	n.snapshots.committed(st) // before the pruner: it pins the height
	n.pruner.committed(st.Height)
	n.refusal.Store(nil)
	n.lastProgress.Store(n.clock.Now().UnixNano())
	if p := n.lostBlocks.Load(); p != nil && st.Height >= d.lostUntil {
		n.lostBlocks.Store(nil)
		n.log.Info("fetched the blocks lost from the store again", "height", st.Height)
	}
}
