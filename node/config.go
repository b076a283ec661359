package node

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/ledgerd/ledgerd/rpc"
)

// Duration is a time.Duration read from TOML as a string such as "1s".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Config is a node's configuration: config.toml in the home's config
// directory, with every option also settable by a flag of `ledgerd start`.
type Config struct {
	// Home is the node's home directory; not read from the file.
	Home string `toml:"-"`

	Moniker   string `toml:"moniker"`
	LogLevel  string `toml:"log_level"`
	LogFormat string `toml:"log_format"`

	RPC       RPCConfig       `toml:"rpc"`
	P2P       P2PConfig       `toml:"p2p"`
	Mempool   MempoolConfig   `toml:"mempool"`
	Consensus ConsensusConfig `toml:"consensus"`
	Pruning   PruningConfig   `toml:"pruning"`
	StateSync StateSyncConfig `toml:"statesync"`
}

// RPCConfig configures the JSON-RPC server.
type RPCConfig struct {
	ListenAddr       string `toml:"laddr"`
	MaxBodyBytes     int64  `toml:"max_body_bytes"`
	MaxBatchRequests int    `toml:"max_batch_requests"`
	MaxSubscriptions int    `toml:"max_subscriptions_per_client"`
	MaxConnections   int    `toml:"max_open_connections"`
	// Per-client (per IP address) limits, the WebSocket caps and the
	// HTTP timeouts; see rpc.Config.
	MaxConnectionsPerClient    int      `toml:"max_connections_per_client"`
	MaxWebSockets              int      `toml:"max_websockets"`
	MaxWebSocketsPerClient     int      `toml:"max_websockets_per_client"`
	RequestsPerSecondPerClient float64  `toml:"max_requests_per_second_per_client"`
	RequestBurstPerClient      int      `toml:"request_burst_per_client"`
	UnlimitedClients           []string `toml:"unlimited_clients"`
	ReadHeaderTimeout          Duration `toml:"read_header_timeout"`
	IdleTimeout                Duration `toml:"idle_timeout"`
	CORSAllowedOrigins         []string `toml:"cors_allowed_origins"`
	// MaxResponseBytes caps one call's answer, MaxBatchResponseBytes a
	// batch's answers together, MaxResponseBytesInFlight the answers built
	// and not yet sent across all clients, WSQueueBytes what waits to be
	// written to one WebSocket.
	MaxResponseBytes         int64 `toml:"max_response_bytes"`
	MaxBatchResponseBytes    int64 `toml:"max_batch_response_bytes"`
	MaxResponseBytesInFlight int64 `toml:"max_response_bytes_in_flight"`
	WSQueueBytes             int64 `toml:"ws_queue_bytes"`
	// VirtualHosts are the names the Host header may carry ("*": any);
	// IP-address hosts always pass. Empty means localhost only.
	VirtualHosts []string `toml:"vhosts"`
	// WSOrigins are the browser origins allowed to open a WebSocket
	// ("*": any). Empty means the localhost origins.
	WSOrigins []string `toml:"ws_origins"`
}

// P2PConfig configures the libp2p host.
type P2PConfig struct {
	ListenAddrs     []string `toml:"listen_addrs"`
	ExternalAddrs   []string `toml:"external_addrs"`
	PersistentPeers []string `toml:"persistent_peers"`
	BootstrapPeers  []string `toml:"bootstrap_peers"`
	MaxPeers        int      `toml:"max_peers"`
	// MaxPeersPerIP caps inbound peers from one IP address (persistent
	// peers are exempt); 0 means the default, 8.
	MaxPeersPerIP int `toml:"max_peers_per_ip"`
}

// MempoolConfig configures the transaction pool.
type MempoolConfig struct {
	MaxTxs       int      `toml:"max_txs"`
	MaxBytes     int      `toml:"max_bytes"`
	MaxPerSender int      `toml:"max_per_sender"`
	TTL          Duration `toml:"ttl"`
}

// ConsensusConfig configures the node's consensus behaviour (the protocol's
// timeouts are chain-wide and live in genesis).
type ConsensusConfig struct {
	// CreateEmptyBlocks makes the proposer propose even with no
	// transactions waiting; when false it waits for a transaction (or
	// EmptyBlocksInterval) before proposing, except for the one block
	// after a block that changed the state, whose header proves that state.
	CreateEmptyBlocks   bool     `toml:"create_empty_blocks"`
	EmptyBlocksInterval Duration `toml:"create_empty_blocks_interval"`
	// DoubleSignCheckHeight: before a validator signs anything, it looks
	// for its own signatures in the commits of the last this-many stored
	// heights (at start and after every block sync) and refuses to
	// validate if it finds one above the height its signing state last
	// signed at: the state was lost or is stale, or another node signs with
	// this key. 0 turns the check off.
	DoubleSignCheckHeight uint64 `toml:"double_sign_check_height"`
}

// PruningConfig says which versions of the state the node keeps, like
// Cosmos SDK's pruning options: Strategy "default" keeps the state of the
// last DefaultKeepRecent heights, "nothing" keeps every height's state,
// "everything" only the last two, and "custom" the last KeepRecent.
// Pruning runs in the background every Interval heights. Blocks are
// never pruned by it: only old versions of the state tree.
type PruningConfig struct {
	Strategy   string `toml:"strategy"`
	KeepRecent uint64 `toml:"keep_recent"`
	Interval   uint64 `toml:"interval"`
}

// Pruning strategies (PruningConfig.Strategy).
const (
	PruneDefault    = "default"
	PruneNothing    = "nothing"
	PruneEverything = "everything"
	PruneCustom     = "custom"
)

// DefaultKeepRecent is how many heights' state the default pruning
// strategy keeps: at one block a second, a little over a day of proofs
// at old heights, and far more than block sync, light clients or a
// snapshot in progress need.
const DefaultKeepRecent = 100_000

// Keep returns how many of the latest heights' state the strategy
// keeps, and false for "nothing" (keep all).
func (p PruningConfig) Keep() (uint64, bool) {
	switch p.Strategy {
	case PruneNothing:
		return 0, false
	case PruneEverything:
		return 2, true
	case PruneCustom:
		return p.KeepRecent, true
	default:
		return DefaultKeepRecent, true
	}
}

// StateSyncConfig configures the state snapshots the node takes and
// serves to peers that join by state sync, and whether it joins that way
// itself. Every SnapshotInterval heights (0: never) the node writes a
// snapshot of the state after that height into data/snapshots, in the
// background, and keeps the last SnapshotKeepRecent of them.
type StateSyncConfig struct {
	SnapshotInterval   uint64 `toml:"snapshot_interval"`
	SnapshotKeepRecent int    `toml:"snapshot_keep_recent"`
}

// Defaults of [statesync].
const (
	// DefaultSnapshotInterval is a snapshot every 1000 heights: at one
	// block a second a joining node replays at most about 17 minutes of
	// blocks after the newest snapshot.
	DefaultSnapshotInterval = 1000
	// DefaultSnapshotKeepRecent keeps two snapshots, so a peer restoring
	// the older one when a newer one appears can still finish.
	DefaultSnapshotKeepRecent = 2
)

// DefaultDoubleSignCheckHeight is the default of
// consensus.double_sign_check_height.
const DefaultDoubleSignCheckHeight = 20

// defaultRPCConfig is the [rpc] section's defaults: the RPC server's own
// defaults, listening on loopback only.
func defaultRPCConfig() RPCConfig {
	d := rpc.DefaultConfig()
	return RPCConfig{
		ListenAddr:         "127.0.0.1:26657",
		MaxBodyBytes:       d.MaxBodyBytes,
		MaxBatchRequests:   d.MaxBatchRequests,
		MaxSubscriptions:   d.MaxSubscriptions,
		MaxConnections:     d.MaxConnections,
		CORSAllowedOrigins: []string{},

		MaxResponseBytes:         d.MaxResponseBytes,
		MaxBatchResponseBytes:    d.MaxBatchResponseBytes,
		MaxResponseBytesInFlight: d.MaxResponseBytesInFlight,
		WSQueueBytes:             d.WSQueueBytes,

		MaxConnectionsPerClient:    d.MaxConnectionsPerClient,
		MaxWebSockets:              d.MaxWebSockets,
		MaxWebSocketsPerClient:     d.MaxWebSocketsPerClient,
		RequestsPerSecondPerClient: d.RequestsPerSecondPerClient,
		RequestBurstPerClient:      d.RequestBurstPerClient,
		UnlimitedClients:           slices.Clone(d.UnlimitedClients),
		ReadHeaderTimeout:          Duration{d.ReadHeaderTimeout},
		IdleTimeout:                Duration{d.IdleTimeout},

		VirtualHosts: slices.Clone(d.VirtualHosts),
		WSOrigins:    slices.Clone(d.WSOrigins),
	}
}

// DefaultConfig returns the defaults for a node whose home is home.
func DefaultConfig(home string) *Config {
	return &Config{
		Home:      home,
		Moniker:   hostnameOr("ledgerd"),
		LogLevel:  "info",
		LogFormat: "text",
		RPC:       defaultRPCConfig(),
		P2P: P2PConfig{
			ListenAddrs:     []string{"/ip4/0.0.0.0/tcp/26656", "/ip4/0.0.0.0/udp/26656/quic-v1"},
			ExternalAddrs:   []string{},
			PersistentPeers: []string{},
			BootstrapPeers:  []string{},
			MaxPeers:        50,
			MaxPeersPerIP:   8,
		},
		Mempool: MempoolConfig{
			MaxTxs:       100_000,
			MaxBytes:     64 << 20,
			MaxPerSender: 256,
			TTL:          Duration{10 * time.Minute},
		},
		Consensus: ConsensusConfig{
			CreateEmptyBlocks:     true,
			EmptyBlocksInterval:   Duration{0},
			DoubleSignCheckHeight: DefaultDoubleSignCheckHeight,
		},
		Pruning: PruningConfig{Strategy: PruneDefault, KeepRecent: 0, Interval: 10},
		StateSync: StateSyncConfig{
			SnapshotInterval:   DefaultSnapshotInterval,
			SnapshotKeepRecent: DefaultSnapshotKeepRecent,
		},
	}
}

func hostnameOr(def string) string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return def
}

// Paths inside a home directory.
func (c *Config) ConfigDir() string   { return filepath.Join(c.Home, "config") }
func (c *Config) DataDir() string     { return filepath.Join(c.Home, "data") }
func (c *Config) ConfigFile() string  { return filepath.Join(c.ConfigDir(), "config.toml") }
func (c *Config) GenesisFile() string { return filepath.Join(c.ConfigDir(), "genesis.json") }
func (c *Config) NodeKeyFile() string { return filepath.Join(c.ConfigDir(), "node_key.json") }
func (c *Config) ValidatorKeyFile() string {
	return filepath.Join(c.ConfigDir(), "priv_validator_key.json")
}
func (c *Config) ValidatorStateFile() string {
	return filepath.Join(c.DataDir(), "priv_validator_state.json")
}
func (c *Config) LedgerDBDir() string { return filepath.Join(c.DataDir(), "ledger.db") }
func (c *Config) WALDir() string      { return filepath.Join(c.DataDir(), "cs.wal") }

// SnapshotsDir is where the node keeps its state snapshots.
func (c *Config) SnapshotsDir() string { return filepath.Join(c.DataDir(), "snapshots") }

// LoadConfig reads home/config/config.toml over the defaults. A missing
// file yields the defaults; unknown keys are an error, so a typo in an
// option name is reported instead of silently ignored.
func LoadConfig(home string) (*Config, error) {
	c := DefaultConfig(home)
	buf, err := os.ReadFile(c.ConfigFile())
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	md, err := toml.Decode(string(buf), c)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", c.ConfigFile(), err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%s: unknown option(s) %s", c.ConfigFile(), strings.Join(keys, ", "))
	}
	c.Home = home
	return c, c.Validate()
}

// Validate checks the configuration for values the node cannot run with.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.RPC.ListenAddr); c.RPC.ListenAddr != "" && err != nil {
		errs = append(errs, fmt.Errorf("rpc.laddr %q: %w", c.RPC.ListenAddr, err))
	}
	if c.RPC.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New("rpc.max_body_bytes must be positive"))
	}
	if c.RPC.MaxBatchRequests <= 0 {
		errs = append(errs, errors.New("rpc.max_batch_requests must be positive"))
	}
	if c.RPC.MaxResponseBytes <= 0 || c.RPC.MaxBatchResponseBytes <= 0 || c.RPC.MaxResponseBytesInFlight <= 0 || c.RPC.WSQueueBytes <= 0 {
		errs = append(errs, errors.New("rpc.max_response_bytes, max_batch_response_bytes, max_response_bytes_in_flight and ws_queue_bytes must be positive"))
	}
	if c.RPC.MaxConnections <= 0 || c.RPC.MaxConnectionsPerClient <= 0 || c.RPC.MaxWebSockets <= 0 || c.RPC.MaxWebSocketsPerClient <= 0 ||
		c.RPC.RequestsPerSecondPerClient <= 0 || c.RPC.RequestBurstPerClient <= 0 {
		errs = append(errs, errors.New("rpc.max_open_connections, max_connections_per_client, max_websockets, max_websockets_per_client, "+
			"max_requests_per_second_per_client and request_burst_per_client must be positive"))
	}
	if c.RPC.ReadHeaderTimeout.Duration <= 0 || c.RPC.IdleTimeout.Duration <= 0 {
		errs = append(errs, errors.New("rpc.read_header_timeout and rpc.idle_timeout must be positive"))
	}
	for _, u := range c.RPC.UnlimitedClients {
		if _, err := netip.ParsePrefix(u); err != nil {
			if _, err := netip.ParseAddr(u); err != nil {
				errs = append(errs, fmt.Errorf("rpc.unlimited_clients: %q is neither an IP address nor a CIDR prefix", u))
			}
		}
	}
	if c.RPC.MaxResponseBytesInFlight < c.RPC.MaxResponseBytes {
		errs = append(errs, fmt.Errorf("rpc.max_response_bytes_in_flight (%d) is below rpc.max_response_bytes (%d): no answer of the largest size could be sent",
			c.RPC.MaxResponseBytesInFlight, c.RPC.MaxResponseBytes))
	}
	if c.P2P.MaxPeers <= 0 {
		errs = append(errs, errors.New("p2p.max_peers must be positive"))
	}
	if c.P2P.MaxPeersPerIP < 0 {
		errs = append(errs, errors.New("p2p.max_peers_per_ip must not be negative"))
	}
	if c.Mempool.MaxTxs <= 0 || c.Mempool.MaxBytes <= 0 || c.Mempool.MaxPerSender <= 0 {
		errs = append(errs, errors.New("mempool.max_txs, max_bytes and max_per_sender must be positive"))
	}
	switch c.Pruning.Strategy {
	case PruneDefault, PruneNothing, PruneEverything:
	case PruneCustom:
		if c.Pruning.KeepRecent < 2 {
			errs = append(errs, fmt.Errorf("pruning.keep_recent %d: the custom strategy keeps at least the last 2 heights' state", c.Pruning.KeepRecent))
		}
	default:
		errs = append(errs, fmt.Errorf("pruning.strategy %q: want default, nothing, everything or custom", c.Pruning.Strategy))
	}
	if c.Pruning.Interval == 0 {
		errs = append(errs, errors.New("pruning.interval must be positive"))
	}
	if c.StateSync.SnapshotKeepRecent < 1 {
		errs = append(errs, fmt.Errorf("statesync.snapshot_keep_recent %d: keep at least 1 snapshot", c.StateSync.SnapshotKeepRecent))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log_format %q: want text or json", c.LogFormat))
	}
	return errors.Join(errs...)
}

// WriteFile writes the configuration as a documented config.toml.
func (c *Config) WriteFile(path string) error {
	var buf bytes.Buffer
	if err := configTemplate.Execute(&buf, c); err != nil {
		return fmt.Errorf("render config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

var configTemplate = template.Must(template.New("config").Funcs(template.FuncMap{
	"list": func(xs []string) string {
		q := make([]string, len(xs))
		for i, x := range xs {
			q[i] = fmt.Sprintf("%q", x)
		}
		return "[" + strings.Join(q, ", ") + "]"
	},
}).Parse(`# ledgerd node configuration. Every option can also be set by a flag of
# "ledgerd start" (run "ledgerd start --help"); flags win over this file.

# A human-readable name for this node, shown in logs and status.
moniker = "{{.Moniker}}"
# debug, info, warn or error.
log_level = "{{.LogLevel}}"
# text or json.
log_format = "{{.LogFormat}}"

[rpc]
# Address of the JSON-RPC server (HTTP and WebSocket on one port). Loopback
# by default: expose it deliberately, behind a proxy, if at all.
laddr = "{{.RPC.ListenAddr}}"
# Largest request body accepted, in bytes.
max_body_bytes = {{.RPC.MaxBodyBytes}}
# Most requests in one JSON-RPC batch.
max_batch_requests = {{.RPC.MaxBatchRequests}}
# Most WebSocket subscriptions one connection may hold.
max_subscriptions_per_client = {{.RPC.MaxSubscriptions}}
# Most simultaneous HTTP/WebSocket connections. When full, the longest-idle
# keep-alive connection is closed for a new one; failing that the new one is
# refused at once (HTTP 503, -32013), never left waiting.
max_open_connections = {{.RPC.MaxConnections}}
# Most connections from one client (IP address): beyond it the client's own
# idle keep-alive is closed, or the new connection refused (HTTP 429, -32013).
max_connections_per_client = {{.RPC.MaxConnectionsPerClient}}
# Most open WebSockets on the node, and from one client (HTTP 503 / 429,
# -32013): WebSockets cannot take every slot from plain HTTP calls.
max_websockets = {{.RPC.MaxWebSockets}}
max_websockets_per_client = {{.RPC.MaxWebSocketsPerClient}}
# Calls per second from one client (each call of a batch counts), with bursts
# up to request_burst_per_client; calls beyond answer -32009 (rate_limited).
max_requests_per_second_per_client = {{.RPC.RequestsPerSecondPerClient}}
request_burst_per_client = {{.RPC.RequestBurstPerClient}}
# Addresses or CIDR prefixes exempt from the per-client limits (the node-wide
# caps still apply): the node's own host, where a TLS proxy or a load
# generator connects from. Behind a proxy every client shares its address.
unlimited_clients = {{list .RPC.UnlimitedClients}}
# How long a client may take to send a request's headers (slowloris guard),
# and how long an idle keep-alive connection stays open.
read_header_timeout = "{{.RPC.ReadHeaderTimeout}}"
idle_timeout = "{{.RPC.IdleTimeout}}"
# Largest answer to one call, in bytes; a larger one is refused with -32008
# (response_too_large). Must hold the largest block (ledger_getBlockByHeight).
max_response_bytes = {{.RPC.MaxResponseBytes}}
# Most bytes of answers in one batch (its first answer may take up to
# max_response_bytes); the calls after the budget is spent are not run and
# answer -32008.
max_batch_response_bytes = {{.RPC.MaxBatchResponseBytes}}
# Most bytes of answers built and not yet sent, across all clients; a call
# beyond it answers -32010 (overloaded, retry later).
max_response_bytes_in_flight = {{.RPC.MaxResponseBytesInFlight}}
# Most bytes waiting to be written to one WebSocket. A notification that does
# not fit drops the client (close 1008); an answer waits for room and the
# connection reads no further calls meanwhile.
ws_queue_bytes = {{.RPC.WSQueueBytes}}
# Origins allowed by CORS; empty disables CORS.
cors_allowed_origins = {{list .RPC.CORSAllowedOrigins}}
# Names the HTTP Host header may carry, like geth's --http.vhosts ("*" for
# any). A request naming another host is refused (403, -32011): a guard
# against DNS rebinding. Hosts given as IP addresses always pass. Add the
# DNS name clients use when you expose the node. Empty = localhost only.
vhosts = {{list .RPC.VirtualHosts}}
# Browser origins allowed to open a WebSocket, like geth's --ws.origins
# ("*" for any; "scheme://host" matches any port). Others are refused (403,
# -32012). cors_allowed_origins are allowed too. Empty = the localhost origins.
ws_origins = {{list .RPC.WSOrigins}}

[p2p]
# libp2p listen multiaddrs (TCP and QUIC).
listen_addrs = {{list .P2P.ListenAddrs}}
# Addresses to advertise to peers, when different from the listen ones.
external_addrs = {{list .P2P.ExternalAddrs}}
# Peers to stay connected to, redialled with backoff: /ip4/HOST/tcp/PORT/p2p/ID
persistent_peers = {{list .P2P.PersistentPeers}}
# Peers dialled once at start to join the network.
bootstrap_peers = {{list .P2P.BootstrapPeers}}
# Most connected peers.
max_peers = {{.P2P.MaxPeers}}
# Inbound peers admitted from one IP address (persistent peers are exempt).
max_peers_per_ip = {{.P2P.MaxPeersPerIP}}

[mempool]
# Most transactions held.
max_txs = {{.Mempool.MaxTxs}}
# Most bytes of transactions held.
max_bytes = {{.Mempool.MaxBytes}}
# Most pending transactions from one sender.
max_per_sender = {{.Mempool.MaxPerSender}}
# How long a transaction may wait before it is dropped.
ttl = "{{.Mempool.TTL}}"

[consensus]
# Propose blocks even when no transaction waits. When false, one empty block
# still follows every block that changed the state: its header carries (and so
# proves to light clients) the app hash of that state.
create_empty_blocks = {{.Consensus.CreateEmptyBlocks}}
# With create_empty_blocks = false, still propose an empty block after this
# long without transactions ("0s" = never).
create_empty_blocks_interval = "{{.Consensus.EmptyBlocksInterval}}"
# Before signing anything (at start and after each block sync), a validator
# looks for its own signatures in the commits of this many latest heights
# and refuses to validate if one is newer than its signing state
# (data/priv_validator_state.json) knows: that state was lost or restored
# from an old copy, or another node signs with this key. 0 disables it.
double_sign_check_height = {{.Consensus.DoubleSignCheckHeight}}

[pruning]
# Which heights' state (the account tree behind the app hash) the node keeps,
# for proofs at old heights (ledger_getAccount with a height and a proof):
#   default     the last 100000 heights
#   nothing     every height (the disk grows with every block)
#   everything  the last 2 heights only
#   custom      the last keep_recent heights (at least 2)
# A height whose state was pruned answers -32014 (pruned). Pruning runs in
# the background and never removes the state of a snapshot being written.
# Blocks are kept whatever the strategy.
strategy = "{{.Pruning.Strategy}}"
keep_recent = {{.Pruning.KeepRecent}}
# Prune every this many heights.
interval = {{.Pruning.Interval}}

[statesync]
# Take a snapshot of the state every this many heights (0 = never), in the
# background, into data/snapshots, and serve it to peers that join by state
# sync. While a snapshot is written, pruning keeps the state of its height.
snapshot_interval = {{.StateSync.SnapshotInterval}}
# How many of the latest snapshots to keep (at least 1).
snapshot_keep_recent = {{.StateSync.SnapshotKeepRecent}}
`))
