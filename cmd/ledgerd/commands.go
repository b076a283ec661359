package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/ledgerd/ledgerd/node"
	"github.com/ledgerd/ledgerd/p2p"
	"github.com/ledgerd/ledgerd/privval"
	"github.com/libp2p/go-libp2p/core/peer"
)

func runInit(args []string, stdout io.Writer) error {
	fs, home := newFlagSet("init")
	chainID := fs.String("chain-id", "ledgerd-local", "chain ID of the new chain")
	moniker := fs.String("moniker", "", "node name (default: the host name)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := node.InitHome(*home, node.InitOptions{ChainID: *chainID, Moniker: *moniker})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "initialised %s\n  config:  %s\n  genesis: %s\n  validator key: %s (0600)\n",
		*home, cfg.ConfigFile(), cfg.GenesisFile(), cfg.ValidatorKeyFile())
	return nil
}

// startFlags registers one flag per config option; apply copies the flags
// the user set onto a loaded config, so flags win over the file.
type startFlags struct {
	fs      *flag.FlagSet
	setters map[string]func(*node.Config)
}

func newStartFlags(fs *flag.FlagSet) *startFlags {
	sf := &startFlags{fs: fs, setters: map[string]func(*node.Config){}}
	def := node.DefaultConfig("")
	str := func(name, usage, d string, set func(*node.Config, string)) {
		v := fs.String(name, d, usage)
		sf.setters[name] = func(c *node.Config) { set(c, *v) }
	}
	num := func(name, usage string, d int, set func(*node.Config, int)) {
		v := fs.Int(name, d, usage)
		sf.setters[name] = func(c *node.Config) { set(c, *v) }
	}
	list := func(name, usage string, set func(*node.Config, []string)) {
		var v stringList
		fs.Var(&v, name, usage+" (comma-separated)")
		sf.setters[name] = func(c *node.Config) { set(c, v) }
	}
	dur := func(name, usage string, d node.Duration, set func(*node.Config, node.Duration)) {
		v := fs.Duration(name, d.Duration, usage)
		sf.setters[name] = func(c *node.Config) { set(c, node.Duration{Duration: *v}) }
	}
	str("moniker", "node name", def.Moniker, func(c *node.Config, s string) { c.Moniker = s })
	str("log-level", "debug, info, warn or error", def.LogLevel, func(c *node.Config, s string) { c.LogLevel = s })
	str("log-format", "text or json", def.LogFormat, func(c *node.Config, s string) { c.LogFormat = s })
	str("rpc-addr", "JSON-RPC listen address HOST:PORT", def.RPC.ListenAddr, func(c *node.Config, s string) { c.RPC.ListenAddr = s })
	num("rpc.max-body-bytes", "largest RPC request body", int(def.RPC.MaxBodyBytes), func(c *node.Config, v int) { c.RPC.MaxBodyBytes = int64(v) })
	num("rpc.max-batch-requests", "most requests in one JSON-RPC batch", def.RPC.MaxBatchRequests, func(c *node.Config, v int) { c.RPC.MaxBatchRequests = v })
	num("rpc.max-subscriptions", "most WebSocket subscriptions per connection", def.RPC.MaxSubscriptions, func(c *node.Config, v int) { c.RPC.MaxSubscriptions = v })
	num("rpc.max-connections", "most simultaneous RPC connections", def.RPC.MaxConnections, func(c *node.Config, v int) { c.RPC.MaxConnections = v })
	list("rpc.cors-origins", "origins allowed by CORS", func(c *node.Config, v []string) { c.RPC.CORSAllowedOrigins = v })
	num("rpc.max-connections-per-client", "most RPC connections from one IP address", def.RPC.MaxConnectionsPerClient, func(c *node.Config, v int) { c.RPC.MaxConnectionsPerClient = v })
	num("rpc.max-websockets", "most open WebSockets", def.RPC.MaxWebSockets, func(c *node.Config, v int) { c.RPC.MaxWebSockets = v })
	num("rpc.max-websockets-per-client", "most open WebSockets from one IP address", def.RPC.MaxWebSocketsPerClient, func(c *node.Config, v int) { c.RPC.MaxWebSocketsPerClient = v })
	num("rpc.max-requests-per-second-per-client", "RPC calls per second from one IP address", int(def.RPC.RequestsPerSecondPerClient), func(c *node.Config, v int) { c.RPC.RequestsPerSecondPerClient = float64(v) })
	num("rpc.request-burst-per-client", "RPC call burst from one IP address", def.RPC.RequestBurstPerClient, func(c *node.Config, v int) { c.RPC.RequestBurstPerClient = v })
	list("rpc.unlimited-clients", "addresses or CIDR prefixes exempt from the per-client RPC limits", func(c *node.Config, v []string) { c.RPC.UnlimitedClients = v })
	dur("rpc.read-header-timeout", "how long an RPC client may take to send its headers", def.RPC.ReadHeaderTimeout, func(c *node.Config, v node.Duration) { c.RPC.ReadHeaderTimeout = v })
	dur("rpc.idle-timeout", "how long an idle RPC keep-alive connection stays open", def.RPC.IdleTimeout, func(c *node.Config, v node.Duration) { c.RPC.IdleTimeout = v })
	num("rpc.max-response-bytes", "largest answer to one RPC call", int(def.RPC.MaxResponseBytes), func(c *node.Config, v int) { c.RPC.MaxResponseBytes = int64(v) })
	num("rpc.max-batch-response-bytes", "most answer bytes of one RPC batch", int(def.RPC.MaxBatchResponseBytes), func(c *node.Config, v int) { c.RPC.MaxBatchResponseBytes = int64(v) })
	num("rpc.max-response-bytes-in-flight", "most RPC answer bytes built and not yet sent", int(def.RPC.MaxResponseBytesInFlight), func(c *node.Config, v int) { c.RPC.MaxResponseBytesInFlight = int64(v) })
	num("rpc.ws-queue-bytes", "most bytes waiting to be written to one WebSocket", int(def.RPC.WSQueueBytes), func(c *node.Config, v int) { c.RPC.WSQueueBytes = int64(v) })
	list("rpc.vhosts", "host names the RPC answers to (\"*\" for any; IP addresses always pass)", func(c *node.Config, v []string) { c.RPC.VirtualHosts = v })
	list("rpc.ws-origins", "browser origins allowed to open a WebSocket (\"*\" for any)", func(c *node.Config, v []string) { c.RPC.WSOrigins = v })
	list("p2p.laddr", "libp2p listen multiaddrs", func(c *node.Config, v []string) { c.P2P.ListenAddrs = v })
	list("p2p.external-addrs", "multiaddrs advertised to peers", func(c *node.Config, v []string) { c.P2P.ExternalAddrs = v })
	list("p2p.persistent-peers", "peers kept connected", func(c *node.Config, v []string) { c.P2P.PersistentPeers = v })
	list("p2p.bootstrap-peers", "peers dialled at start", func(c *node.Config, v []string) { c.P2P.BootstrapPeers = v })
	num("p2p.max-peers", "most connected peers", def.P2P.MaxPeers, func(c *node.Config, v int) { c.P2P.MaxPeers = v })
	num("mempool.max-txs", "most pooled transactions", def.Mempool.MaxTxs, func(c *node.Config, v int) { c.Mempool.MaxTxs = v })
	num("mempool.max-bytes", "most pooled bytes", def.Mempool.MaxBytes, func(c *node.Config, v int) { c.Mempool.MaxBytes = v })
	num("mempool.max-per-sender", "most pooled transactions per sender", def.Mempool.MaxPerSender, func(c *node.Config, v int) { c.Mempool.MaxPerSender = v })
	dur("mempool.ttl", "how long a transaction may wait", def.Mempool.TTL, func(c *node.Config, v node.Duration) { c.Mempool.TTL = v })
	b := fs.Bool("consensus.create-empty-blocks", def.Consensus.CreateEmptyBlocks, "propose blocks with no transactions waiting")
	sf.setters["consensus.create-empty-blocks"] = func(c *node.Config) { c.Consensus.CreateEmptyBlocks = *b }
	dur("consensus.empty-blocks-interval", "with empty blocks off, still propose after this long (0 = never)", def.Consensus.EmptyBlocksInterval,
		func(c *node.Config, v node.Duration) { c.Consensus.EmptyBlocksInterval = v })
	dsc := fs.Uint64("consensus.double-sign-check-height", def.Consensus.DoubleSignCheckHeight,
		"heights whose commits a validator searches for its own signatures before signing (0 = off)")
	sf.setters["consensus.double-sign-check-height"] = func(c *node.Config) { c.Consensus.DoubleSignCheckHeight = *dsc }
	ps := fs.String("pruning", def.Pruning.Strategy, "which heights' state to keep: default (the last 100000), nothing (all), everything (the last 2) or custom")
	sf.setters["pruning"] = func(c *node.Config) { c.Pruning.Strategy = *ps }
	pk := fs.Uint64("pruning.keep-recent", def.Pruning.KeepRecent, "with --pruning custom: how many of the latest heights' state to keep (at least 2)")
	sf.setters["pruning.keep-recent"] = func(c *node.Config) { c.Pruning.KeepRecent = *pk }
	pi := fs.Uint64("pruning.interval", def.Pruning.Interval, "prune every this many heights")
	sf.setters["pruning.interval"] = func(c *node.Config) { c.Pruning.Interval = *pi }
	si := fs.Uint64("statesync.snapshot-interval", def.StateSync.SnapshotInterval, "take a state snapshot every this many heights (0 = never)")
	sf.setters["statesync.snapshot-interval"] = func(c *node.Config) { c.StateSync.SnapshotInterval = *si }
	num("statesync.snapshot-keep-recent", "how many of the latest state snapshots to keep", def.StateSync.SnapshotKeepRecent,
		func(c *node.Config, v int) { c.StateSync.SnapshotKeepRecent = v })
	return sf
}

func (sf *startFlags) apply(c *node.Config) {
	sf.fs.Visit(func(f *flag.Flag) {
		if set, ok := sf.setters[f.Name]; ok {
			set(c)
		}
	})
}

func runStart(args []string, stdout io.Writer) error {
	fs, home := newFlagSet("start")
	sf := newStartFlags(fs)
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the node to this file (relative to --home) until it stops")
	if err := fs.Parse(args); err != nil {
		return err
	}
	lock, err := node.LockHome(*home)
	if err != nil {
		return err
	}
	defer lock.Release()
	cfg, err := node.LoadConfig(*home)
	if err != nil {
		return err
	}
	sf.apply(cfg)
	if err := cfg.Validate(); err != nil {
		return err
	}
	if *cpuprofile != "" {
		path := *cpuprofile
		if !filepath.IsAbs(path) {
			path = filepath.Join(*home, path)
		}
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	return runNode(cfg, stdout)
}

// runNode runs the node until SIGINT or SIGTERM.
func runNode(cfg *node.Config, stdout io.Writer) error {
	log := newLogger(cfg, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.New(cfg, node.Options{Logger: log})
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		n.Stop()
		return err
	}
	select {
	case <-ctx.Done():
		log.Info("signal received; shutting down")
	case <-n.Done():
	}
	return n.Stop()
}

func newLogger(cfg *node.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func runDev(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ledgerd dev", flag.ContinueOnError)
	defHome := os.Getenv("LEDGERD_HOME")
	if defHome == "" {
		if d, err := os.UserHomeDir(); err == nil {
			defHome = filepath.Join(d, ".ledgerd-dev")
		}
	}
	home := fs.String("home", defHome, "dev chain home directory (reused if it exists)")
	sf := newStartFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Before anything is printed or written: a second dev node on the same
	// home must not print the dev key and then fail on the database lock.
	lock, err := node.LockHome(*home)
	if err != nil {
		return err
	}
	defer lock.Release()
	cfg, devKey, err := node.InitDevHome(*home)
	if err != nil {
		return err
	}
	sf.apply(cfg)
	if err := cfg.Validate(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, `ledgerd dev chain
  home:         %s
  chain ID:     %s
  RPC:          http://%s
  dev account:  %s
  private key:  %s  (also in %s, mode 0600)
  A block is made as soon as a transaction waits. Stop with Ctrl-C; run again to resume.
`, *home, node.DevChainID, cfg.RPC.ListenAddr, devKey.PubKey().Address(), hex.EncodeToString(devKey.Seed()), cfg.DevAccountKeyFile())
	return runNode(cfg, stdout)
}

func runTestnet(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ledgerd testnet", flag.ContinueOnError)
	out := fs.String("output", "./testnet", "directory for the node homes")
	vals := fs.Int("validators", 4, "number of validators")
	full := fs.Int("full-nodes", 0, "number of non-validating nodes")
	accounts := fs.Int("accounts", 4, "number of funded accounts")
	balance := fs.Uint64("balance", node.DevBalance, "balance of each funded account")
	chainID := fs.String("chain-id", "ledgerd-testnet", "chain ID")
	host := fs.String("host", "127.0.0.1", "IP the nodes listen on and dial")
	port := fs.Int("base-port", 26656, "first port; node i uses base+2i (p2p) and base+2i+1 (RPC)")
	var hostnames stringList
	fs.Var(&hostnames, "hostnames", "per-node host names for containers (comma-separated; all nodes then use base-port)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tn, err := node.WriteTestnet(*out, node.TestnetOptions{
		ChainID: *chainID, Validators: *vals, FullNodes: *full, FundedAccounts: *accounts, Balance: *balance,
		Host: *host, Hostnames: hostnames, BasePort: *port,
	})
	if err != nil {
		return err
	}
	buf, _ := json.MarshalIndent(tn, "", "  ")
	if err := os.WriteFile(filepath.Join(*out, "testnet.json"), append(buf, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d node homes to %s (summary in %s)\n", len(tn.Nodes), *out, filepath.Join(*out, "testnet.json"))
	return nil
}

func runShowNodeID(args []string, stdout io.Writer) error {
	fs, home := newFlagSet("show-node-id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := node.DefaultConfig(*home)
	if _, err := os.Stat(cfg.NodeKeyFile()); err != nil {
		return fmt.Errorf("no node key at %s (run ledgerd init): %w", cfg.NodeKeyFile(), err)
	}
	k, err := p2p.LoadOrGenNodeKey(cfg.NodeKeyFile())
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, id)
	return nil
}

func runShowValidator(args []string, stdout io.Writer) error {
	fs, home := newFlagSet("show-validator")
	if err := fs.Parse(args); err != nil {
		return err
	}
	k, err := privval.LoadKeyFile(node.DefaultConfig(*home).ValidatorKeyFile())
	if err != nil {
		return err
	}
	out, _ := json.MarshalIndent(map[string]any{"address": k.PubKey().Address(), "pub_key": k.PubKey()}, "", "  ")
	fmt.Fprintln(stdout, string(out))
	return nil
}

func runVersion(args []string, stdout io.Writer) error {
	fmt.Fprintf(stdout, "ledgerd %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

func runReset(args []string, stdout io.Writer) error {
	fs, home := newFlagSet("reset")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	all := fs.Bool("signing-state", false, "also forget the validator's last-signed state (risks double signing if the chain is live)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	lock, err := node.LockHome(*home)
	if err != nil {
		return err
	}
	defer lock.Release()
	cfg := node.DefaultConfig(*home)
	targets := []string{cfg.LedgerDBDir(), cfg.WALDir()}
	if *all {
		targets = append(targets, cfg.ValidatorStateFile())
	}
	fmt.Fprintf(stdout, "This deletes the chain data of %s:\n  %s\nKeys, config and genesis are kept.\n", *home, strings.Join(targets, "\n  "))
	if !*all {
		fmt.Fprintln(stdout, "The validator's last-signed state is kept, so it cannot double-sign after resyncing.")
	}
	if !*yes {
		fmt.Fprint(stdout, "Type 'yes' to continue: ")
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if strings.TrimSpace(line) != "yes" {
			return errors.New("reset cancelled")
		}
	}
	for _, t := range targets {
		if err := os.RemoveAll(t); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, "reset done")
	return nil
}
