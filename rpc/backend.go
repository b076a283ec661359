package rpc

import (
	"context"
	"errors"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/statetree"
	"github.com/ledgerd/ledgerd/ledger/store"
	"github.com/ledgerd/ledgerd/mempool"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// Backend is what the server serves: the node, seen through reads that
// never take consensus locks. Package node implements it over *node.Node.
type Backend interface {
	// Chain gives the committed chain and state.
	Chain() ChainReader
	// Pool gives the pending transactions.
	Pool() TxPool
	// Genesis is the chain's genesis document.
	Genesis() *genesis.Doc
	// Validators is the validator set of the next height.
	Validators() *ledger.ValidatorSet
	// ValidatorsAt is the validator set of height h, known from 1 to the
	// latest height + 2 (a change takes effect two heights after the
	// block that made it).
	ValidatorsAt(h uint64) (*ledger.ValidatorSet, error)
	// Status is a consistent snapshot of the node.
	Status() NodeStatus
	// Peers lists the connected peers.
	Peers() []api.Peer
	// SubmitTx admits tx to the mempool and gossips it; the error is the
	// mempool's *mempool.RejectError when it refuses.
	SubmitTx(ctx context.Context, tx *ledger.Tx) error
	// Subscribe returns a feed of committed blocks and of transactions
	// leaving the mempool uncommitted, with room for buffer events.
	Subscribe(buffer int) (EventFeed, error)
}

// ChainReader is the committed chain and state, as far as the handlers
// read them; *store.Store implements it. Every read is safe concurrently
// with commits and never waits for consensus. A height once reported by
// Height stays readable: the handlers read Height and then the blocks,
// commits and states at or below it.
type ChainReader interface {
	// Height is the latest committed height (0 before the first block).
	Height() uint64
	// Block is the committed block at height; an error wrapping
	// store.ErrNotFound when there is none.
	Block(height uint64) (*ledger.Block, error)
	// BlockByHash is the committed block with hash id; an error wrapping
	// store.ErrNotFound when there is none.
	BlockByHash(id crypto.Hash) (*ledger.Block, error)
	// Commit is the commit that decided the block at height; an error
	// wrapping store.ErrNotFound when there is none.
	Commit(height uint64) (*ledger.Commit, error)
	// TxLocation is where the committed transaction h sits; an error
	// (wrapping store.ErrNotFound) when h is not committed.
	TxLocation(h crypto.Hash) (store.TxLocation, error)
	// AccountTxs is one page of the committed transactions addr sent or
	// received, oldest first: the first limit (1 to store.MaxAccountTxs)
	// at or after from, and whether more follow.
	AccountTxs(addr crypto.Address, from store.TxLocation, limit int) (page []store.AccountTx, more bool, err error)
	// Account is addr's account in the state after height, the zero
	// Account when absent.
	Account(height uint64, addr crypto.Address) (ledger.Account, error)
	// AccountProof is Account with a proof (of the value, or of absence)
	// against AppHash(height).
	AccountProof(height uint64, addr crypto.Address) (ledger.Account, *statetree.Proof, error)
	// AppHash is the commitment to the state after height, which the
	// header of block height+1 carries.
	AppHash(height uint64) (crypto.Hash, error)
	// OldestState is the lowest height whose state is kept; the state
	// reads above answer an error wrapping store.ErrPruned below it.
	OldestState() uint64
	// TxError is why the committed transaction h failed (its receipt's
	// error), "" when it succeeded or is not committed.
	TxError(h crypto.Hash) (string, error)
	// Record is the state record under the natural key k (a staking
	// record) after height, nil when absent.
	Record(height uint64, k []byte) ([]byte, error)
	// RecordProof is Record with a proof (of the value, or of absence)
	// against AppHash(height).
	RecordProof(height uint64, k []byte) ([]byte, *statetree.Proof, error)
	// ReadLatest calls fn with the latest committed height and the state
	// records after it, which iterate by prefix; every read fn makes sees
	// that one height (store.ErrBusy when commits kept overlapping).
	ReadLatest(fn func(height uint64, r store.Records) error) error
}

// TxPool is the pending transactions, as far as the handlers read them;
// *mempool.Mempool implements it. Every read is safe concurrently with
// admissions and commits.
type TxPool interface {
	// Size is how many transactions are pending and their encoded bytes.
	Size() (txs int, bytes int)
	// Has reports whether the transaction h is pending.
	Has(h crypto.Hash) bool
	// Get returns the pending transaction h; callers do not modify it.
	Get(h crypto.Hash) (*ledger.Tx, bool)
	// Pending lists up to limit pending transactions, those the next
	// block would take first, in the order it would take them.
	Pending(limit int) []*ledger.Tx
	// NextNonce is the nonce addr should sign with next, counting its
	// pending transactions; ok is false when none are pending for addr.
	NextNonce(addr crypto.Address) (nonce uint64, ok bool)
}

// NodeStatus is the node's state as Backend.Status reports it.
type NodeStatus struct {
	ChainID         string
	NodeID          string
	Moniker         string
	Validator       crypto.Address // this node's validator address (zero if none)
	IsValidator     bool
	Height          uint64 // latest committed block
	Hash            crypto.Hash
	Time            ledger.Timestamp
	AppHash         crypto.Hash // state after Height
	CatchingUp      bool
	ConsensusHeight uint64
	ConsensusRound  uint32
	// Problems are reasons the node cannot make progress (a halted
	// driver, a signer refusing to sign, blocks lost from the store);
	// /health reports the node unhealthy while there is any.
	Problems []string
}

// Event is one item of an EventFeed: exactly one field is set.
type Event struct {
	// Block is a newly committed block.
	Block *ledger.Block
	// Removed is a transaction that left the mempool without committing.
	Removed *RemovedTx
}

// RemovedTx names a transaction that left the mempool uncommitted.
type RemovedTx struct {
	Hash   crypto.Hash
	Reason mempool.Code
}

// ErrFeedLost is returned by EventFeed.Next when the feed fell too far
// behind and was dropped; the server subscribes again.
var ErrFeedLost = errors.New("rpc: event feed fell behind and was dropped")

// EventFeed delivers events in commit order.
type EventFeed interface {
	// Next blocks until the next event, ctx ends (ctx.Err()) or the feed
	// is lost (ErrFeedLost).
	Next(ctx context.Context) (Event, error)
	// Close ends the feed.
	Close()
}
