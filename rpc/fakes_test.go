package rpc

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
	"github.com/ledgerd/ledgerd/ledger/statetree"
	"github.com/ledgerd/ledgerd/ledger/store"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// fakeBackend serves a fakeChain and a fakePool, for handler tests that
// need the chain or the pool in a shape a real store or mempool reaches
// only with much work (a congested pool, a stale pending nonce, a corrupt
// index, a failing disk, a commit landing between two reads). It has no
// events: its feed only ends.
type fakeBackend struct {
	chain *ledgertest.Chain
	doc   *genesis.Doc
	ch    *fakeChain
	pool  *fakePool
}

// newFakeBackend returns a backend at height 0 with an empty pool, on a
// genesis whose blocks take at most maxBlockTxs transactions.
func newFakeBackend(t testing.TB, maxBlockTxs uint64) *fakeBackend {
	t.Helper()
	chain := ledgertest.NewChain(1, 3, 1_000_000_000)
	chain.Genesis.Params.MaxBlockTxs = maxBlockTxs
	return &fakeBackend{chain: chain, doc: genesisDoc(t, chain), ch: newFakeChain(), pool: &fakePool{}}
}

func (b *fakeBackend) Chain() ChainReader               { return b.ch }
func (b *fakeBackend) Pool() TxPool                     { return b.pool }
func (b *fakeBackend) Genesis() *genesis.Doc            { return b.doc }
func (b *fakeBackend) Validators() *ledger.ValidatorSet { return b.chain.Genesis.Validators }

func (b *fakeBackend) ValidatorsAt(uint64) (*ledger.ValidatorSet, error) {
	return b.chain.Genesis.Validators, nil
}
func (b *fakeBackend) Peers() []api.Peer                { return nil }
func (b *fakeBackend) Subscribe(int) (EventFeed, error) { return quietFeed{}, nil }
func (b *fakeBackend) SubmitTx(context.Context, *ledger.Tx) error {
	return fmt.Errorf("fake backend admits nothing")
}

func (b *fakeBackend) Status() NodeStatus {
	return NodeStatus{ChainID: b.doc.ChainID, NodeID: "fake-node", Height: b.ch.Height()}
}

// block builds the block after the fake chain's tip holding txs (not
// stored).
func (b *fakeBackend) block(txs ...*ledger.Tx) *ledger.Block {
	st := *b.chain.Genesis
	st.Height = b.ch.Height()
	return b.chain.NextBlock(&st, txs, nil, 0)
}

// quietFeed is an EventFeed with no events.
type quietFeed struct{}

func (quietFeed) Next(ctx context.Context) (Event, error) {
	<-ctx.Done()
	return Event{}, ctx.Err()
}

func (quietFeed) Close() {}

// fakeChain is a ChainReader over maps. Accounts are the same at every
// height. When failure is set, every read but Height returns it.
type fakeChain struct {
	mu       sync.Mutex
	height   uint64
	blocks   map[uint64]*ledger.Block
	commits  map[uint64]*ledger.Commit
	txs      map[crypto.Hash]store.TxLocation
	accounts map[crypto.Address]ledger.Account
	failure  error
	oldest   uint64 // lowest height whose state is kept; reads below fail with store.ErrPruned
}

func newFakeChain() *fakeChain {
	return &fakeChain{blocks: map[uint64]*ledger.Block{}, commits: map[uint64]*ledger.Commit{},
		txs: map[crypto.Hash]store.TxLocation{}, accounts: map[crypto.Address]ledger.Account{}}
}

// add stores b (and c, when not nil) as the new tip and indexes its
// transactions.
func (c *fakeChain) add(b *ledger.Block, cm *ledger.Commit) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := b.Height()
	c.blocks[h] = b
	if cm != nil {
		c.commits[h] = cm
	}
	for i, tx := range b.Txs {
		c.txs[tx.Hash()] = store.TxLocation{Height: h, Index: uint32(i)}
	}
	c.height = max(c.height, h)
}

func (c *fakeChain) setAccount(addr crypto.Address, acc ledger.Account) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.accounts[addr] = acc
}

// setTxLocation indexes h at loc, whatever the block there holds.
func (c *fakeChain) setTxLocation(h crypto.Hash, loc store.TxLocation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.txs[h] = loc
}

// setHeight makes Height report h, whatever the blocks stored.
func (c *fakeChain) setHeight(h uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.height = h
}

func (c *fakeChain) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failure = err
}

func (c *fakeChain) Height() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.height
}

func (c *fakeChain) Block(height uint64) (*ledger.Block, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failure != nil {
		return nil, c.failure
	}
	b, ok := c.blocks[height]
	if !ok {
		return nil, fmt.Errorf("block %d: %w", height, store.ErrNotFound)
	}
	return b, nil
}

func (c *fakeChain) BlockByHash(id crypto.Hash) (*ledger.Block, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failure != nil {
		return nil, c.failure
	}
	for _, b := range c.blocks {
		if b.Hash() == id {
			return b, nil
		}
	}
	return nil, fmt.Errorf("block %s: %w", id, store.ErrNotFound)
}

func (c *fakeChain) Commit(height uint64) (*ledger.Commit, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failure != nil {
		return nil, c.failure
	}
	cm, ok := c.commits[height]
	if !ok {
		return nil, fmt.Errorf("commit %d: %w", height, store.ErrNotFound)
	}
	return cm, nil
}

func (c *fakeChain) TxLocation(h crypto.Hash) (store.TxLocation, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failure != nil {
		return store.TxLocation{}, c.failure
	}
	loc, ok := c.txs[h]
	if !ok {
		return store.TxLocation{}, fmt.Errorf("tx %s: %w", h, store.ErrNotFound)
	}
	return loc, nil
}

// AccountTxs pages through the indexed transactions addr sent or
// received, in (height, index) order.
func (c *fakeChain) AccountTxs(addr crypto.Address, from store.TxLocation, limit int) ([]store.AccountTx, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failure != nil {
		return nil, false, c.failure
	}
	var page []store.AccountTx
	for h := from.Height; h <= c.height; h++ {
		b := c.blocks[h]
		if b == nil {
			continue
		}
		for i, tx := range b.Txs {
			if h == from.Height && uint32(i) < from.Index || (tx.Sender() != addr && tx.To != addr) {
				continue
			}
			if len(page) == limit {
				return page, true, nil
			}
			page = append(page, store.AccountTx{Hash: tx.Hash(), Location: store.TxLocation{Height: h, Index: uint32(i)}})
		}
	}
	return page, false, nil
}

func (c *fakeChain) Account(height uint64, addr crypto.Address) (ledger.Account, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failure != nil {
		return ledger.Account{}, c.failure
	}
	return c.accounts[addr], nil
}

func (c *fakeChain) AccountProof(height uint64, addr crypto.Address) (ledger.Account, *statetree.Proof, error) {
	acc, err := c.Account(height, addr)
	if err != nil {
		return acc, nil, err
	}
	return acc, &statetree.Proof{}, nil
}

func (c *fakeChain) OldestState() uint64 { return c.oldest }

func (c *fakeChain) AppHash(height uint64) (crypto.Hash, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failure != nil {
		return crypto.Hash{}, c.failure
	}
	return crypto.Sum([]byte(fmt.Sprintf("state after %d", height))), nil
}

// err returns the failure set by fail.
func (c *fakeChain) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failure
}

// The fake chain holds no state records and no failed transactions.

func (c *fakeChain) TxError(crypto.Hash) (string, error)   { return "", c.err() }
func (c *fakeChain) Record(uint64, []byte) ([]byte, error) { return nil, c.err() }
func (c *fakeChain) RecordProof(uint64, []byte) ([]byte, *statetree.Proof, error) {
	return nil, &statetree.Proof{}, c.err()
}
func (c *fakeChain) ReadLatest(fn func(uint64, store.Records) error) error {
	if err := c.err(); err != nil {
		return err
	}
	return fn(c.Height(), noRecords{})
}

// noRecords is an empty store.Records.
type noRecords struct{}

func (noRecords) Get([]byte) ([]byte, error)                               { return nil, nil }
func (noRecords) Iterate([]byte, func(k, v []byte) error) error            { return nil }
func (noRecords) IterateFrom(_, _ []byte, _ func(k, v []byte) error) error { return nil }

// fakePool is a TxPool over a list kept in the order Pending returns it.
// onGet, when set, runs inside each Get before the lookup.
type fakePool struct {
	mu     sync.Mutex
	txs    []*ledger.Tx
	nonces map[crypto.Address]uint64
	onGet  func(h crypto.Hash)
}

func (p *fakePool) add(txs ...*ledger.Tx) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.txs = append(p.txs, txs...)
}

func (p *fakePool) remove(h crypto.Hash) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, tx := range p.txs {
		if tx.Hash() == h {
			p.txs = append(p.txs[:i], p.txs[i+1:]...)
			return
		}
	}
}

// setNextNonce makes NextNonce report n for addr.
func (p *fakePool) setNextNonce(addr crypto.Address, n uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nonces == nil {
		p.nonces = map[crypto.Address]uint64{}
	}
	p.nonces[addr] = n
}

func (p *fakePool) Size() (int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	bytes := 0
	for _, tx := range p.txs {
		bytes += len(tx.Encode())
	}
	return len(p.txs), bytes
}

func (p *fakePool) Has(h crypto.Hash) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.find(h) != nil
}

func (p *fakePool) Get(h crypto.Hash) (*ledger.Tx, bool) {
	p.mu.Lock()
	onGet := p.onGet
	p.mu.Unlock()
	if onGet != nil {
		onGet(h)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	tx := p.find(h)
	return tx, tx != nil
}

func (p *fakePool) find(h crypto.Hash) *ledger.Tx {
	for _, tx := range p.txs {
		if tx.Hash() == h {
			return tx
		}
	}
	return nil
}

func (p *fakePool) Pending(limit int) []*ledger.Tx {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.txs)
	if limit > 0 && limit < n {
		n = limit
	}
	return append([]*ledger.Tx(nil), p.txs[:n]...)
}

func (p *fakePool) NextNonce(addr crypto.Address) (uint64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, ok := p.nonces[addr]
	return n, ok
}
