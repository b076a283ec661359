package p2p

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// TestPersistentPeerReconnects closes a persistent peer and starts it again
// with the same key on the same port; the node redials it by itself, and
// gossip flows again.
func TestPersistentPeerReconnects(t *testing.T) {
	keyB := genKey(t)
	hb := newTestHandler(1, 0)
	b := startNodeKey(t, hb, testConfig(func(c *Config) { c.ListenAddrs = c.ListenAddrs[:1] }), keyB)
	addrB := addrOf(t, b, false)
	port, err := b.Addrs()[0].ValueForProtocol(multiaddr.P_TCP)
	if err != nil {
		t.Fatal(err)
	}
	a := startNode(t, newTestHandler(1, 0), testConfig(func(c *Config) { c.PersistentPeers = []string{addrB} }))
	ctx := waitCtx(t, 30*time.Second)
	waitConnectedness(t, ctx, a.host, b.ID(), true)

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitConnectedness(t, ctx, a.host, b.ID(), false)

	hb2 := newTestHandler(1, 0)
	b2 := startNodeKey(t, hb2, testConfig(func(c *Config) { c.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/" + port} }), keyB)
	if b2.ID() != b.ID() {
		t.Fatalf("restarted peer has ID %s, want %s", b2.ID(), b.ID())
	}
	waitAdmission(t, ctx, a, b.ID(), true)
	if !a.Peers()[0].Persistent {
		t.Error("peer not reported as persistent")
	}

	if err := a.WaitMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := b2.WaitMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}
	acct := getChain(t, 0, 0).c.Accounts
	tx := ledgertest.Transfer(acct[0], acct[1].PubKey().Address(), 1, 1, 0)
	if err := a.PublishTx(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if got := recvOne(t, ctx, hb2.txs, "tx after reconnect"); got.Hash() != tx.Hash() {
		t.Fatalf("got tx %s, want %s", got.Hash(), tx.Hash())
	}
}

func TestLoadOrGenNodeKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config", "node_key.json")
	k1, err := LoadOrGenNodeKey(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", perm)
	}
	k2, err := LoadOrGenNodeKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equals(k2) {
		t.Fatal("reloaded key differs")
	}

	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrGenNodeKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable key accepted: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}

	other := filepath.Join(dir, "other.json")
	if _, err := LoadOrGenNodeKey(other); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(other)
	// Keep the other key but claim the first key's ID.
	id1, _ := peer.IDFromPrivateKey(k1)
	forged := strings.Replace(string(raw), `"id": "`, `"id": "`+id1.String()+`x`, 1)
	if err := os.WriteFile(other, []byte(forged), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrGenNodeKey(other); err == nil {
		t.Fatal("key with a mismatched ID accepted")
	}
	if err := os.WriteFile(other, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrGenNodeKey(other); err == nil {
		t.Fatal("corrupt key file accepted")
	}
}

func TestConfigValidation(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"empty chain ID":     func(c *Config) { c.ChainID = "" },
		"bad listen address": func(c *Config) { c.ListenAddrs = []string{"not-a-multiaddr"} },
		"tiny messages":      func(c *Config) { c.MaxMessageBytes = 1024 },
		"backoff inverted":   func(c *Config) { c.ReconnectBackoffMin, c.ReconnectBackoffMax = time.Minute, time.Second },
		"huge sync batch":    func(c *Config) { c.Sync.BatchSize = MaxSyncBatch + 1 },
		"no genesis hash":    func(c *Config) { c.GenesisHash = crypto.Hash{} },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig(testChainID)
			cfg.GenesisHash = testGenesis
			mut(&cfg)
			cfg.setDefaults()
			if err := cfg.validate(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	cfg := DefaultConfig(testChainID)
	cfg.GenesisHash = testGenesis
	if err := cfg.validate(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	if _, err := New(t.Context(), testConfig(func(c *Config) { c.PersistentPeers = []string{"/ip4/127.0.0.1/tcp/1"} }), genKey(t), newTestHandler(1, 0), staticSets{getChain(t, 0, 0).vals}); err == nil {
		t.Fatal("persistent peer without /p2p/ID accepted")
	}
}
