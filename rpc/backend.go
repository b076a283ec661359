package rpc

import (
	"context"
	"errors"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/store"
	"github.com/ledgerd/ledgerd/mempool"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// Backend is what the server serves: the node, seen through reads that
// never take consensus locks. Package node implements it over *node.Node.
type Backend interface {
	// Store gives the committed chain and state.
	Store() *store.Store
	// Mempool gives the pending transactions.
	Mempool() *mempool.Mempool
	// Genesis is the chain's genesis document.
	Genesis() *genesis.Doc
	// Validators is the validator set (static: the same at every height).
	Validators() *ledger.ValidatorSet
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
