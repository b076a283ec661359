package node

import "github.com/ledgerd/ledgerd/consensus"

// heightDue starts height h (the one after the stored height, which the
// machine has not started), or waits for a transaction first when the node
// does not create empty blocks and h is not a proof block.
func (d *driver) heightDue(h uint64) {
	if h != d.n.store.Height()+1 {
		return
	}
	if st := d.core.State(); st.Height > h || (st.Height == h && st.Step != consensus.StepNewHeight) {
		return // already started
	}
	if !d.n.cfg.Consensus.CreateEmptyBlocks {
		// The proof-block check reads the last block: only when idle.
		if txs, _ := d.n.pool.Size(); txs == 0 && !d.needProofBlock(h) {
			d.waitingTxs, d.waitHeight, d.waitSince = true, h, d.n.clock.Now()
			return
		}
	}
	d.waitingTxs = false
	d.core.Input(consensus.EventNewHeight{Height: h})
}

// needProofBlock reports whether height h is due even with no transaction
// waiting: block h-1 changed the state, whose app hash only header h
// carries. Without that block a light client could not verify the newest
// state of a quiet chain (CometBFT makes the same "proof block").
func (d *driver) needProofBlock(h uint64) bool {
	if h < 2 {
		return false // the genesis state is in the trusted genesis
	}
	prev, err := d.n.store.Block(h - 1)
	if err != nil {
		d.n.log.Warn("read the last block; making the next one in case it is a proof block", "height", h-1, "err", err)
		return true
	}
	return prev.Header.AppHash != d.n.store.State().AppHash
}

// maybeStartWaiting starts a height that waits for transactions once one
// waits, a peer is already at it (force), or the empty-block interval passed.
func (d *driver) maybeStartWaiting(force bool) {
	if !d.waitingTxs {
		return
	}
	txs, _ := d.n.pool.Size()
	iv := d.n.cfg.Consensus.EmptyBlocksInterval.Duration
	if force || txs > 0 || (iv > 0 && d.n.clock.Now().Sub(d.waitSince) >= iv) {
		d.waitingTxs = false
		d.core.Input(consensus.EventNewHeight{Height: d.waitHeight})
	}
}
