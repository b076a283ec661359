package node

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/store"
	"github.com/ledgerd/ledgerd/mempool"
	"github.com/ledgerd/ledgerd/rpc"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// startRPC starts the JSON-RPC server (HTTP, WebSocket, /health, /metrics)
// on cfg.RPC.ListenAddr, unless that is empty. The server is one of the
// node's owned goroutines: it stops when ctx ends, and the node's shutdown
// waits for it (and for every connection it serves) before closing the
// stores. A port of 0 is replaced in the configuration by the one bound,
// which RPCAddr reports.
func (n *Node) startRPC(ctx context.Context) error {
	c := n.cfg.RPC
	if c.ListenAddr == "" {
		n.log.Info("rpc disabled (rpc.laddr is empty)")
		return nil
	}
	srv, err := rpc.New(rpcBackend{n}, rpc.Config{
		MaxBodyBytes:     c.MaxBodyBytes,
		MaxBatchRequests: c.MaxBatchRequests,
		MaxSubscriptions: c.MaxSubscriptions,
		MaxConnections:   c.MaxConnections,

		MaxConnectionsPerClient:    c.MaxConnectionsPerClient,
		MaxWebSockets:              c.MaxWebSockets,
		MaxWebSocketsPerClient:     c.MaxWebSocketsPerClient,
		RequestsPerSecondPerClient: c.RequestsPerSecondPerClient,
		RequestBurstPerClient:      c.RequestBurstPerClient,
		UnlimitedClients:           unlimitedClients(c.UnlimitedClients),
		ReadHeaderTimeout:          c.ReadHeaderTimeout.Duration,
		IdleTimeout:                c.IdleTimeout.Duration,
		CORSAllowedOrigins:         c.CORSAllowedOrigins,
		VirtualHosts:               c.VirtualHosts,

		MaxResponseBytes:         c.MaxResponseBytes,
		MaxBatchResponseBytes:    c.MaxBatchResponseBytes,
		MaxResponseBytesInFlight: c.MaxResponseBytesInFlight,
		WSQueueBytes:             c.WSQueueBytes,
		WSOrigins:                c.WSOrigins,
		Logger:                   n.log.With("module", "rpc"),
		Metrics:                  n.metrics,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.ListenAddr)
	if err != nil {
		return fmt.Errorf("rpc: listen on %s: %w", c.ListenAddr, err)
	}
	n.cfg.RPC.ListenAddr = ln.Addr().String()
	n.log.Info("rpc listening", "addr", n.cfg.RPC.ListenAddr)
	if ip := tcpIP(ln.Addr()); ip != nil && !ip.IsLoopback() {
		n.log.Warn("rpc: listening on an address that is not loopback: anyone who can reach it can call the API; "+
			"put it behind a TLS proxy with access control, and keep rpc.vhosts, rpc.ws_origins and the per-client limits tight",
			"addr", n.cfg.RPC.ListenAddr, "every_interface", ip.IsUnspecified(),
			"vhosts", c.VirtualHosts, "ws_origins", c.WSOrigins)
	}
	n.goRun(func() error { return srv.Serve(ctx, ln) })
	return nil
}

// unlimitedClients passes the configured list on; an empty list means
// nobody is exempt (rpc.Config reads nil as its default).
func unlimitedClients(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// tcpIP is the IP address of a TCP listener's address, nil for others.
func tcpIP(a net.Addr) net.IP {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP
	}
	return nil
}

// RPCAddr is the HOST:PORT the JSON-RPC server listens on once Start has
// returned (with the port the system chose when the configuration said
// 0), or "" when RPC is disabled.
func (n *Node) RPCAddr() string { return n.cfg.RPC.ListenAddr }

// rpcBackend serves the RPC from the node's lock-free reads.
type rpcBackend struct{ n *Node }

// The node's store and mempool are what the RPC reads, as they are.
var (
	_ rpc.Backend     = rpcBackend{}
	_ rpc.ChainReader = (*store.Store)(nil)
	_ rpc.TxPool      = (*mempool.Mempool)(nil)
)

// Chain implements rpc.Backend.
func (b rpcBackend) Chain() rpc.ChainReader { return b.n.store }

// Pool implements rpc.Backend.
func (b rpcBackend) Pool() rpc.TxPool { return b.n.pool }

// Genesis implements rpc.Backend.
func (b rpcBackend) Genesis() *genesis.Doc { return b.n.doc }

// Validators implements rpc.Backend.
func (b rpcBackend) Validators() *ledger.ValidatorSet { return b.n.Validators() }

// ValidatorsAt implements rpc.Backend.
func (b rpcBackend) ValidatorsAt(h uint64) (*ledger.ValidatorSet, error) {
	return b.n.store.ValidatorsAt(h)
}

// SubmitTx implements rpc.Backend.
func (b rpcBackend) SubmitTx(ctx context.Context, tx *ledger.Tx) error { return b.n.SubmitTx(ctx, tx) }

// Status implements rpc.Backend.
func (b rpcBackend) Status() rpc.NodeStatus {
	s := b.n.Status()
	return rpc.NodeStatus{
		ChainID: s.ChainID, NodeID: s.NodeID, Moniker: s.Moniker, Validator: s.Validator, IsValidator: s.IsValidator,
		Height: s.Height, Hash: s.Hash, Time: s.Time, AppHash: s.AppHash, CatchingUp: s.CatchingUp,
		ConsensusHeight: s.ConsensusHeight, ConsensusRound: s.ConsensusRound, Problems: s.Problems,
	}
}

// Peers implements rpc.Backend.
func (b rpcBackend) Peers() []api.Peer {
	ps := b.n.Peers()
	out := make([]api.Peer, len(ps))
	for i, p := range ps {
		addrs := make([]string, len(p.Addrs))
		for j, a := range p.Addrs {
			addrs[j] = a.String()
		}
		out[i] = api.Peer{ID: p.ID.String(), Addrs: addrs, Inbound: p.Inbound, Persistent: p.Persistent,
			Height: api.Uint64(p.Height), Score: p.Score, Penalty: p.Penalty}
	}
	return out
}

// Subscribe implements rpc.Backend: committed blocks and mempool removals.
func (b rpcBackend) Subscribe(buffer int) (rpc.EventFeed, error) {
	blocks := b.n.Subscribe(buffer)
	if blocks == nil {
		return nil, errors.New("node serves too many subscriptions")
	}
	return &rpcFeed{blocks: blocks, pool: b.n.pool.Subscribe(buffer, mempool.EventRemoved)}, nil
}

// rpcFeed merges committed blocks and mempool removals. Removals of
// committed transactions are left out: the block says more.
type rpcFeed struct {
	blocks *Subscription
	pool   *mempool.Subscription
}

// Next implements rpc.EventFeed.
func (f *rpcFeed) Next(ctx context.Context) (rpc.Event, error) {
	for {
		select {
		case ev, ok := <-f.blocks.C():
			if !ok {
				if f.blocks.Dropped() {
					return rpc.Event{}, rpc.ErrFeedLost
				}
				return rpc.Event{}, errors.New("node block subscription closed")
			}
			return rpc.Event{Block: ev.Block}, nil
		case ev, ok := <-f.pool.C():
			if !ok {
				return rpc.Event{}, errors.New("mempool subscription closed")
			}
			if ev.Reason == mempool.Committed {
				continue
			}
			return rpc.Event{Removed: &rpc.RemovedTx{Hash: ev.Hash, Reason: ev.Reason}}, nil
		case <-ctx.Done():
			return rpc.Event{}, ctx.Err()
		}
	}
}

// Close implements rpc.EventFeed.
func (f *rpcFeed) Close() {
	f.blocks.Close()
	f.pool.Close()
}
