package p2p

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/multiformats/go-multiaddr"
)

// Defaults for Config fields left at their zero value.
const (
	DefaultMaxPeers            = 50
	DefaultMaxMessageBytes     = 256 << 10
	DefaultReconnectBackoffMin = time.Second
	DefaultReconnectBackoffMax = time.Minute
	DefaultStatusInterval      = 5 * time.Second
	DefaultCatchupInterval     = 2 * time.Second
	DefaultBanDuration         = 10 * time.Minute
	DefaultRejectLimit         = 16
	DefaultRejectWindow        = time.Minute
	DefaultSyncLag             = 2
	DefaultSyncStall           = 10 * time.Second
	DefaultMaxPeersPerIP       = 8
	DefaultHandshakeTimeout    = 10 * time.Second
	DefaultServeBytesPerSecond = 8 << 20
	DefaultServeBurstBytes     = 32 << 20
	DefaultEvictGrace          = 30 * time.Second
)

// DefaultListenAddrs are the listen addresses of a node that sets none.
var DefaultListenAddrs = []string{"/ip4/0.0.0.0/tcp/26656", "/ip4/0.0.0.0/udp/26656/quic-v1"}

// Config configures a Node. Zero values mean the documented default, except
// ChainID, which is required.
type Config struct {
	// ChainID names the chain; topics and protocols carry it.
	ChainID string
	// GenesisHash identifies the chain's genesis document. A peer is
	// admitted only after a handshake in which it states the same chain ID
	// and genesis hash; it is required.
	GenesisHash crypto.Hash
	// ValidatorKey, when set, is this node's validator key: the handshake
	// carries a signature by it binding the node's peer ID, so peers give
	// this node the slots they reserve for validators. Nil for a node that
	// does not validate.
	ValidatorKey *crypto.PrivKey
	// ListenAddrs are libp2p multiaddrs to listen on (TCP and QUIC v1).
	ListenAddrs []string
	// ExternalAddrs, when set, are advertised to peers instead of the
	// listen addresses (for a node behind NAT or in a container).
	ExternalAddrs []string
	// PersistentPeers are full multiaddrs ending in /p2p/<id>: kept
	// connected for the node's lifetime, redialled with exponential backoff
	// between ReconnectBackoffMin and ReconnectBackoffMax.
	PersistentPeers []string
	// BootstrapPeers are full multiaddrs dialled once at start.
	BootstrapPeers []string
	// MaxPeers caps connected peers: the connection manager trims down to
	// 4/5 of it once it is exceeded, and inbound peers beyond it are refused
	// (persistent peers are exempt).
	MaxPeers int
	// MaxPeersPerIP caps the inbound peers admitted from one IP address
	// (default 8); persistent peers are exempt. Loopback is not exempt:
	// a local testnet keeps its nodes as persistent peers.
	MaxPeersPerIP int
	// HandshakeTimeout bounds the chain handshake of a new connection; a
	// peer that has not completed it by then is disconnected (default 10s).
	HandshakeTimeout time.Duration
	// ServeBytesPerSecond and ServeBurstBytes size the per-peer token
	// bucket that block-sync and catch-up answers draw from (defaults
	// 8 MiB/s and 32 MiB).
	ServeBytesPerSecond int
	ServeBurstBytes     int
	// EvictGrace is how long a newly admitted inbound peer is safe from
	// eviction by a later one when the inbound slots are full (default 30s).
	EvictGrace time.Duration
	// MaxMessageBytes is the largest pubsub RPC accepted; it must hold one
	// block-part message (about 67 KiB) plus pubsub's framing.
	MaxMessageBytes int
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger

	// ReconnectBackoffMin and ReconnectBackoffMax bound the (jittered,
	// doubling) wait between failed dials of a persistent peer.
	ReconnectBackoffMin time.Duration
	ReconnectBackoffMax time.Duration
	// StatusInterval is how often peers' heights are refreshed.
	StatusInterval time.Duration
	// CatchupInterval is how long the consensus position may stay put
	// before the node asks peers for the current round's messages.
	// Negative disables automatic catch-up (CatchUp still works).
	CatchupInterval time.Duration
	// BanDuration is how long a misbehaving peer stays disconnected.
	BanDuration time.Duration
	// RejectLimit rejected messages from one peer within RejectWindow get
	// it banned, whatever its gossipsub score.
	RejectLimit  int
	RejectWindow time.Duration
	// SyncLag: WaitBehind reports the node behind once a peer is more than
	// SyncLag heights ahead, or ahead at all for longer than SyncStall.
	SyncLag   uint64
	SyncStall time.Duration
	// Sync tunes the Syncer.
	Sync SyncConfig
}

// SyncConfig tunes block sync. Zero values mean the documented default.
type SyncConfig struct {
	// Window bounds the heights requested or fetched but not yet applied
	// (default 256).
	Window int
	// BatchSize is the number of heights asked of one peer in one request
	// (default 16, at most MaxSyncBatch).
	BatchSize int
	// PerPeerRequests bounds concurrent requests to one peer (default 2,
	// at most 2: what a node serves one peer at once).
	PerPeerRequests int
	// RequestTimeout bounds one request, from opening the stream to the
	// last block received (default 20s).
	RequestTimeout time.Duration
	// RetryBackoff is how long a peer that timed out or failed is left
	// alone before it is asked again (default 2s).
	RetryBackoff time.Duration
	// ResponseTimeout bounds the wait for the first frame of an answer
	// (default 5s, at most RequestTimeout): a peer that claims heights and
	// stalls is found out this fast.
	ResponseTimeout time.Duration
}

// DefaultConfig returns the defaults for chainID.
func DefaultConfig(chainID string) Config {
	c := Config{ChainID: chainID}
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if len(c.ListenAddrs) == 0 {
		c.ListenAddrs = append([]string(nil), DefaultListenAddrs...)
	}
	setDefault(&c.MaxPeers, DefaultMaxPeers)
	setDefault(&c.MaxMessageBytes, DefaultMaxMessageBytes)
	setDefault(&c.ReconnectBackoffMin, DefaultReconnectBackoffMin)
	setDefault(&c.ReconnectBackoffMax, DefaultReconnectBackoffMax)
	setDefault(&c.StatusInterval, DefaultStatusInterval)
	setDefault(&c.CatchupInterval, DefaultCatchupInterval)
	setDefault(&c.BanDuration, DefaultBanDuration)
	setDefault(&c.RejectLimit, DefaultRejectLimit)
	setDefault(&c.RejectWindow, DefaultRejectWindow)
	setDefault(&c.SyncLag, DefaultSyncLag)
	setDefault(&c.SyncStall, DefaultSyncStall)
	setDefault(&c.MaxPeersPerIP, DefaultMaxPeersPerIP)
	setDefault(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&c.ServeBytesPerSecond, DefaultServeBytesPerSecond)
	setDefault(&c.ServeBurstBytes, DefaultServeBurstBytes)
	setDefault(&c.EvictGrace, DefaultEvictGrace)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Sync.setDefaults()
}

func (c *SyncConfig) setDefaults() {
	setDefault(&c.Window, 256)
	setDefault(&c.BatchSize, 16)
	setDefault(&c.PerPeerRequests, 2)
	setDefault(&c.RequestTimeout, 20*time.Second)
	setDefault(&c.RetryBackoff, 2*time.Second)
	setDefault(&c.ResponseTimeout, min(5*time.Second, c.RequestTimeout))
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// validate reports the first unusable setting; defaults are already set.
func (c *Config) validate() error {
	if err := crypto.ValidateChainID(c.ChainID); err != nil {
		return err
	}
	var errs []error
	for _, a := range append(append([]string(nil), c.ListenAddrs...), c.ExternalAddrs...) {
		if _, err := multiaddr.NewMultiaddr(a); err != nil {
			errs = append(errs, fmt.Errorf("address %q: %w", a, err))
		}
	}
	if c.GenesisHash == (crypto.Hash{}) {
		errs = append(errs, errors.New("genesis hash is required (the handshake compares it)"))
	}
	if c.MaxPeers < 1 || c.MaxPeersPerIP < 1 {
		errs = append(errs, errors.New("max peers and max peers per IP must be positive"))
	}
	if c.HandshakeTimeout <= 0 || c.EvictGrace < 0 {
		errs = append(errs, errors.New("handshake timeout must be positive and evict grace not negative"))
	}
	if c.ServeBytesPerSecond < 1 || c.ServeBurstBytes < 1 {
		errs = append(errs, errors.New("serve rate and burst must be positive"))
	}
	if c.MaxMessageBytes < minMessageBytes {
		errs = append(errs, fmt.Errorf("max message bytes %d is below %d, the size of one block-part message with framing", c.MaxMessageBytes, minMessageBytes))
	}
	if c.ReconnectBackoffMin <= 0 || c.ReconnectBackoffMax < c.ReconnectBackoffMin {
		errs = append(errs, errors.New("reconnect backoff must satisfy 0 < min <= max"))
	}
	if c.StatusInterval <= 0 || c.BanDuration <= 0 || c.RejectWindow <= 0 || c.SyncStall <= 0 {
		errs = append(errs, errors.New("status interval, ban duration, reject window and sync stall must be positive"))
	}
	if c.RejectLimit < 1 {
		errs = append(errs, errors.New("reject limit must be positive"))
	}
	s := &c.Sync
	if s.Window < 1 || s.BatchSize < 1 || s.BatchSize > MaxSyncBatch || s.PerPeerRequests < 1 || s.PerPeerRequests > maxStreamsPerPeer || s.RequestTimeout <= 0 || s.RetryBackoff <= 0 || s.ResponseTimeout <= 0 || s.ResponseTimeout > s.RequestTimeout {
		errs = append(errs, fmt.Errorf("sync: window and timeouts must be positive, batch size in [1, %d], per-peer requests in [1, %d]", MaxSyncBatch, maxStreamsPerPeer))
	}
	return errors.Join(errs...)
}
