package node

import (
	"errors"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledger/store"
)

// TestPruningKeepsAWindow runs a validator with a small pruning window: as
// it commits, the state below the window goes (reads there say
// store.ErrPruned), every height in the window still proves against the
// app hash its next header carries, and the node restarts on the pruned
// store and goes on committing.
func TestPruningKeepsAWindow(t *testing.T) {
	const keep = 5
	prune := func(c *Config) {
		c.Pruning = PruningConfig{Strategy: PruneCustom, KeepRecent: keep, Interval: 2}
	}
	w := startTestnet(t, 1, prune)
	nd := w.nodes[0]
	w.waitHeight(12, time.Minute)

	// Pruning follows the commits in the background: wait for it block by
	// block (each commit may start a pruning), not for a fixed time.
	sub := nd.Subscribe(64)
	deadline := time.After(time.Minute)
	for nd.Store().OldestState() < 10 {
		select {
		case <-sub.C():
		case <-deadline:
			t.Fatalf("oldest state height %d at height %d; pruning did not follow", nd.Store().OldestState(), nd.Store().Height())
		}
	}
	sub.Close()

	st := nd.Store()
	oldest, latest := st.OldestState(), st.Height()
	if latest+1-oldest < keep {
		t.Fatalf("kept heights %d..%d: fewer than %d", oldest, latest, keep)
	}
	acct := w.accounts[0].PubKey().Address()
	if _, err := st.Account(oldest-1, acct); !errors.Is(err, store.ErrPruned) {
		t.Fatalf("account at pruned height %d: %v, want ErrPruned", oldest-1, err)
	}
	for h := oldest; h < latest; h++ {
		if _, _, err := st.AccountProof(h, acct); err != nil {
			t.Fatalf("proof at kept height %d: %v", h, err)
		}
		app, err := st.AppHash(h)
		if err != nil {
			t.Fatal(err)
		}
		next, err := st.Block(h + 1)
		if err != nil {
			t.Fatal(err)
		}
		if next.Header.AppHash != app {
			t.Fatalf("height %d: app hash %s, header %d says %s", h, app, h+1, next.Header.AppHash)
		}
	}

	if err := nd.Stop(); err != nil {
		t.Fatal(err)
	}
	w.start(0, prune)
	w.waitHeight(latest+3, time.Minute)
	if got := w.nodes[0].Store().OldestState(); got < oldest {
		t.Fatalf("after a restart the oldest kept height went from %d down to %d", oldest, got)
	}
}
