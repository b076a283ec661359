package node

import (
	"context"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/consensus/wal"
)

// TestRestartInAHeightItProposesGoesOn: a validator that stopped in a
// height in which it was a proposer replays a value request from its
// write-ahead log; the driver answers it after the replay. That answer must
// be stepped like any other event: before, it was left queued outside the
// drain loop, every later event queued behind it and none was stepped, so
// the node never decided again unless block sync replaced its machine (and
// a network restarted as a whole, with nobody ahead, stayed halted). The
// WAL here holds the start of height 1 of a one-validator chain, whose
// every round the node proposes.
func TestRestartInAHeightItProposesGoesOn(t *testing.T) {
	tn, err := WriteTestnet(t.TempDir(), TestnetOptions{ChainID: "node-test", Validators: 1, FundedAccounts: 1,
		Balance: 1_000_000, BasePort: freeBasePort(t, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(tn.Nodes[0].Home)
	if err != nil {
		t.Fatal(err)
	}
	cfg.P2P.ListenAddrs = cfg.P2P.ListenAddrs[:1]
	log, err := wal.Open(cfg.WALDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := consensus.EncodeEvent(consensus.EventNewHeight{Height: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := log.Append(wal.Record{Height: 1, Kind: wal.KindMessage, Data: data}, true); err != nil {
		t.Fatal(err)
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}

	n, err := New(cfg, Options{Logger: testLogger(0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop() })
	sub := n.Subscribe(16)
	defer sub.Close()
	deadline := time.After(60 * time.Second)
	for n.Store().Height() < 3 {
		select {
		case <-sub.C():
		case <-n.Done():
			t.Fatalf("node stopped: %v", n.Err())
		case <-deadline:
			t.Fatalf("node at height %d a minute after restarting in a height it proposes, want 3", n.Store().Height())
		}
	}
}
