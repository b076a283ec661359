package e2e

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ledgerd/ledgerd/node"
)

// `ledgerd testnet` gives every node the same genesis.json, byte for byte:
// operators compare genesis files by sha256.
func TestTestnetCommandWritesOneGenesis(t *testing.T) {
	bin := ledgerdBinary(t)
	out := filepath.Join(t.TempDir(), "net")
	cmd := exec.Command(bin, "testnet", "--validators", "4", "--full-nodes", "1", "--output", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ledgerd testnet: %v\n%s", err, b)
	}
	sums := map[[sha256.Size]byte][]string{}
	for i := 0; i < 5; i++ {
		home := filepath.Join(out, fmt.Sprintf("node%d", i))
		b, err := os.ReadFile(node.DefaultConfig(home).GenesisFile())
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		sums[s] = append(sums[s], filepath.Base(home))
	}
	if len(sums) != 1 {
		for s, homes := range sums {
			t.Errorf("sha256 %x: %v", s, homes)
		}
		t.Fatalf("%d different genesis files among 5 homes, want 1", len(sums))
	}
}
