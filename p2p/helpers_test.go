package p2p

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	libp2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

const testChainID = ledgertest.ChainID

// testGenesis stands for the genesis hash of the test chain.
var testGenesis = crypto.Sum([]byte("ledgerd p2p test genesis"))

// testLogger discards logs unless LEDGERD_TEST_LOG is set (pubsub keeps
// logging through it after a test ends, so it cannot be t.Log).
func testLogger() *slog.Logger {
	if os.Getenv("LEDGERD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testChain is a chain of blocks with valid commits, built once per shape
// and shared by tests (it is read-only).
type testChain struct {
	c       *ledgertest.Chain
	vals    *ledger.ValidatorSet
	blocks  [][]byte         // encoded block at height h is blocks[h-1]
	hashes  []crypto.Hash    // block hashes
	commits []*ledger.Commit // commit for height h is commits[h-1]
}

var (
	chainsMu sync.Mutex
	chains   = map[[2]int]*testChain{}
)

// getChain returns a chain of n heights with txs transfers per block.
func getChain(tb testing.TB, n, txs int) *testChain {
	tb.Helper()
	chainsMu.Lock()
	defer chainsMu.Unlock()
	if tc, ok := chains[[2]int{n, txs}]; ok {
		return tc
	}
	c := ledgertest.NewChain(4, 2, 1<<40)
	tc := &testChain{c: c, vals: c.Genesis.Validators}
	// The syncer checks commits and block bodies, not execution, so one
	// set of signed transfers serves every block.
	body := make([]*ledger.Tx, txs)
	to := c.Accounts[1].PubKey().Address()
	for i := range body {
		body[i] = ledgertest.Transfer(c.Accounts[0], to, 1, 1, uint64(i))
	}
	st := c.Genesis.Copy()
	var last *ledger.Commit
	for h := 1; h <= n; h++ {
		b := c.NextBlock(st, body, last, h)
		cm := c.Commit(b)
		tc.blocks = append(tc.blocks, b.Encode())
		tc.hashes = append(tc.hashes, b.Hash())
		tc.commits = append(tc.commits, cm)
		st.Height, st.LastBlockHash, st.LastBlockTime = b.Height(), b.Hash(), b.Header.Time
		last = cm
	}
	chains[[2]int{n, txs}] = tc
	return tc
}

// testVals is the validator set of every test chain (keys are deterministic).
func testVals(tb testing.TB) (*ledger.ValidatorSet, []crypto.PrivKey) {
	tc := getChain(tb, 0, 0)
	return tc.vals, tc.c.ValKeys
}

// testHandler records what a node delivers and serves a testChain.
type testHandler struct {
	height atomic.Uint64
	round  atomic.Uint32

	txs       chan *ledger.Tx
	proposals chan *ledger.Proposal
	parts     chan *ledger.Part
	votes     chan *ledger.Vote
	evidence  chan *ledger.Evidence

	chain    *testChain
	latest   atomic.Uint64
	base     atomic.Uint64 // lowest height served (0 or 1: every height)
	served   atomic.Int64  // blocks served
	below    atomic.Int64  // blocks asked for below base
	withhold bool          // claims its latest height but serves nothing
	corrupt  func(height uint64, block []byte, c *ledger.Commit) ([]byte, *ledger.Commit)

	mu     sync.Mutex
	rounds map[[2]uint64]RoundMessages
}

func newTestHandler(height uint64, round uint32) *testHandler {
	h := &testHandler{
		txs:       make(chan *ledger.Tx, 1024),
		proposals: make(chan *ledger.Proposal, 1024),
		parts:     make(chan *ledger.Part, 1024),
		votes:     make(chan *ledger.Vote, 1024),
		evidence:  make(chan *ledger.Evidence, 1024),
		rounds:    make(map[[2]uint64]RoundMessages),
	}
	h.height.Store(height)
	h.round.Store(round)
	return h
}

// serving makes h serve tc up to height latest.
func (h *testHandler) serving(tc *testChain, latest uint64) *testHandler {
	h.chain = tc
	h.latest.Store(latest)
	return h
}

// put records a delivery; tests read what they expect, so a full buffer
// (a catch-up loop repeating itself) just drops the surplus.
func put[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}

func (h *testHandler) HandleTxs(_ peer.ID, txs []*ledger.Tx) {
	for _, tx := range txs {
		put(h.txs, tx)
	}
}
func (h *testHandler) HandleProposal(_ peer.ID, p *ledger.Proposal)  { put(h.proposals, p) }
func (h *testHandler) HandleVote(_ peer.ID, v *ledger.Vote)          { put(h.votes, v) }
func (h *testHandler) HandleEvidence(_ peer.ID, ev *ledger.Evidence) { put(h.evidence, ev) }
func (h *testHandler) HandleBlockPart(_ peer.ID, _ uint64, _ uint32, p *ledger.Part) {
	put(h.parts, p)
}

func (h *testHandler) ConsensusPosition() (uint64, uint32) { return h.height.Load(), h.round.Load() }

func (h *testHandler) RoundMessages(height uint64, round uint32) RoundMessages {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rounds[[2]uint64{height, uint64(round)}]
}

func (h *testHandler) setRound(height uint64, round uint32, rm RoundMessages) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rounds[[2]uint64{height, uint64(round)}] = rm
}

func (h *testHandler) LatestHeight() uint64 { return h.latest.Load() }

// BaseHeight makes testHandler a BlockBase.
func (h *testHandler) BaseHeight() uint64 { return max(h.base.Load(), 1) }

func (h *testHandler) Block(height uint64) ([]byte, error) {
	if height < h.base.Load() {
		h.below.Add(1)
		return nil, fmt.Errorf("block %d below base %d: %w", height, h.base.Load(), ErrNotFound)
	}
	if h.chain == nil || h.withhold || height == 0 || height > h.latest.Load() {
		return nil, fmt.Errorf("block %d: %w", height, ErrNotFound)
	}
	h.served.Add(1)
	b := h.chain.blocks[height-1]
	if h.corrupt != nil {
		b, _ = h.corrupt(height, b, h.chain.commits[height-1])
	}
	return b, nil
}

func (h *testHandler) Commit(height uint64) (*ledger.Commit, error) {
	if h.chain == nil || height == 0 || height > h.latest.Load() || height < h.base.Load() {
		return nil, fmt.Errorf("commit %d: %w", height, ErrNotFound)
	}
	c := h.chain.commits[height-1]
	if h.corrupt != nil {
		_, c = h.corrupt(height, h.chain.blocks[height-1], c)
	}
	return c, nil
}

// testConfig is a Config for loopback tests with short intervals.
func testConfig(mut ...func(*Config)) Config {
	cfg := Config{
		ChainID:             testChainID,
		GenesisHash:         testGenesis,
		ListenAddrs:         []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"},
		Logger:              testLogger(),
		ReconnectBackoffMin: 20 * time.Millisecond,
		ReconnectBackoffMax: 300 * time.Millisecond,
		StatusInterval:      200 * time.Millisecond,
		CatchupInterval:     -1,
	}
	for _, m := range mut {
		m(&cfg)
	}
	return cfg
}

func genKey(tb testing.TB) libp2pcrypto.PrivKey {
	tb.Helper()
	k, _, err := libp2pcrypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// startNode starts a node that Cleanup closes.
func startNode(tb testing.TB, h Handler, cfg Config) *Node {
	tb.Helper()
	return startNodeKey(tb, h, cfg, genKey(tb))
}

func startNodeKey(tb testing.TB, h Handler, cfg Config, key libp2pcrypto.PrivKey) *Node {
	tb.Helper()
	vals, _ := testVals(tb)
	n, err := New(context.Background(), cfg, key, h, staticSets{vals})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { n.Close() })
	return n
}

// addrOf returns n's full TCP (or QUIC) multiaddr as a string.
func addrOf(tb testing.TB, n *Node, quic bool) string {
	tb.Helper()
	for _, a := range n.FullAddrs() {
		_, err := a.ValueForProtocol(multiaddr.P_QUIC_V1)
		if (err == nil) == quic {
			return a.String()
		}
	}
	tb.Fatalf("node %s has no %s address", n.ID(), map[bool]string{true: "QUIC", false: "TCP"}[quic])
	return ""
}

// waitCtx is a context for one wait in a test.
func waitCtx(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// waitConnectedness waits, on h's event bus, until h's connectedness to p
// is (connected) or is not (!connected) Connected.
func waitConnectedness(tb testing.TB, ctx context.Context, h host.Host, p peer.ID, connected bool) {
	tb.Helper()
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		tb.Fatal(err)
	}
	defer sub.Close()
	for (h.Network().Connectedness(p) == network.Connected) != connected {
		select {
		case <-sub.Out():
		case <-ctx.Done():
			tb.Fatalf("%s: peer %s never became connected=%v", h.ID(), p, connected)
		}
	}
}

// waitAdmission waits until n has (admitted) or has not (!admitted)
// admitted p as a peer.
func waitAdmission(tb testing.TB, ctx context.Context, n *Node, p peer.ID, admitted bool) {
	tb.Helper()
	for {
		changed := n.admits.watch()
		if n.admits.admitted(p) == admitted {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			tb.Fatalf("%s: peer %s never became admitted=%v", n.ID(), p, admitted)
		}
	}
}

// waitTopicPeers waits until every topic of t has at least min peers. It
// wakes on the topics' peer-join events, and re-checks every 100ms as well:
// ListPeers counts a peer only once pubsub's outbound stream to it is up,
// which has no event of its own.
func waitTopicPeers(tb testing.TB, ctx context.Context, topics []*pubsub.Topic, min int) {
	tb.Helper()
	for _, t := range topics {
		eh, err := t.EventHandler()
		if err != nil {
			tb.Fatal(err)
		}
		for len(t.ListPeers()) < min {
			step, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			_, _ = eh.NextPeerEvent(step)
			cancel()
			if ctx.Err() != nil {
				eh.Cancel()
				tb.Fatalf("topic %s: %d peers, want %d", t, len(t.ListPeers()), min)
			}
		}
		eh.Cancel()
	}
}

func (n *Node) pubsubTopics() []*pubsub.Topic {
	out := make([]*pubsub.Topic, len(n.topics))
	for i, t := range n.topics {
		out[i] = t.t
	}
	return out
}

// recvOne waits for one value on ch.
func recvOne[T any](tb testing.TB, ctx context.Context, ch <-chan T, what string) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		tb.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// signedVote returns a vote by validator i.
func signedVote(keys []crypto.PrivKey, i int, t ledger.VoteType, height uint64, round uint32, id crypto.Hash) *ledger.Vote {
	v := &ledger.Vote{Type: t, Height: height, Round: round, BlockID: id}
	v.Sign(testChainID, keys[i])
	return v
}

// signedProposal builds a proposal by validator i for block b.
func signedProposal(keys []crypto.PrivKey, i int, height uint64, round uint32, b *ledger.Block) (*ledger.Proposal, []*ledger.Part) {
	hdr, parts := ledger.SplitBlock(b.Encode())
	p := &ledger.Proposal{Height: height, Round: round, POLRound: -1, BlockID: b.Hash(), Parts: hdr}
	p.Sign(testChainID, keys[i])
	return p, parts
}

func genPeerID(tb testing.TB) peer.ID {
	tb.Helper()
	id, err := peer.IDFromPrivateKey(genKey(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func hashOf(s string) crypto.Hash { return crypto.Sum([]byte(s)) }

// staticSets is the validator set of every height.
type staticSets struct{ vals *ledger.ValidatorSet }

func (s staticSets) ValidatorsAt(uint64) (*ledger.ValidatorSet, error) { return s.vals, nil }
