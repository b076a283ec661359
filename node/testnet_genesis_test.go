package node

import (
	"testing"

	"github.com/ledgerd/ledgerd/genesis"
)

// TestTestnetNodesShareOneGenesis checks that every node of a generated
// testnet holds the same genesis document: peers compare its hash in the
// p2p handshake and refuse one another otherwise.
func TestTestnetNodesShareOneGenesis(t *testing.T) {
	tn, err := WriteTestnet(t.TempDir(), TestnetOptions{ChainID: "genesis-test", Validators: 3, FullNodes: 1, BasePort: 30000})
	if err != nil {
		t.Fatal(err)
	}
	var first *genesis.Doc
	for i, n := range tn.Nodes {
		cfg, err := LoadConfig(n.Home)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := genesis.Load(cfg.GenesisFile())
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = doc
			continue
		}
		if doc.Hash() != first.Hash() {
			t.Fatalf("node%d's genesis hash %s differs from node0's %s", i, doc.Hash(), first.Hash())
		}
	}
}
