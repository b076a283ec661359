package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/snapshot"
	"github.com/ledgerd/ledgerd/ledger/store"
	"github.com/ledgerd/ledgerd/p2p"
	"github.com/libp2p/go-libp2p/core/peer"
)

// waitFor waits, block by block on node nd, until cond holds; it fails
// the test with what() after timeout.
func waitFor(t *testing.T, nd *Node, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	sub := nd.Subscribe(64)
	defer sub.Close()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case _, ok := <-sub.C():
			if !ok {
				sub = nd.Subscribe(64)
			}
		case <-nd.Done():
			t.Fatalf("node stopped: %v", nd.Err())
		case <-deadline:
			t.Fatalf("after %s: %s", timeout, what())
		}
	}
}

func fmtHeights(hs []uint64) string { return fmt.Sprint(hs) }

func snapshotHeights(nd *Node) []uint64 {
	var hs []uint64
	for _, in := range nd.snapshots.snaps.List() {
		hs = append(hs, in.Height)
	}
	return hs
}

// TestSnapshotsTakenServedAndRestored runs two validators taking a
// snapshot every 5 heights and keeping 2: the snapshots appear at the
// multiples of 5, only the last 2 stay (on disk too), and the second node
// discovers node 0's offers over libp2p, fetches the manifest and every
// chunk, and restores them into an empty store, each chunk verified
// against the app hash of header H+1 (which node 0 serves as a light
// block) and the whole against it at the end.
func TestSnapshotsTakenServedAndRestored(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two nodes")
	}
	const interval, keep = 5, 2
	w := startTestnet(t, 2, func(c *Config) {
		c.StateSync.SnapshotInterval, c.StateSync.SnapshotKeepRecent = interval, keep
	})
	n0, n1 := w.nodes[0], w.nodes[1]
	waitFor(t, n0, 2*time.Minute, func() bool {
		hs := snapshotHeights(n0)
		return len(hs) == keep && hs[0] >= interval*2
	}, func() string { return "snapshots held: " + fmtHeights(snapshotHeights(n0)) })

	hs := snapshotHeights(n0)
	for i, h := range hs {
		if h%interval != 0 || (i > 0 && h != hs[i-1]+interval) {
			t.Fatalf("snapshots at heights %v: want consecutive multiples of %d", hs, interval)
		}
	}
	entries, err := os.ReadDir(n0.cfg.SnapshotsDir())
	if err != nil {
		t.Fatal(err)
	}
	dirs := 0
	for _, e := range entries {
		if e.IsDir() {
			dirs++
		}
	}
	if dirs > keep+1 { // the last two, and perhaps one being written
		t.Fatalf("%d snapshot directories, want at most %d", dirs, keep+1)
	}
	if run := n0.snapshots.lastRun(); run.Err != nil || run.Chunks < 1 || run.Bytes == 0 {
		t.Fatalf("last snapshot run: %+v", run)
	}

	// Node 1 discovers node 0's offers.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id0 := n0.net.ID()
	var offer p2p.SnapshotOffer
	var peers []peer.ID
	for _, po := range n1.net.DiscoverSnapshots(ctx, 10*time.Second) {
		if slices.Contains(po.Peers, id0) && po.Offer.Height > offer.Height {
			offer, peers = po.Offer, po.Peers
		}
	}
	if offer.Height == 0 {
		t.Fatal("node 1 discovered no offer from node 0")
	}
	if offer.Format != snapshot.Format || !slices.Contains(hs, offer.Height) && offer.Height < hs[len(hs)-1] {
		t.Fatalf("offer %+v; node 0 holds %v", offer, hs)
	}
	h := offer.Height
	w.waitHeight(h+1, time.Minute, 0)

	// The app hash comes from header H+1, as node 0 serves it as a light
	// block (self-consistent; the light client's checks are part B's).
	lb, err := n1.net.FetchLightBlock(ctx, id0, h+1)
	if err != nil {
		t.Fatalf("light block %d: %v", h+1, err)
	}
	if want, _ := n0.Store().Block(h + 1); lb.Header.Hash() != want.Header.Hash() {
		t.Fatalf("light block %d: header %s, node 0 stores %s", h+1, lb.Header.Hash(), want.Header.Hash())
	}
	appHash := lb.Header.AppHash

	raw, err := n1.net.FetchManifest(ctx, offer, peers)
	if err != nil {
		t.Fatal(err)
	}
	m, err := snapshot.DecodeManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := snapshot.VerifyManifest(m, h, appHash); err != nil {
		t.Fatalf("manifest of height %d against header %d: %v", h, h+1, err)
	}
	dst := store.Open(kv.NewMem())
	rest, err := dst.BeginRestore(h, crypto.Hash(appHash), n0.doc.Hash())
	if err != nil {
		t.Fatal(err)
	}
	r, err := snapshot.NewRestorer(m, appHash, rest)
	if err != nil {
		t.Fatal(err)
	}
	var verified []uint32
	err = n1.net.FetchChunks(ctx, p2p.FetchSpec{Height: h, Chunks: offer.Chunks, Peers: peers,
		Verify: func(i uint32, chunk []byte) error {
			if err := r.Add(chunk); err != nil {
				t.Errorf("chunk %d: %v", i, err)
				return err
			}
			verified = append(verified, i)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if len(verified) != int(offer.Chunks) {
		t.Fatalf("%d chunks verified, want %d", len(verified), offer.Chunks)
	}
	if err := r.Finish(); err != nil {
		t.Fatalf("restore of height %d: %v", h, err)
	}
	if (*handler)(n0).BaseHeight() != 1 {
		t.Fatalf("base height %d on a node started from genesis", (*handler)(n0).BaseHeight())
	}
}

// slowSource holds a snapshot's first read of the state tree until
// released: a snapshot that takes as long as the test wants.
type slowSource struct {
	snapshot.Source
	entered chan uint64   // the version read, once
	release chan struct{} // closed to let it go on
	once    sync.Once
}

func (s *slowSource) Partition(version, maxLeaves uint64) ([]snapshot.Subtree, error) {
	s.once.Do(func() {
		s.entered <- version
		<-s.release
	})
	return s.Source.Partition(version, maxLeaves)
}

// TestPruningSparesASnapshotBeingWritten runs a validator that keeps the
// state of only its last 2 heights, pruning at every height, and takes a
// snapshot every 5 heights whose writing is held up: while it is held,
// pruning stops at the snapshot's height (its state stays readable) and
// the driver goes on committing; once released the snapshot is written
// whole and verifies against header H+1, and pruning then moves on.
func TestPruningSparesASnapshotBeingWritten(t *testing.T) {
	const interval = 5
	slow := &slowSource{entered: make(chan uint64, 1), release: make(chan struct{})}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(slow.release) }) }
	w := startTestnetHooked(t, 1, func(c *Config) {
		c.Pruning = PruningConfig{Strategy: PruneCustom, KeepRecent: 2, Interval: 1}
		c.StateSync.SnapshotInterval, c.StateSync.SnapshotKeepRecent = interval, 2
	}, func(_ int, nd *Node) {
		nd.snapshots.source = func(src snapshot.Source) snapshot.Source {
			slow.Source = src
			return slow
		}
	})
	t.Cleanup(release) // runs before the node's Stop, which waits for the snapshot
	nd := w.nodes[0]
	select {
	case v := <-slow.entered:
		if v != store.StateVersion(interval) {
			t.Fatalf("the snapshot reads version %d, want that of height %d (%d)", v, interval, store.StateVersion(interval))
		}
	case <-time.After(time.Minute):
		t.Fatal("no snapshot started")
	}
	st := nd.Store()
	// The driver commits on while the snapshot is held; pruning catches
	// up to the pinned height and no further.
	w.waitHeight(interval+8, time.Minute)
	waitFor(t, nd, time.Minute, func() bool { return st.OldestState() == interval }, func() string {
		return "oldest state " + fmtHeights([]uint64{st.OldestState()}) + ", want the pinned height"
	})
	if _, err := st.AppHash(interval); err != nil {
		t.Fatalf("state of the snapshot's height while it is written: %v", err)
	}
	if _, err := st.AppHash(interval - 1); !errors.Is(err, store.ErrPruned) {
		t.Fatalf("state below the pinned height: %v, want pruned", err)
	}

	release()
	waitFor(t, nd, time.Minute, func() bool { return slices.Contains(snapshotHeights(nd), interval) },
		func() string { return "snapshots: " + fmtHeights(snapshotHeights(nd)) })
	m, err := nd.snapshots.snaps.Manifest(interval)
	if err != nil {
		t.Fatal(err)
	}
	next, err := st.Block(interval + 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := snapshot.VerifyManifest(m, interval, next.Header.AppHash); err != nil {
		t.Fatal(err)
	}
	for i := range m.Chunks {
		raw, err := nd.snapshots.snaps.Chunk(interval, i)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := snapshot.VerifyChunk(m, next.Header.AppHash, raw); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	waitFor(t, nd, time.Minute, func() bool { return st.OldestState() > interval }, func() string {
		return "pruning did not move on after the snapshot"
	})
}
