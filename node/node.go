// Package node runs a ledgerd node: it wires the ledger store, the mempool,
// the consensus state machine with its write-ahead log and signer, and the
// libp2p network, and drives consensus from one goroutine.
//
// The driver owns the consensus machine. Per event it steps the machine,
// writes the event to the WAL (durably before anything leaves the node),
// then carries out the effects in order; own votes and proposals pass the
// persisted last-signed guard before they are sent. Readers (RPC) see an
// atomically swapped Status and never wait on consensus.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/consensus/catchup"
	"github.com/ledgerd/ledgerd/consensus/evidence"
	"github.com/ledgerd/ledgerd/consensus/wal"
	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/internal/durable"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/store"
	"github.com/ledgerd/ledgerd/mempool"
	"github.com/ledgerd/ledgerd/metrics"
	"github.com/ledgerd/ledgerd/p2p"
	"github.com/ledgerd/ledgerd/privval"
)

// Status is a consistent snapshot of the node for readers.
type Status struct {
	ChainID         string           `json:"chain_id"`
	NodeID          string           `json:"node_id"`
	Moniker         string           `json:"moniker"`
	Validator       crypto.Address   `json:"validator_address"`
	IsValidator     bool             `json:"is_validator"`
	Height          uint64           `json:"latest_height,string"`
	Hash            crypto.Hash      `json:"latest_block_hash"`
	Time            ledger.Timestamp `json:"latest_block_time"`
	AppHash         crypto.Hash      `json:"latest_app_hash"`
	CatchingUp      bool             `json:"catching_up"`
	ConsensusRound  uint32           `json:"consensus_round"`
	ConsensusHeight uint64           `json:"consensus_height,string"`
	// Problems are reasons the node cannot make progress: a stopped
	// driver, a signer refusing to sign at the current height, committed
	// blocks lost from the store and not yet fetched again, or no block
	// committed for StallAfter while blocks are due. Empty when healthy.
	Problems []string `json:"problems,omitempty"`
}

// StallAfter is how long a node that should be committing blocks (empty
// blocks are on, or transactions wait) may go without committing one
// before Status reports it stalled.
const StallAfter = time.Minute

// Options are what New needs besides the configuration.
type Options struct {
	Logger *slog.Logger
	Clock  Clock // nil: the wall clock
}

// Node is a running ledgerd node.
type Node struct {
	cfg     *Config
	log     *slog.Logger
	clock   Clock
	doc     *genesis.Doc
	chainID string

	db      *kv.Level
	store   *store.Store
	pool    *mempool.Mempool
	wal     *wal.FileLog
	signer  *privval.Signer // nil on a node that is not a validator
	self    crypto.Address
	valKey  *crypto.PrivKey // the validator key; nil on a node that is not a validator
	net     *p2p.Node
	evpool  *evidence.Pool
	events  *eventHub
	metrics *metrics.Metrics
	pruner  *pruner // nil when the node keeps every height's state
	// snapshots takes the state snapshots and serves them to peers.
	snapshots *snapshotter
	// corruptChunk, set by tests before Start, alters the snapshot chunks
	// this node serves (a peer serving bad chunks).
	corruptChunk func(height uint64, index uint32, chunk []byte) []byte

	inbox   chan inbound
	txReady chan struct{}
	gossip  chan *ledger.Tx // admitted local transactions waiting to be gossiped
	rounds  *catchup.Cache[[]*ledger.Part]

	posHeight atomic.Uint64
	posRound  atomic.Uint32
	syncing   atomic.Bool
	status    atomic.Pointer[Status]
	// Progress reports for Status.Problems, written by the driver.
	refusal      atomic.Pointer[string] // the signer refused at the current height
	lostBlocks   atomic.Pointer[string] // committed blocks lost from the store, waiting for block sync
	lastProgress atomic.Int64           // unix nanoseconds of the last commit (or the start)

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	err    error
	done   chan struct{}
}

// inboxSize bounds consensus messages waiting for the driver. When it is
// full, gossip deliveries are dropped: peers re-send (catch-up), and a
// dropped vote cannot break safety.
const inboxSize = 16384

// New opens the node's stores and keys. Start runs it.
func New(cfg *Config, o Options) (*Node, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clock := o.Clock
	if clock == nil {
		clock = SystemClock{}
	}
	doc, err := genesis.Load(cfg.GenesisFile())
	if err != nil {
		return nil, err
	}
	gst, accounts, err := doc.InitialState()
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, log: log, clock: clock, doc: doc, chainID: doc.ChainID,
		evpool:  evidence.NewPool(),
		rounds:  catchup.New[[]*ledger.Part](p2p.MaxCatchupVotes),
		events:  newEventHub(),
		metrics: metrics.New(),
		inbox:   make(chan inbound, inboxSize),
		txReady: make(chan struct{}, 1),
		gossip:  make(chan *ledger.Tx, gossipQueue),
		done:    make(chan struct{}),
	}
	ok := false
	defer func() {
		if !ok {
			n.closeStores()
		}
	}()

	if n.db, err = kv.OpenLevel(cfg.LedgerDBDir()); err != nil {
		return nil, err
	}
	n.store = store.Open(n.db)
	records, err := doc.StakingRecords()
	if err != nil {
		return nil, fmt.Errorf("genesis staking: %w", err)
	}
	st, err := n.store.Init(gst, accounts, records, doc.Hash())
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}

	n.pruner = newPruner(cfg.Pruning, n.store, log.With("module", "pruner"))
	if n.snapshots, err = openSnapshotter(cfg, n.store, log.With("module", "snapshots")); err != nil {
		return nil, err
	}
	if n.pruner != nil {
		n.pruner.pinned = n.snapshots.pinned
	}

	mcfg := mempool.DefaultConfig(n.chainID)
	mcfg.MaxTxs, mcfg.MaxBytes, mcfg.MaxPerSender = cfg.Mempool.MaxTxs, cfg.Mempool.MaxBytes, cfg.Mempool.MaxPerSender
	mcfg.TTL = cfg.Mempool.TTL.Duration
	mcfg.Now = clock.Now
	if n.pool, err = mempool.New(mcfg, n.store.Reader(), st.Height); err != nil {
		return nil, fmt.Errorf("mempool: %w", err)
	}
	// The mempool admits only transactions whose signatures were verified
	// (by itself or by the gossip validators); blocks need not repeat that.
	n.store.SetVerifiedTxs(n.pool.Has)

	if n.wal, err = wal.OpenWithOptions(cfg.WALDir(), wal.Options{Logger: log.With("module", "wal")}); err != nil {
		return nil, err
	}
	if cut := n.wal.Repaired(); cut > 0 {
		log.Warn("write-ahead log had a torn or corrupt tail; cut it", "bytes", cut)
	}

	if err := removeTemps(cfg, log); err != nil {
		return nil, err
	}
	valKey, err := privval.LoadKeyFile(cfg.ValidatorKeyFile())
	switch {
	case err == nil:
		// Whether the key votes at a height is the height's validator set's
		// call: a node that joins the set later signs from then on.
		if n.signer, err = privval.New(valKey, privval.NewFileStateStore(cfg.ValidatorStateFile())); err != nil {
			return nil, err
		}
		n.self = valKey.PubKey().Address()
		n.valKey = &valKey
	case errors.Is(err, os.ErrNotExist):
	default:
		return nil, err
	}
	n.setStatus(st)
	n.metrics.Height.Set(float64(st.Height))
	ok = true
	return n, nil
}

// removeTemps deletes the temporary files that a process killed inside a
// crash-safe write of the home's files left behind (the signing state is
// rewritten at every step, so a node killed often would gather them).
func removeTemps(cfg *Config, log *slog.Logger) error {
	for _, f := range []string{cfg.ValidatorStateFile(), cfg.ValidatorKeyFile(), cfg.NodeKeyFile(), cfg.GenesisFile()} {
		removed, err := durable.RemoveTemps(f)
		if err != nil {
			return fmt.Errorf("clean up after an interrupted write of %s: %w", f, err)
		}
		if len(removed) > 0 {
			log.Info("removed temporary files left by an interrupted write", "file", f, "count", len(removed))
		}
	}
	return nil
}

// Start connects to the network and starts the consensus driver. It
// returns once the node is running; Wait blocks until it stops.
func (n *Node) Start(ctx context.Context) error {
	key, err := p2p.LoadOrGenNodeKey(n.cfg.NodeKeyFile())
	if err != nil {
		return err
	}
	ctx, n.cancel = context.WithCancel(ctx)
	pcfg := p2p.DefaultConfig(n.chainID)
	pcfg.GenesisHash = n.doc.Hash()
	pcfg.ValidatorKey = n.valKey
	pcfg.MaxPeersPerIP = n.cfg.P2P.MaxPeersPerIP
	pcfg.ListenAddrs = n.cfg.P2P.ListenAddrs
	pcfg.ExternalAddrs = n.cfg.P2P.ExternalAddrs
	pcfg.PersistentPeers = n.cfg.P2P.PersistentPeers
	pcfg.BootstrapPeers = n.cfg.P2P.BootstrapPeers
	pcfg.MaxPeers = n.cfg.P2P.MaxPeers
	pcfg.Logger = n.log.With("module", "p2p")
	if n.net, err = p2p.New(ctx, pcfg, key, (*handler)(n), n.store); err != nil {
		n.abortStart()
		return fmt.Errorf("p2p: %w", err)
	}
	n.refreshStatus(func(s *Status) { s.NodeID = n.net.ID().String() })
	if err := n.startRPC(ctx); err != nil {
		n.abortStart()
		return err
	}
	n.log.Info("node started", "chain_id", n.chainID, "node_id", n.net.ID(), "height", n.store.Height(),
		"validator", n.signer != nil, "addrs", n.net.Addrs())

	n.snapshots.start(ctx, n.goRun)
	d := newDriver(n)
	n.goRun(func() error { return d.run(ctx) })
	n.goRun(func() error { return n.gossipTxs(ctx) })
	if n.pruner != nil {
		// A pruning cut short by a kill, or a window narrowed since the
		// last run, is finished now rather than at the next interval.
		n.pruner.kick(n.store.Height())
		n.goRun(func() error { n.pruner.run(ctx); return nil })
	}
	go func() {
		n.wg.Wait()
		n.shutdown()
		close(n.done)
	}()
	return nil
}

// abortStart undoes a Start that failed before the node ran: it stops what
// was started and leaves the node as New left it, so Stop closes the stores
// instead of waiting for goroutines that never ran.
func (n *Node) abortStart() {
	n.cancel()
	n.wg.Wait()
	if n.net != nil {
		n.net.Close()
		n.net = nil
	}
	n.cancel = nil
}

// goRun runs f as one of the node's owned goroutines; the first error
// stops the node.
func (n *Node) goRun(f func() error) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := f(); err != nil && !errors.Is(err, context.Canceled) {
			n.fail(err)
		}
	}()
}

// fail records the first fatal error and stops the node.
func (n *Node) fail(err error) {
	n.errMu.Lock()
	if n.err == nil {
		n.err = err
		n.log.Error("node stopping on error", "err", err)
	}
	n.errMu.Unlock()
	n.cancel()
}

// Stop stops the node and waits for it.
func (n *Node) Stop() error {
	if n.cancel != nil {
		n.cancel()
		<-n.done
	} else {
		n.closeStores()
	}
	return n.Err()
}

// Wait blocks until the node has stopped and returns the error that
// stopped it, if any.
func (n *Node) Wait() error {
	<-n.done
	return n.Err()
}

// Done is closed once the node has stopped.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err is the fatal error that stopped the node, if any.
func (n *Node) Err() error {
	n.errMu.Lock()
	defer n.errMu.Unlock()
	return n.err
}

func (n *Node) shutdown() {
	if n.net != nil {
		if err := n.net.Close(); err != nil {
			n.log.Warn("closing p2p", "err", err)
		}
	}
	n.closeStores()
	n.log.Info("node stopped", "height", n.store.Height())
}

func (n *Node) closeStores() {
	if n.wal != nil {
		n.wal.Close()
	}
	if n.db != nil {
		n.db.Close()
	}
}

// Status returns the latest snapshot.
func (n *Node) Status() Status {
	s := *n.status.Load()
	s.CatchingUp = n.syncing.Load()
	s.ConsensusHeight, s.ConsensusRound = n.posHeight.Load(), n.posRound.Load()
	s.Problems = n.problems(s)
	return s
}

// problems lists what stops the node from progressing (see Status.Problems).
func (n *Node) problems(s Status) []string {
	var out []string
	if err := n.Err(); err != nil {
		out = append(out, fmt.Sprintf("node stopped: %v", err))
	}
	if p := n.lostBlocks.Load(); p != nil {
		out = append(out, *p)
	}
	if p := n.refusal.Load(); p != nil {
		out = append(out, *p)
	}
	if last := n.lastProgress.Load(); last != 0 && !s.CatchingUp {
		txs, _ := n.pool.Size()
		idle := n.clock.Now().Sub(time.Unix(0, last))
		if (n.cfg.Consensus.CreateEmptyBlocks || txs > 0) && idle > StallAfter {
			out = append(out, fmt.Sprintf("no block committed for %s (consensus at height %d round %d, %d transactions waiting)",
				idle.Round(time.Second), s.ConsensusHeight, s.ConsensusRound, txs))
		}
	}
	return out
}

func (n *Node) setStatus(st *ledger.State) {
	n.refreshStatus(func(s *Status) {
		s.Height, s.Hash, s.Time, s.AppHash = st.Height, st.LastBlockHash, st.LastBlockTime, st.AppHash
		if n.signer != nil {
			_, s.IsValidator = st.Validators.ByAddress(n.self)
		}
	})
}

// refreshStatus swaps in a modified copy of the status. Only the driver
// and Start write it.
func (n *Node) refreshStatus(f func(*Status)) {
	var s Status
	if cur := n.status.Load(); cur != nil {
		s = *cur
	} else {
		s = Status{ChainID: n.chainID, Moniker: n.cfg.Moniker, Validator: n.self, IsValidator: n.isValidator()}
	}
	f(&s)
	n.status.Store(&s)
}

// Store gives read access to the ledger (blocks, commits, accounts, proofs).
func (n *Node) Store() *store.Store { return n.store }

// Mempool gives access to the transaction pool.
func (n *Node) Mempool() *mempool.Mempool { return n.pool }

// Metrics is the node's metric set, served at /metrics.
func (n *Node) Metrics() *metrics.Metrics { return n.metrics }

// Genesis is the chain's genesis document.
func (n *Node) Genesis() *genesis.Doc { return n.doc }

// Validators is the validator set of the next height.
func (n *Node) Validators() *ledger.ValidatorSet { return n.store.State().Validators }

// isValidator reports whether this node's key is in the validator set of
// the next height.
func (n *Node) isValidator() bool {
	if n.signer == nil {
		return false
	}
	_, ok := n.store.State().Validators.ByAddress(n.self)
	return ok
}

// Peers lists connected peers (empty before Start).
func (n *Node) Peers() []p2p.PeerInfo {
	if n.net == nil {
		return nil
	}
	return n.net.Peers()
}

// P2PAddrs are the node's full libp2p addresses (with /p2p/ID).
func (n *Node) P2PAddrs() []string {
	if n.net == nil {
		return nil
	}
	var out []string
	for _, a := range n.net.FullAddrs() {
		out = append(out, a.String())
	}
	return out
}

// SubmitTx admits tx to the mempool and gossips it. The error is the
// mempool's reason for refusing it (a *mempool.RejectError).
func (n *Node) SubmitTx(ctx context.Context, tx *ledger.Tx) error {
	if err := n.pool.Add(tx); err != nil {
		return err
	}
	n.signalTx()
	select {
	case n.gossip <- tx:
	default:
		// The gossip queue is full; the transaction is in our mempool and
		// reaches the chain when this node proposes.
		n.log.Debug("gossip queue full", "tx", tx.Hash())
	}
	return nil
}

// gossipQueue bounds admitted transactions waiting to be gossiped.
const gossipQueue = 1 << 16

// gossipLinger is how long the first transaction of a batch waits for
// others before the batch is gossiped.
const gossipLinger = 5 * time.Millisecond

// gossipTxs publishes admitted local transactions in batches of up to
// p2p.MaxTxsPerMessage, each batch leaving at most gossipLinger after its
// first transaction arrived.
func (n *Node) gossipTxs(ctx context.Context) error {
	batch := make([]*ledger.Tx, 0, p2p.MaxTxsPerMessage)
	flush := func() {
		if len(batch) > 0 {
			if err := n.net.PublishTxs(ctx, batch); err != nil && ctx.Err() == nil {
				n.log.Debug("gossip txs", "count", len(batch), "err", err)
			}
			batch = batch[:0]
		}
	}
	t := n.clock.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case tx := <-n.gossip:
			if len(batch) == 0 {
				t.Reset(gossipLinger)
			}
			batch = append(batch, tx)
			if len(batch) == p2p.MaxTxsPerMessage {
				t.Stop()
				flush()
			}
		case <-t.C():
			flush()
		}
	}
}

// signalTx wakes a driver waiting for transactions before proposing.
func (n *Node) signalTx() {
	select {
	case n.txReady <- struct{}{}:
	default:
	}
}

// Subscribe returns a subscription to committed blocks.
func (n *Node) Subscribe(buffer int) *Subscription { return n.events.subscribe(buffer) }
