package chaos

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/internal/harness/localnet"
	"github.com/ledgerd/ledgerd/internal/testkit/netports"
	"github.com/ledgerd/ledgerd/node"
	"github.com/ledgerd/ledgerd/rpc/client"
)

// procCluster runs the nodes as ledgerd processes (internal/harness/localnet).
// With a netLab each runs in its own network namespace (started through a
// small wrapper script that enters it), listens on its namespace's address
// and is reached over RPC through that namespace; partitions are routing
// rules. Without one, every node listens on loopback and partitions are
// not available.
type procCluster struct {
	dir     string
	net     *localnet.Net
	lab     *netLab // nil: loopback, no partitions
	n       int
	base    int // loopback: node i uses ports base+2i (p2p) and base+2i+1 (RPC)
	clients []*client.Client
}

// ErrNoPartitions is returned by Partition on a network without
// namespaces.
var ErrNoPartitions = errors.New("partitions of processes need network namespaces (root and iproute2)")

const (
	nsP2PPort = 26656
	nsRPCAddr = "127.0.0.1:26657"
)

// newProcCluster generates the homes of a network in dir and prepares to
// run it with bin; nothing is started.
func newProcCluster(dir, bin string, useNetns bool, o node.TestnetOptions) (*procCluster, error) {
	c := &procCluster{dir: dir, n: o.Validators, clients: make([]*client.Client, o.Validators+1)}
	if useNetns {
		lab, err := newNetLab(o.Validators + 1)
		if err != nil {
			return nil, err
		}
		c.lab = lab
		wrapper := filepath.Join(dir, "ledgerd-in-netns")
		script := "#!/bin/sh\n# Written by ledgerd chaos: runs ledgerd in the network namespace named in\n" +
			"# HOME/netns, HOME being the argument after \"start --home\".\n" +
			"exec ip netns exec \"$(cat \"$3/netns\")\" " + shellQuote(bin) + " \"$@\"\n"
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			lab.Close()
			return nil, fmt.Errorf("netns wrapper: %w", err)
		}
		bin = wrapper
	} else {
		base, err := netports.Range(2 * (o.Validators + 1))
		if err != nil {
			return nil, fmt.Errorf("ports: %w", err)
		}
		c.base = base
		o.BasePort = base
	}
	ln, err := localnet.Generate(filepath.Join(dir, "net"), bin, o)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("generate network: %w", err)
	}
	c.net = ln
	if c.lab != nil {
		for i := range ln.Info.Nodes {
			ln.Info.Nodes[i].P2PAddr = fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", c.lab.IP(i), nsP2PPort, ln.Info.Nodes[i].PeerID)
			ln.Info.Nodes[i].RPCAddr = nsRPCAddr
		}
	}
	for i := range ln.Info.Nodes {
		cfg, err := node.LoadConfig(ln.Info.Nodes[i].Home)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.configure(i, cfg)
		if err := c.writeHome(i, cfg); err != nil {
			c.Close()
			return nil, err
		}
	}
	for i := range c.clients {
		if c.clients[i], err = c.newClient(i); err != nil {
			c.Close()
			return nil, err
		}
	}
	buf, _ := json.MarshalIndent(ln.Info, "", "  ")
	if err := os.WriteFile(filepath.Join(ln.Dir, "testnet.json"), append(buf, '\n'), 0o644); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// configure sets slot i's addresses and peers (every validator but itself).
func (c *procCluster) configure(i int, cfg *node.Config) {
	if c.lab != nil {
		cfg.P2P.ListenAddrs = []string{fmt.Sprintf("/ip4/%s/tcp/%d", c.lab.IP(i), nsP2PPort)}
		cfg.RPC.ListenAddr = nsRPCAddr
	} else {
		// TCP only: QUIC adds nothing on loopback.
		cfg.P2P.ListenAddrs = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", c.base+2*i)}
		cfg.RPC.ListenAddr = fmt.Sprintf("127.0.0.1:%d", c.base+2*i+1)
	}
	cfg.P2P.PersistentPeers = nil
	for j := 0; j < c.n; j++ {
		if j != i {
			cfg.P2P.PersistentPeers = append(cfg.P2P.PersistentPeers, c.net.Info.Nodes[j].P2PAddr)
		}
	}
}

// writeHome writes slot i's config and, in a namespace, the namespace's
// name for the wrapper.
func (c *procCluster) writeHome(i int, cfg *node.Config) error {
	if err := cfg.WriteFile(cfg.ConfigFile()); err != nil {
		return err
	}
	if c.lab == nil {
		return nil
	}
	return os.WriteFile(filepath.Join(cfg.Home, "netns"), []byte(c.lab.ns(i)), 0o644)
}

// newClient returns slot i's RPC client; every slot's, the twin's
// included, is made before anything runs and never changes.
func (c *procCluster) newClient(i int) (*client.Client, error) {
	if c.lab == nil {
		return client.New(fmt.Sprintf("http://127.0.0.1:%d", c.base+2*i+1))
	}
	path := c.lab.NSPath(i)
	hc := &http.Client{Transport: &http.Transport{
		DialContext:         dialInNetns(func() (string, error) { return path, nil }),
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}}
	return client.NewWithOptions([]string{"http://" + nsRPCAddr}, client.WithHTTPClient(hc))
}

func (c *procCluster) Validators() int             { return c.n }
func (c *procCluster) Client(i int) *client.Client { return c.clients[i] }
func (c *procCluster) Home(i int) string           { return c.net.Info.Nodes[i].Home }
func (c *procCluster) Start(i int) error           { return c.net.Start(i) }
func (c *procCluster) Kill(i int) error            { return c.net.Kill(i) }
func (c *procCluster) Pause(i int) error           { return c.net.Pause(i) }
func (c *procCluster) Resume(i int) error          { return c.net.Resume(i) }
func (c *procCluster) Logs(i, max int) string      { return c.net.Logs(i, max) }
func (c *procCluster) Partition(side []int) error {
	if c.lab == nil {
		return ErrNoPartitions
	}
	return c.lab.Partition(side, others(c, side))
}

func (c *procCluster) Heal() error {
	if c.lab == nil {
		return nil
	}
	return c.lab.Heal()
}

func (c *procCluster) AddTwin(of int) (int, error) {
	slot := c.n
	home := filepath.Join(c.net.Dir, "twin")
	cfg := node.DefaultConfig(home)
	cfg.Moniker = fmt.Sprintf("twin-of-node%d", of)
	c.configure(slot, cfg)
	// The twin dials every validator, its original included.
	cfg.P2P.PersistentPeers = nil
	for j := 0; j < c.n; j++ {
		cfg.P2P.PersistentPeers = append(cfg.P2P.PersistentPeers, c.net.Info.Nodes[j].P2PAddr)
	}
	if err := writeTwinHome(c.Home(of), home, cfg); err != nil {
		return 0, err
	}
	if err := c.writeHome(slot, cfg); err != nil {
		return 0, err
	}
	tn := node.TestnetNode{Home: home, Moniker: cfg.Moniker, Validator: true, RPCAddr: cfg.RPC.ListenAddr}
	if len(c.net.Info.Nodes) == slot {
		c.net.Info.Nodes = append(c.net.Info.Nodes, tn)
	} else {
		c.net.Info.Nodes[slot] = tn
	}
	return slot, nil
}

func (c *procCluster) Close() {
	if c.net != nil {
		c.net.StopAll()
	}
	if c.lab != nil {
		c.lab.Close()
	}
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
