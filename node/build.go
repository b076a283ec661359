package node

import (
	"fmt"
	"time"

	"github.com/ledgerd/ledgerd/consensus/evidence"
	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/store"
	"github.com/ledgerd/ledgerd/mempool"
)

// blockBuilder makes this validator's blocks (the core's Builder): the
// next header on the stored state, evidence from the pool, transactions
// reaped from the mempool up to the block limits.
type blockBuilder struct {
	chainID  string
	self     crypto.Address
	store    *store.Store
	pool     *mempool.Mempool
	evidence *evidence.Pool
	clock    Clock
}

// BuildBlock fills a block of height h from the mempool and the evidence
// pool; the round does not change what goes in.
func (b *blockBuilder) BuildBlock(h uint64, _ uint32) (*ledger.Block, error) {
	st := b.store.State()
	if st.Height+1 != h {
		return nil, fmt.Errorf("state is at height %d", st.Height)
	}
	var last *ledger.Commit
	if h > 1 {
		c, err := b.store.Commit(h - 1)
		if err != nil {
			return nil, err
		}
		last = c
	}
	t := ledger.TimestampOf(b.clock.Now())
	if h == 1 {
		t = max(t, st.GenesisTime)
	} else {
		t = max(t, st.LastBlockTime+ledger.Timestamp(time.Millisecond))
	}
	blk := &ledger.Block{
		Header: ledger.Header{
			ChainID:            b.chainID,
			Height:             h,
			Time:               t,
			LastBlockHash:      st.LastBlockHash,
			AppHash:            st.AppHash,
			ValidatorsHash:     st.Validators.Hash(),
			NextValidatorsHash: st.NextValidators.Hash(),
			Proposer:           b.self,
		},
		Evidence:   b.evidence.Pending(int(st.Params.MaxEvidence), h, b.store.Reader()),
		LastCommit: last,
	}
	// What the block holds besides its transactions.
	overhead := uint64(len(blk.Encode())) + 16
	if overhead < st.Params.MaxBlockBytes {
		blk.Txs = b.pool.Reap(st.Params.MaxBlockBytes-overhead, st.Params.MaxBlockTxs)
	}
	blk.FillHeader()
	return blk, nil
}
