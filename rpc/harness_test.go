package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
	"github.com/ledgerd/ledgerd/ledger/store"
	"github.com/ledgerd/ledgerd/mempool"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// testBackend is a Backend over a real in-memory store and mempool, whose
// blocks the test commits by hand (ledgertest signs them).
type testBackend struct {
	chain *ledgertest.Chain
	doc   *genesis.Doc
	st    *store.Store
	pool  *mempool.Mempool

	// valKeys are the consensus keys the test signs commits with: the
	// chain's validators and any that joined (addValKey).
	valKeys map[crypto.Address]crypto.PrivKey

	mu         sync.Mutex
	lastCommit *ledger.Commit
	status     NodeStatus
	peers      []api.Peer
	feeds      map[*chanFeed]struct{}
}

func newTestBackend(t testing.TB, nVals int) *testBackend {
	return newTestBackendWithAccounts(t, nVals, 3)
}

// newTestBackendWithAccounts is newTestBackend with nAccts funded accounts.
func newTestBackendWithAccounts(t testing.TB, nVals, nAccts int) *testBackend {
	t.Helper()
	chain := ledgertest.NewChain(nVals, nAccts, 1_000_000_000)
	doc := genesisDoc(t, chain)
	st := store.Open(kv.NewMem())
	gst, err := st.Init(chain.Genesis, chain.Balances, chain.Records, doc.Hash())
	if err != nil {
		t.Fatal(err)
	}
	pool, err := mempool.New(mempool.DefaultConfig(chain.Genesis.ChainID), st.Reader(), gst.Height)
	if err != nil {
		t.Fatal(err)
	}
	b := &testBackend{chain: chain, doc: doc, st: st, pool: pool, feeds: map[*chanFeed]struct{}{}, valKeys: map[crypto.Address]crypto.PrivKey{}}
	for _, k := range chain.ValKeys {
		b.addValKey(k)
	}
	val := chain.ValKeys[0].PubKey().Address()
	b.status = NodeStatus{ChainID: doc.ChainID, NodeID: "test-node", Moniker: "test", Validator: val, IsValidator: true}
	return b
}

// genesisDoc is the genesis document of a ledgertest chain.
func genesisDoc(t testing.TB, chain *ledgertest.Chain) *genesis.Doc {
	t.Helper()
	doc := &genesis.Doc{ChainID: chain.Genesis.ChainID, GenesisTime: chain.Genesis.GenesisTime, Params: chain.Genesis.Params, Staking: chain.Genesis.Staking}
	for i := 0; i < chain.Genesis.Validators.Size(); i++ {
		doc.Validators = append(doc.Validators, *chain.Genesis.Validators.Get(i))
	}
	for _, b := range chain.Balances {
		doc.Balances = append(doc.Balances, genesis.Balance{Address: b.Address, Amount: b.Account.Balance})
	}
	if err := doc.Validate(); err != nil {
		t.Fatal(err)
	}
	return doc
}

func (b *testBackend) Chain() ChainReader               { return b.st }
func (b *testBackend) Pool() TxPool                     { return b.pool }
func (b *testBackend) Genesis() *genesis.Doc            { return b.doc }
func (b *testBackend) Validators() *ledger.ValidatorSet { return b.chain.Genesis.Validators }

func (b *testBackend) ValidatorsAt(h uint64) (*ledger.ValidatorSet, error) {
	return b.st.ValidatorsAt(h)
}

// addValKey makes the test sign commits with k whenever its key is in
// the set (a validator that joined through staking).
func (b *testBackend) addValKey(k crypto.PrivKey) {
	b.mu.Lock()
	b.valKeys[k.PubKey().Address()] = k
	b.mu.Unlock()
}

// signCommit returns the commit of blk signed by every member of vals
// whose key the test holds, by their index in vals.
func (b *testBackend) signCommit(t testing.TB, blk *ledger.Block, vals *ledger.ValidatorSet) *ledger.Commit {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	id := blk.Hash()
	msg := ledger.VoteSignBytes(blk.Header.ChainID, ledger.Precommit, blk.Height(), 0, id)
	cm := &ledger.Commit{Height: blk.Height(), Round: 0, BlockID: id}
	for i := 0; i < vals.Size(); i++ {
		if k, ok := b.valKeys[vals.Get(i).Address()]; ok {
			cm.Sigs = append(cm.Sigs, ledger.CommitSig{ValidatorIndex: uint32(i), Sig: k.Sign(msg)})
		}
	}
	return cm
}
func (b *testBackend) SubmitTx(ctx context.Context, tx *ledger.Tx) error {
	return b.pool.Add(tx)
}

func (b *testBackend) Status() NodeStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.status
	st := b.st.State()
	s.Height, s.Hash, s.Time, s.AppHash = st.Height, st.LastBlockHash, st.LastBlockTime, st.AppHash
	return s
}

func (b *testBackend) Peers() []api.Peer {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peers
}

func (b *testBackend) setStatus(f func(*NodeStatus)) {
	b.mu.Lock()
	f(&b.status)
	b.mu.Unlock()
}

// chanFeed is the test's EventFeed: the backend pushes into it and it
// reports ErrFeedLost when a push finds it full, like the node's.
type chanFeed struct {
	b    *testBackend
	ch   chan Event
	lost chan struct{}
	pool *mempool.Subscription
}

func (b *testBackend) Subscribe(buffer int) (EventFeed, error) {
	f := &chanFeed{b: b, ch: make(chan Event, buffer), lost: make(chan struct{}),
		pool: b.pool.Subscribe(buffer, mempool.EventRemoved)}
	b.mu.Lock()
	b.feeds[f] = struct{}{}
	b.mu.Unlock()
	return f, nil
}

func (f *chanFeed) Next(ctx context.Context) (Event, error) {
	for {
		select {
		case ev := <-f.ch:
			return ev, nil
		case ev := <-f.pool.C():
			if ev.Reason == mempool.Committed {
				continue
			}
			return Event{Removed: &RemovedTx{Hash: ev.Hash, Reason: ev.Reason}}, nil
		case <-f.lost:
			return Event{}, ErrFeedLost
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

func (f *chanFeed) Close() {
	f.pool.Close()
	f.b.mu.Lock()
	delete(f.b.feeds, f)
	f.b.mu.Unlock()
}

func (b *testBackend) publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for f := range b.feeds {
		select {
		case f.ch <- ev:
		default:
			close(f.lost)
			delete(b.feeds, f)
		}
	}
}

// commit decides a block with txs (which must be valid) and tells the
// server, as the node's driver does.
func (b *testBackend) commit(t testing.TB, txs ...*ledger.Tx) *ledger.Block {
	t.Helper()
	b.mu.Lock()
	last := b.lastCommit
	b.mu.Unlock()
	st := b.st.State()
	blk := b.chain.NextBlock(st, txs, last, 0)
	c := b.signCommit(t, blk, st.Validators)
	if _, _, err := b.st.Apply(blk, c); err != nil {
		t.Fatalf("apply block %d: %v", blk.Height(), err)
	}
	b.mu.Lock()
	b.lastCommit = c
	b.mu.Unlock()
	if err := b.pool.Update(blk.Height(), txs, b.st.Reader()); err != nil {
		t.Fatal(err)
	}
	b.publish(Event{Block: blk})
	return blk
}

// transfer signs a transfer from account i of the test chain.
func (b *testBackend) transfer(from int, to crypto.Address, amount, fee, nonce uint64) *ledger.Tx {
	return ledgertest.Transfer(b.chain.Accounts[from], to, amount, fee, nonce)
}

func (b *testBackend) addr(i int) crypto.Address { return b.chain.Accounts[i].PubKey().Address() }

// testServer is a running server on a loopback port.
type testServer struct {
	*Server
	b    *testBackend
	url  string
	done chan error
}

func startServer(t testing.TB, b *testBackend, cfg Config) *testServer {
	t.Helper()
	s, err := New(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, s, b)
}

func serve(t testing.TB, s *Server, b *testBackend) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: s, b: b, url: "http://" + ln.Addr().String(), done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ts.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Serve did not return after its context ended")
		}
	})
	return ts
}

// post sends a raw body and returns the status and body.
func (ts *testServer) post(t testing.TB, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(ts.url, "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

type rawResponse struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int           `json:"code"`
		Message string        `json:"message"`
		Data    api.ErrorData `json:"data"`
	} `json:"error"`
}

// call invokes method with params and decodes the result into out; it
// fails the test on an error answer.
func (ts *testServer) call(t testing.TB, method string, out any, params ...any) {
	t.Helper()
	r := ts.callRaw(t, method, params...)
	if r.Error != nil {
		t.Fatalf("%s: error %d: %s", method, r.Error.Code, r.Error.Message)
	}
	if out != nil {
		if err := json.Unmarshal(r.Result, out); err != nil {
			t.Fatalf("%s: decode %s: %v", method, r.Result, err)
		}
	}
}

func (ts *testServer) callRaw(t testing.TB, method string, params ...any) rawResponse {
	t.Helper()
	var ps any = params
	if params == nil {
		ps = []any{}
	} else if len(params) == 1 {
		if m, ok := params[0].(map[string]any); ok {
			ps = m // by name
		}
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": ps})
	_, raw := ts.post(t, string(body))
	var r rawResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s: undecodable answer %q: %v", method, raw, err)
	}
	return r
}

// errCode returns the error code of an answer, 0 for success.
func (r rawResponse) errCode() int {
	if r.Error == nil {
		return 0
	}
	return r.Error.Code
}

var errTimeout = errors.New("timed out")

// recvTimeout reads one value from ch or fails after d.
func recvTimeout[T any](ch <-chan T, d time.Duration) (T, error) {
	select {
	case v := <-ch:
		return v, nil
	case <-time.After(d):
		var zero T
		return zero, errTimeout
	}
}
