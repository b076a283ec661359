package node

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// TestSnapshotPrioritiesSurviveARestart checks that the proposer
// priorities recorded with each snapshot are written beside it, removed
// with it, and read back after a restart; a stray file of a snapshot not
// held is removed at start and a damaged one is left out.
func TestSnapshotPrioritiesSurviveARestart(t *testing.T) {
	mutate := func(c *Config) { c.StateSync.SnapshotInterval, c.StateSync.SnapshotKeepRecent = 5, 2 }
	w := startTestnet(t, 1, mutate)
	nd := w.nodes[0]
	waitFor(t, nd, time.Minute, func() bool {
		hs := snapshotHeights(nd)
		if len(hs) != 2 || hs[0] < 10 {
			return false
		}
		_, ok0 := nd.snapshots.priorities(hs[0])
		_, ok1 := nd.snapshots.priorities(hs[1])
		return ok0 && ok1
	}, func() string { return "snapshots: " + fmtHeights(snapshotHeights(nd)) })
	if err := nd.Stop(); err != nil {
		t.Fatal(err)
	}
	hs := snapshotHeights(nd)
	want := map[uint64][]byte{}
	for _, h := range hs {
		p, _ := nd.snapshots.priorities(h)
		want[h] = p.Encode()
	}
	dir := nd.cfg.SnapshotsDir()
	files, _ := filepath.Glob(filepath.Join(dir, "*"+prioritiesSuffix))
	if len(files) != len(hs) {
		t.Fatalf("priorities files %v for snapshots %v", files, hs)
	}
	if err := os.WriteFile(filepath.Join(dir, "5"+prioritiesSuffix), []byte("stray"), 0o600); err != nil {
		t.Fatal(err)
	}
	damaged := nd.snapshots.prioritiesFile(hs[0])
	if err := os.WriteFile(damaged, []byte{1, 2, 3}, 0o600); err != nil {
		t.Fatal(err)
	}

	// Snapshots off: those held are still served, with their priorities.
	w.start(0, func(c *Config) { mutate(c); c.StateSync.SnapshotInterval = 0 })
	nd = w.nodes[0]
	if _, err := os.Stat(filepath.Join(dir, "5"+prioritiesSuffix)); !os.IsNotExist(err) {
		t.Fatalf("the stray priorities file is still there: %v", err)
	}
	if _, ok := nd.snapshots.priorities(hs[0]); ok {
		t.Fatal("damaged priorities file read back")
	}
	got, ok := nd.snapshots.priorities(hs[1])
	if !ok || !bytes.Equal(got.Encode(), want[hs[1]]) {
		t.Fatalf("priorities of the snapshot at %d after a restart: %v", hs[1], ok)
	}
}

func FuzzDecodeSnapshotPriorities(f *testing.F) {
	var vals []ledger.Validator
	for i := range 3 {
		vals = append(vals, ledger.Validator{PubKey: ledgertest.GoldenPub(byte(i * 40)), Power: uint64(10 + i)})
	}
	set, err := ledger.NewValidatorSet(vals)
	if err != nil {
		f.Fatal(err)
	}
	p := ledger.GenesisPriorities(set).Next(set)
	f.Add(p.Encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeSnapshotPriorities(b, set)
		if err != nil {
			return
		}
		if !bytes.Equal(got.Encode(), b) {
			t.Fatalf("decoded priorities re-encode to other bytes")
		}
	})
}
