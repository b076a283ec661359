package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/staking"
	"github.com/ledgerd/ledgerd/p2p"
	"github.com/ledgerd/ledgerd/privval"
	"github.com/libp2p/go-libp2p/core/peer"
)

// DevChainID is the chain ID of `ledgerd dev` chains.
const DevChainID = "ledgerd-dev"

// DevBalance is what the dev account holds at genesis.
const DevBalance = 1_000_000_000_000

// DevAccountKeyFile is where `ledgerd dev` keeps the funded account's key.
func (c *Config) DevAccountKeyFile() string {
	return filepath.Join(c.ConfigDir(), "dev_account_key.json")
}

// InitOptions shape a new home made by InitHome.
type InitOptions struct {
	ChainID string
	Moniker string
	// Genesis, when set, is written instead of a generated one-validator genesis.
	Genesis *genesis.Doc
	// ValidatorKey, when set, is written as the validator key instead of a new one.
	ValidatorKey *crypto.PrivKey
	// Config, when set, is written instead of the defaults.
	Config *Config
}

// InitHome creates a node home: config.toml, the node's libp2p key, the
// validator key (0600) and genesis.json. Files that already exist are kept,
// so running it twice is harmless. Without an explicit genesis it writes a
// single-validator genesis in which the validator's own address holds the
// initial supply (operators replace it for a real network).
func InitHome(home string, o InitOptions) (*Config, error) {
	cfg := o.Config
	if cfg == nil {
		cfg = DefaultConfig(home)
	}
	cfg.Home = home
	if o.Moniker != "" {
		cfg.Moniker = o.Moniker
	}
	for _, d := range []string{cfg.ConfigDir(), cfg.DataDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	if !exists(cfg.ConfigFile()) {
		if err := cfg.WriteFile(cfg.ConfigFile()); err != nil {
			return nil, err
		}
	}
	if _, err := p2p.LoadOrGenNodeKey(cfg.NodeKeyFile()); err != nil {
		return nil, err
	}
	var valKey crypto.PrivKey
	var err error
	if o.ValidatorKey != nil && !exists(cfg.ValidatorKeyFile()) {
		valKey = *o.ValidatorKey
		err = privval.WriteKeyFile(cfg.ValidatorKeyFile(), valKey)
	} else {
		valKey, err = privval.LoadOrGenKeyFile(cfg.ValidatorKeyFile())
	}
	if err != nil {
		return nil, err
	}
	if !exists(cfg.GenesisFile()) {
		doc := o.Genesis
		if doc == nil {
			chainID := o.ChainID
			if chainID == "" {
				chainID = "ledgerd-local"
			}
			doc = genesis.DevDoc(chainID, valKey.PubKey(), valKey.PubKey().Address(), DevBalance, time.Now().UTC().Truncate(time.Second))
			doc.Validators[0].Name = cfg.Moniker
		}
		if err := doc.Save(cfg.GenesisFile()); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// InitDevHome prepares the home of a single-validator dev chain: a home
// (see InitHome) whose genesis funds a dev account, whose key is kept in
// the config directory (0600) and returned. Proposers wait for a
// transaction before making a block, and the node listens on loopback only.
// An existing dev home is reused as it is.
func InitDevHome(home string) (*Config, crypto.PrivKey, error) {
	cfg := DefaultConfig(home)
	cfg.Moniker = "dev"
	cfg.Consensus.CreateEmptyBlocks = false
	cfg.P2P.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/26656"}
	if err := os.MkdirAll(cfg.ConfigDir(), 0o700); err != nil {
		return nil, crypto.PrivKey{}, err
	}
	devKey, err := privval.LoadOrGenKeyFile(cfg.DevAccountKeyFile())
	if err != nil {
		return nil, crypto.PrivKey{}, fmt.Errorf("dev account key: %w", err)
	}
	valKey, err := privval.LoadOrGenKeyFile(cfg.ValidatorKeyFile())
	if err != nil {
		return nil, crypto.PrivKey{}, err
	}
	var doc *genesis.Doc
	if !exists(cfg.GenesisFile()) {
		doc = genesis.DevDoc(DevChainID, valKey.PubKey(), devKey.PubKey().Address(), DevBalance, time.Now().UTC().Truncate(time.Second))
		doc.Params.TimeoutCommit = ledger.Duration(10 * time.Millisecond)
		doc.Validators[0].Name = "dev"
	}
	cfg, err = InitHome(home, InitOptions{Genesis: doc, Config: cfg})
	if err != nil {
		return nil, crypto.PrivKey{}, err
	}
	loaded, err := LoadConfig(home)
	if err != nil {
		return nil, crypto.PrivKey{}, err
	}
	return loaded, devKey, nil
}

// TestnetOptions shape the homes made by WriteTestnet.
type TestnetOptions struct {
	ChainID        string
	Validators     int
	FullNodes      int
	FundedAccounts int
	Balance        uint64
	// Host is the IP every node listens on and dials (default 127.0.0.1).
	// With Hostnames set, node i is dialled at Hostnames[i] instead (for
	// containers) and listens on all interfaces.
	Host      string
	Hostnames []string
	// BasePort: node i uses P2P port BasePort+2i and RPC port BasePort+2i+1,
	// unless Hostnames is set, where every node uses BasePort and BasePort+1.
	BasePort int
	Params   *ledger.ConsensusParams
	// Staking are the genesis staking parameters; nil means
	// staking.DefaultParams().
	Staking *staking.Params
}

// TestnetNode describes one generated home.
type TestnetNode struct {
	Home      string `json:"home"`
	Moniker   string `json:"moniker"`
	Validator bool   `json:"validator"`
	PeerID    string `json:"peer_id"`
	P2PAddr   string `json:"p2p_addr"`
	RPCAddr   string `json:"rpc_addr"`
}

// Testnet is what WriteTestnet produced.
type Testnet struct {
	ChainID  string           `json:"chain_id"`
	Nodes    []TestnetNode    `json:"nodes"`
	Accounts []crypto.Address `json:"accounts"`
}

// WriteTestnet generates a home per node under outDir (node0, node1, …):
// validators first, then full nodes, sharing one genesis with funded
// accounts, each listing every other node as a persistent peer on distinct
// ports. The funded accounts' keys are written to outDir/accounts/ (0600).
func WriteTestnet(outDir string, o TestnetOptions) (*Testnet, error) {
	if o.Validators < 1 {
		return nil, errors.New("testnet: at least one validator")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.BasePort == 0 {
		o.BasePort = 26656
	}
	if o.FundedAccounts == 0 {
		o.FundedAccounts = 1
	}
	if o.Balance == 0 {
		o.Balance = DevBalance
	}
	if o.Hostnames != nil && len(o.Hostnames) != o.Validators+o.FullNodes {
		return nil, fmt.Errorf("testnet: %d hostnames for %d nodes", len(o.Hostnames), o.Validators+o.FullNodes)
	}
	total := o.Validators + o.FullNodes
	monikers := make([]string, total)
	for i := range monikers {
		monikers[i] = fmt.Sprintf("node%d", i)
	}
	// The validators are named after their nodes in the genesis itself, so
	// the one document every home gets is complete before the first is
	// written: operators compare genesis files by hash.
	tn, err := genesis.GenerateTestnet(genesis.TestnetSpec{
		ChainID:        o.ChainID,
		Validators:     o.Validators,
		Names:          monikers[:o.Validators],
		FundedAccounts: o.FundedAccounts,
		Balance:        o.Balance,
		GenesisTime:    time.Now().UTC().Truncate(time.Second),
		Params:         o.Params,
		Staking:        o.Staking,
	})
	if err != nil {
		return nil, err
	}
	out := &Testnet{ChainID: tn.Doc.ChainID}
	cfgs := make([]*Config, total)
	for i := 0; i < total; i++ {
		home := filepath.Join(outDir, fmt.Sprintf("node%d", i))
		cfg := DefaultConfig(home)
		cfg.Moniker = monikers[i]
		p2pPort, rpcPort := o.BasePort+2*i, o.BasePort+2*i+1
		listenHost, dialHost := o.Host, o.Host
		if o.Hostnames != nil {
			p2pPort, rpcPort = o.BasePort, o.BasePort+1
			listenHost, dialHost = "0.0.0.0", o.Hostnames[i]
		}
		cfg.P2P.ListenAddrs = []string{fmt.Sprintf("/ip4/%s/tcp/%d", listenHost, p2pPort), fmt.Sprintf("/ip4/%s/udp/%d/quic-v1", listenHost, p2pPort)}
		cfg.RPC.ListenAddr = fmt.Sprintf("%s:%d", listenHost, rpcPort)
		var valKey *crypto.PrivKey
		if i < o.Validators {
			valKey = &tn.ValidatorKeys[i]
		}
		if _, err := InitHome(home, InitOptions{Genesis: tn.Doc, ValidatorKey: valKey, Config: cfg}); err != nil {
			return nil, fmt.Errorf("node%d: %w", i, err)
		}
		nk, err := p2p.LoadOrGenNodeKey(cfg.NodeKeyFile())
		if err != nil {
			return nil, err
		}
		id, err := peer.IDFromPrivateKey(nk)
		if err != nil {
			return nil, err
		}
		proto := "ip4"
		if o.Hostnames != nil {
			proto = "dns4"
		}
		out.Nodes = append(out.Nodes, TestnetNode{
			Home: home, Moniker: cfg.Moniker, Validator: i < o.Validators, PeerID: id.String(),
			P2PAddr: fmt.Sprintf("/%s/%s/tcp/%d/p2p/%s", proto, dialHost, p2pPort, id),
			RPCAddr: fmt.Sprintf("%s:%d", dialHost, rpcPort),
		})
		cfgs[i] = cfg
	}
	// Every node keeps every other as a persistent peer.
	for i, cfg := range cfgs {
		cfg.P2P.PersistentPeers = cfg.P2P.PersistentPeers[:0]
		for j, n := range out.Nodes {
			if j != i {
				cfg.P2P.PersistentPeers = append(cfg.P2P.PersistentPeers, n.P2PAddr)
			}
		}
		if err := cfg.WriteFile(cfg.ConfigFile()); err != nil {
			return nil, err
		}
	}
	accDir := filepath.Join(outDir, "accounts")
	for i, k := range tn.AccountKeys {
		if err := privval.WriteKeyFile(filepath.Join(accDir, fmt.Sprintf("account%d.json", i)), k); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		out.Accounts = append(out.Accounts, k.PubKey().Address())
	}
	return out, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
