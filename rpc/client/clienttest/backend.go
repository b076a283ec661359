package clienttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/statetree"
	"github.com/ledgerd/ledgerd/ledger/store"
	"github.com/ledgerd/ledgerd/rpc"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// Backend serves a Chain to the real JSON-RPC server (it implements
// rpc.Backend), up to a height that tests can raise, as a node that has
// committed that far would. Its hooks make it lie.
type Backend struct {
	chain  *Chain
	height atomic.Uint64

	mu sync.Mutex
	// lieSet, when set, replaces the validator set served for a height
	// (returning nil serves the true one).
	lieSet func(h uint64, honest *ledger.ValidatorSet) *ledger.ValidatorSet
	// lieCommit, when set, replaces the commit served for a height.
	lieCommit func(h uint64, honest *ledger.Commit) *ledger.Commit

	commits, sets atomic.Int64
}

// NewBackend serves c up to its last height.
func NewBackend(c *Chain) *Backend {
	b := &Backend{chain: c}
	b.height.Store(c.Height())
	return b
}

// SetHeight makes the backend serve the chain up to h (at most the
// chain's height): a node that has committed h blocks.
func (b *Backend) SetHeight(h uint64) { b.height.Store(min(h, b.chain.Height())) }

// LieAboutSets makes the backend serve f's set instead of the true one
// wherever f returns one.
func (b *Backend) LieAboutSets(f func(h uint64, honest *ledger.ValidatorSet) *ledger.ValidatorSet) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lieSet = f
}

// LieAboutCommits makes the backend serve f's commit instead of the true
// one wherever f returns one.
func (b *Backend) LieAboutCommits(f func(h uint64, honest *ledger.Commit) *ledger.Commit) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lieCommit = f
}

// Served returns how many commits (with their headers) and validator
// sets the backend served.
func (b *Backend) Served() (commits, sets int64) { return b.commits.Load(), b.sets.Load() }

// Chain implements rpc.Backend.
func (b *Backend) Chain() rpc.ChainReader { return chainReader{b} }

// Pool implements rpc.Backend: an empty pool.
func (b *Backend) Pool() rpc.TxPool { return emptyPool{} }

// Genesis implements rpc.Backend.
func (b *Backend) Genesis() *genesis.Doc { return b.chain.Doc }

// Validators implements rpc.Backend: the set of the next height.
func (b *Backend) Validators() *ledger.ValidatorSet {
	vs, _ := b.ValidatorsAt(b.height.Load() + 1)
	return vs
}

// ValidatorsAt implements rpc.Backend.
func (b *Backend) ValidatorsAt(h uint64) (*ledger.ValidatorSet, error) {
	b.sets.Add(1)
	if h == 0 || h > b.height.Load()+2 {
		return nil, fmt.Errorf("no validator set for height %d", h)
	}
	vs := b.chain.Sets[h]
	b.mu.Lock()
	lie := b.lieSet
	b.mu.Unlock()
	if lie != nil {
		if l := lie(h, vs); l != nil {
			vs = l
		}
	}
	return vs, nil
}

// Status implements rpc.Backend.
func (b *Backend) Status() rpc.NodeStatus {
	h := b.height.Load()
	blk := b.chain.Blocks[h]
	app, _ := b.chain.AppHash(h)
	return rpc.NodeStatus{ChainID: ChainID, NodeID: "clienttest", Moniker: "clienttest", Height: h,
		Hash: blk.Hash(), Time: blk.Header.Time, AppHash: app, ConsensusHeight: h + 1}
}

// Peers implements rpc.Backend.
func (b *Backend) Peers() []api.Peer { return nil }

// SubmitTx implements rpc.Backend: a synthetic chain admits nothing.
func (b *Backend) SubmitTx(context.Context, *ledger.Tx) error {
	return errors.New("clienttest: the synthetic chain admits no transaction")
}

// Subscribe implements rpc.Backend with a feed that has no events.
func (b *Backend) Subscribe(int) (rpc.EventFeed, error) { return quietFeed{}, nil }

type quietFeed struct{}

func (quietFeed) Next(ctx context.Context) (rpc.Event, error) {
	<-ctx.Done()
	return rpc.Event{}, ctx.Err()
}

func (quietFeed) Close() {}

type emptyPool struct{}

func (emptyPool) Size() (int, int)                        { return 0, 0 }
func (emptyPool) Has(crypto.Hash) bool                    { return false }
func (emptyPool) Get(crypto.Hash) (*ledger.Tx, bool)      { return nil, false }
func (emptyPool) Pending(int) []*ledger.Tx                { return nil }
func (emptyPool) NextNonce(crypto.Address) (uint64, bool) { return 0, false }
func (chainReader) notFound(what string, h uint64) error {
	return fmt.Errorf("%s %d: %w", what, h, store.ErrNotFound)
}
func (r chainReader) has(h uint64) bool                     { return h >= 1 && h <= r.b.height.Load() }
func (r chainReader) Height() uint64                        { return r.b.height.Load() }
func (r chainReader) AppHash(h uint64) (crypto.Hash, error) { return r.b.chain.AppHash(h) }
func (r chainReader) OldestState() uint64                   { return 0 }

// chainReader is the backend's rpc.ChainReader.
type chainReader struct{ b *Backend }

func (r chainReader) Block(h uint64) (*ledger.Block, error) {
	if !r.has(h) {
		return nil, r.notFound("block", h)
	}
	return r.b.chain.Blocks[h], nil
}

func (r chainReader) BlockByHash(id crypto.Hash) (*ledger.Block, error) {
	for h := uint64(1); h <= r.b.height.Load(); h++ {
		if r.b.chain.Blocks[h].Hash() == id {
			return r.b.chain.Blocks[h], nil
		}
	}
	return nil, fmt.Errorf("block %s: %w", id, store.ErrNotFound)
}

func (r chainReader) Commit(h uint64) (*ledger.Commit, error) {
	r.b.commits.Add(1)
	if !r.has(h) {
		return nil, r.notFound("commit", h)
	}
	cm := r.b.chain.Commits[h]
	r.b.mu.Lock()
	lie := r.b.lieCommit
	r.b.mu.Unlock()
	if lie != nil {
		if l := lie(h, cm); l != nil {
			cm = l
		}
	}
	return cm, nil
}

func (r chainReader) TxLocation(id crypto.Hash) (store.TxLocation, error) {
	loc, ok := r.b.chain.txLoc[id]
	if !ok || !r.has(loc[0]) {
		return store.TxLocation{}, fmt.Errorf("transaction %s: %w", id, store.ErrNotFound)
	}
	return store.TxLocation{Height: loc[0], Index: uint32(loc[1])}, nil
}

func (r chainReader) AccountTxs(crypto.Address, store.TxLocation, int) ([]store.AccountTx, bool, error) {
	return nil, false, nil
}

func (r chainReader) Account(h uint64, addr crypto.Address) (ledger.Account, error) {
	a, _, err := r.AccountProof(h, addr)
	return a, err
}

func (r chainReader) AccountProof(h uint64, addr crypto.Address) (ledger.Account, *statetree.Proof, error) {
	if h > r.b.height.Load() {
		return ledger.Account{}, nil, r.notFound("state after height", h)
	}
	return r.b.chain.Account(h, addr)
}

// TxError implements rpc.ChainReader: no transaction of a synthetic chain
// failed.
func (r chainReader) TxError(crypto.Hash) (string, error) { return "", nil }

// Record implements rpc.ChainReader: a synthetic chain has no staking
// records (its sets are made up directly).
func (r chainReader) Record(h uint64, _ []byte) ([]byte, error) {
	if h > r.b.height.Load() {
		return nil, r.notFound("state after height", h)
	}
	return nil, nil
}

// RecordProof implements rpc.ChainReader; a synthetic chain proves no
// records.
func (r chainReader) RecordProof(h uint64, _ []byte) ([]byte, *statetree.Proof, error) {
	return nil, nil, errors.New("clienttest: the synthetic chain proves no state records")
}

// ReadLatest implements rpc.ChainReader over no records.
func (r chainReader) ReadLatest(fn func(uint64, store.Records) error) error {
	return fn(r.b.height.Load(), noRecords{})
}

type noRecords struct{}

func (noRecords) Get([]byte) ([]byte, error)                               { return nil, nil }
func (noRecords) Iterate([]byte, func(k, v []byte) error) error            { return nil }
func (noRecords) IterateFrom(_, _ []byte, _ func(k, v []byte) error) error { return nil }

// Serve runs the real JSON-RPC server over b on a loopback port until the
// test ends, and returns its URL.
func Serve(t testing.TB, b rpc.Backend) string {
	t.Helper()
	s, err := rpc.New(b, rpc.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("clienttest: Serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("clienttest: Serve did not return after its context ended")
		}
	})
	return "http://" + ln.Addr().String()
}
