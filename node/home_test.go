package node

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ledgerd/ledgerd/genesis"
)

// Operators compare genesis files by their sha256: every home WriteTestnet
// writes, validator or full node, must hold the very same bytes, and the
// validators keep the names of the nodes that run them.
func TestWriteTestnetGenesisFilesAreByteIdentical(t *testing.T) {
	dir := t.TempDir()
	tn, err := WriteTestnet(dir, TestnetOptions{ChainID: "same-genesis", Validators: 4, FullNodes: 2, FundedAccounts: 3})
	if err != nil {
		t.Fatal(err)
	}
	var first [sha256.Size]byte
	for i, n := range tn.Nodes {
		cfg := DefaultConfig(n.Home)
		b, err := os.ReadFile(cfg.GenesisFile())
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if i == 0 {
			first = sum
			continue
		}
		if sum != first {
			t.Errorf("%s: genesis sha256 %x, %s has %x", filepath.Base(n.Home), sum, filepath.Base(tn.Nodes[0].Home), first)
		}
	}
	doc, err := genesis.Load(DefaultConfig(tn.Nodes[0].Home).GenesisFile())
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Validators) != 4 {
		t.Fatalf("%d validators in the genesis, want 4", len(doc.Validators))
	}
	for i, v := range doc.Validators {
		if want := fmt.Sprintf("node%d", i); v.Name != want || tn.Nodes[i].Moniker != want {
			t.Errorf("validator %d is named %q, its node %q; want %q", i, v.Name, tn.Nodes[i].Moniker, want)
		}
	}
}
