package statetree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ledgerd/ledgerd/ledger/kv"
)

// checkPruned expects every read of version v to report ErrVersionPruned.
func checkPruned(t testing.TB, tr *Tree, v uint64, key [32]byte, seed uint64) {
	t.Helper()
	if _, err := tr.Root(v); !errors.Is(err, ErrVersionPruned) {
		t.Fatalf("seed %d: Root(%d) of a pruned version: %v", seed, v, err)
	}
	if _, err := tr.Get(v, key); !errors.Is(err, ErrVersionPruned) {
		t.Fatalf("seed %d: Get(%d) of a pruned version: %v", seed, v, err)
	}
	if _, _, err := tr.Prove(v, key); !errors.Is(err, ErrVersionPruned) {
		t.Fatalf("seed %d: Prove(%d) of a pruned version: %v", seed, v, err)
	}
	if _, err := tr.Partition(v, 4); !errors.Is(err, ErrVersionPruned) {
		t.Fatalf("seed %d: Partition(%d) of a pruned version: %v", seed, v, err)
	}
	if err := tr.Leaves(v, 0, [32]byte{}, func(Leaf) error { return nil }); !errors.Is(err, ErrVersionPruned) {
		t.Fatalf("seed %d: Leaves(%d) of a pruned version: %v", seed, v, err)
	}
}

// TestPruneMatchesModel commits random change sets (with Meta) and prunes
// at random points in batches of random sizes. After every prune, every
// retained version answers Get, Prove and Leaves exactly as the reference
// maps say, every pruned version answers ErrVersionPruned, and the nodes
// stored are exactly those the retained versions reach: no garbage left,
// nothing missing.
func TestPruneMatchesModel(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			r, seed := testRand(t)
			db := st.open(t)
			tr := New(db, []byte("s/"), WithCacheBytes(int(r.IntN(3))*200*nodeOverhead))
			fresh := New(db, []byte("s/"), WithCacheBytes(0)) // reads the store, not a cache
			g := &keyGen{r: r}
			m, mm := model{}, metaModel{}
			models := []model{{}}
			metas := []metaModel{{}}
			var oldest uint64
			const versions = 60
			for v := uint64(1); v <= versions; v++ {
				cs := withMeta(r, randChanges(r, g, 40))
				applyAll(m, mm, cs)
				commit(t, db, tr, v-1, v, cs)
				models, metas = append(models, m.clone()), append(metas, mm.clone())
				if r.IntN(6) != 0 && v != versions {
					continue
				}
				keepFrom := oldest + r.Uint64N(v-oldest+1)
				if v == versions {
					keepFrom = v
				}
				maxOps := 1 + r.IntN(40)
				if _, err := tr.Prune(context.Background(), db, keepFrom, maxOps); err != nil {
					t.Fatalf("seed %d: Prune(%d) at version %d: %v", seed, keepFrom, v, err)
				}
				oldest = max(oldest, keepFrom)
				if got, err := tr.Oldest(); err != nil || got != oldest {
					t.Fatalf("seed %d: Oldest = %d, %v; want %d", seed, got, err, oldest)
				}
				for u := uint64(0); u <= v; u++ {
					if u < oldest {
						checkPruned(t, fresh, u, g.existing(), seed)
						continue
					}
					checkFull(t, fresh, u, models[u], metas[u], g.seen, seed)
				}
				checkNoGarbage(t, db, "s/", oldest, v, seed)
			}
			// Pruned to the latest version: one root record, no stale entries.
			for tag, want := range map[byte]int{tagRoot: 1, tagStale: 0} {
				n := 0
				if err := db.Iterate([]byte{'s', '/', tag}, func(_, _ []byte) bool { n++; return true }); err != nil {
					t.Fatal(err)
				}
				if n != want {
					t.Fatalf("seed %d: %d records %q after pruning to the latest version, want %d", seed, n, tag, want)
				}
			}
		})
	}
}

// TestPruneArguments: Prune refuses a version above Latest and empty
// batches, and never lowers Oldest.
func TestPruneArguments(t *testing.T) {
	db := kv.NewMem()
	tr := New(db, []byte("s/"))
	for v := uint64(1); v <= 5; v++ {
		commit(t, db, tr, v-1, v, []Change{{Key: [32]byte{byte(v)}, Value: []byte{byte(v)}}})
	}
	ctx := context.Background()
	if _, err := tr.Prune(ctx, db, 6, 10); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("Prune above Latest: %v, want ErrVersionNotFound", err)
	}
	if _, err := tr.Prune(ctx, db, 3, 0); err == nil {
		t.Fatal("Prune with batches of 0 deletions succeeded")
	}
	if _, err := tr.Prune(ctx, db, 4, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Prune(ctx, db, 2, 10); err != nil {
		t.Fatal(err)
	}
	if o, _ := tr.Oldest(); o != 4 {
		t.Fatalf("Oldest after pruning to 4 then 2: %d, want 4", o)
	}
	if _, err := tr.Get(3, [32]byte{3}); !errors.Is(err, ErrVersionPruned) {
		t.Fatalf("Get(3) after pruning to 4: %v", err)
	}
	// A cancelled context stops pruning before it writes a deletion, but
	// after it records the new oldest version.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	n, err := tr.Prune(cctx, db, 5, 1)
	if !errors.Is(err, context.Canceled) || n > 1 {
		t.Fatalf("Prune with a cancelled context: %d nodes, %v", n, err)
	}
	if o, _ := tr.Oldest(); o != 5 {
		t.Fatalf("Oldest after a cancelled Prune(5): %d", o)
	}
	if _, err := tr.Prune(ctx, db, 5, 1); err != nil {
		t.Fatal(err)
	}
	checkNoGarbage(t, db, "s/", 5, 5, 0)
}

// failingDB is a kv.DB whose writes fail from the failAt-th on (counting
// from 1), applying nothing: a process killed between two of its writes.
type failingDB struct {
	kv.DB
	writes, failAt int
}

var errKilled = errors.New("killed")

func (f *failingDB) Write(b kv.Batch, sync bool) error {
	f.writes++
	if f.failAt > 0 && f.writes >= f.failAt {
		return errKilled
	}
	return f.DB.Write(b, sync)
}

// TestPruneCrashAtEveryBatch cuts a prune off before one of its batch
// writes (the first one records the new oldest version), checks that every
// retained version is intact, prunes again on a reopened tree, and expects
// the job finished: the retained versions intact and nothing else stored.
// It cuts before every write in turn (on LevelDB, and when there are many,
// before a seeded sample of them).
func TestPruneCrashAtEveryBatch(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			r, seed := testRand(t)
			const versions = 16
			var changes [][]Change
			g := &keyGen{r: r}
			for range versions {
				changes = append(changes, withMeta(r, randChanges(r, g, 30)))
			}
			models, metas := []model{{}}, []metaModel{{}}
			m, mm := model{}, metaModel{}
			for _, cs := range changes {
				applyAll(m, mm, cs)
				models, metas = append(models, m.clone()), append(metas, mm.clone())
			}
			build := func() kv.DB {
				db := st.open(t)
				tr := New(db, []byte("s/"))
				for v := uint64(1); v <= versions; v++ {
					commit(t, db, tr, v-1, v, changes[v-1])
				}
				return db
			}
			keepFrom, maxOps := uint64(2+r.IntN(versions-1)), 1+r.IntN(12)
			// A first run counts the writes.
			count := &failingDB{DB: build()}
			if _, err := New(count.DB, []byte("s/")).Prune(context.Background(), count, keepFrom, maxOps); err != nil {
				t.Fatal(err)
			}
			cuts := []int{}
			for i := 1; i <= count.writes; i++ {
				cuts = append(cuts, i)
			}
			limit := map[string]int{"mem": 80, "level": 12}[st.name]
			if len(cuts) > limit {
				r.Shuffle(len(cuts)-2, func(i, j int) { cuts[i+1], cuts[j+1] = cuts[j+1], cuts[i+1] })
				cuts = append(cuts[:limit-1], count.writes) // the first, a sample, the last
			}
			t.Logf("seed %d: prune to %d in batches of %d: %d writes, cut before %d of them", seed, keepFrom, maxOps, count.writes, len(cuts))
			for _, failAt := range cuts {
				db := build()
				f := &failingDB{DB: db, failAt: failAt}
				_, err := New(db, []byte("s/")).Prune(context.Background(), f, keepFrom, maxOps)
				if !errors.Is(err, errKilled) {
					t.Fatalf("seed %d: cut before write %d: %v", seed, failAt, err)
				}
				reopened := New(db, []byte("s/"), WithCacheBytes(0))
				oldest, err := reopened.Oldest()
				if err != nil {
					t.Fatal(err)
				}
				want := keepFrom
				if failAt == 1 {
					want = 0
				}
				if oldest != want {
					t.Fatalf("seed %d: cut before write %d: Oldest %d, want %d", seed, failAt, oldest, want)
				}
				for v := oldest; v <= versions; v++ {
					checkFull(t, reopened, v, models[v], metas[v], g.seen, seed)
				}
				// Prune again: to the recorded oldest version (0 asks no
				// more), then, if the cut came before that was recorded,
				// to keepFrom.
				for _, to := range []uint64{0, keepFrom} {
					if _, err := reopened.Prune(context.Background(), db, to, maxOps); err != nil {
						t.Fatalf("seed %d: prune to %d after a cut before write %d: %v", seed, to, failAt, err)
					}
					if failAt > 1 {
						break
					}
				}
				for v := keepFrom; v <= versions; v++ {
					checkFull(t, reopened, v, models[v], metas[v], g.seen, seed)
				}
				checkNoGarbage(t, db, "s/", keepFrom, versions, seed)
			}
		})
	}
}

// TestReadersDuringPrune reads retained versions (Get, Prove, Verify,
// Partition, Leaves) from several goroutines while one goroutine prunes in
// small batches and another commits new versions; a retained version never
// gives an error. Readers of the versions being pruned get the right answer
// or ErrVersionPruned, never ErrCorrupt. Run it with -race.
func TestReadersDuringPrune(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			r, seed := testRand(t)
			db := st.open(t)
			tr := New(db, []byte("s/"), WithCacheBytes(100*nodeOverhead))
			g := &keyGen{r: r}
			m := model{}
			models := []model{{}}
			const versions, keepFrom = 30, 20
			for v := uint64(1); v <= versions; v++ {
				cs := randChanges(r, g, 40)
				m.apply(cs)
				models = append(models, m.clone())
				commit(t, db, tr, v-1, v, cs)
			}
			var more [][]Change
			for range 10 {
				more = append(more, randChanges(r, g, 40))
			}
			keys := g.seen
			var readerSeeds []uint64
			for range 4 {
				readerSeeds = append(readerSeeds, r.Uint64())
			}

			done := make(chan struct{})
			errs := make(chan error, 8)
			var wg sync.WaitGroup
			var reads atomic.Int64
			for w, rs := range readerSeeds {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := uint64(0); ; i++ {
						select {
						case <-done:
							return
						default:
						}
						v := 1 + (rs+i*7)%versions
						k := keys[(rs+i*13)%uint64(len(keys))]
						err := readVersion(tr, v, k, models[v], w%2 == 0 && i%16 == 0)
						if err != nil && !(v < keepFrom && errors.Is(err, ErrVersionPruned)) {
							errs <- fmt.Errorf("reader %d, version %d, key %x: %w", w, v, k, err)
							return
						}
						reads.Add(1)
					}
				}()
			}
			wg.Add(1)
			go func() { // the committer
				defer wg.Done()
				for i, cs := range more {
					v := uint64(versions + i)
					b := db.NewBatch()
					if _, err := tr.Commit(b, v, v+1, cs); err != nil {
						errs <- fmt.Errorf("commit %d: %w", v+1, err)
						return
					}
					if err := db.Write(b, false); err != nil {
						errs <- err
						return
					}
				}
			}()
			n, err := tr.Prune(context.Background(), db, keepFrom, 3)
			close(done)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("seed %d: %v", seed, err)
			}
			if err != nil {
				t.Fatalf("seed %d: Prune: %v", seed, err)
			}
			if n == 0 {
				t.Fatalf("seed %d: Prune deleted nothing", seed)
			}
			t.Logf("seed %d: %d reads while pruning %d nodes", seed, reads.Load(), n)
			latest, _ := tr.Latest()
			if _, err := tr.Prune(context.Background(), db, keepFrom, 3); err != nil {
				t.Fatal(err)
			}
			checkNoGarbage(t, db, "s/", keepFrom, latest, seed)
		})
	}
}

// readVersion reads key from version v of tr every way there is, checking
// the answers against m; wide adds a partition and a walk of every leaf.
func readVersion(tr *Tree, v uint64, k [32]byte, m model, wide bool) error {
	root, err := tr.Root(v)
	if err != nil {
		return err
	}
	val, p, err := tr.Prove(v, k)
	if err != nil {
		return err
	}
	if err := Verify(root, k, m[k], p); err != nil || !bytes.Equal(val, m[k]) {
		return fmt.Errorf("wrong answer %x, proof %v", val, err)
	}
	if got, err := tr.Get(v, k); err != nil || !bytes.Equal(got, m[k]) {
		return fmt.Errorf("Get = %x, %w", got, err)
	}
	if !wide {
		return nil
	}
	parts, err := tr.Partition(v, 5)
	if err != nil {
		return err
	}
	n := 0
	for _, part := range parts {
		if err := tr.Leaves(v, part.Depth, part.Prefix, func(l Leaf) error {
			if !bytes.Equal(l.Value, m[l.Key]) {
				return fmt.Errorf("leaf %x = %x, want %x", l.Key, l.Value, m[l.Key])
			}
			n++
			return nil
		}); err != nil {
			return err
		}
	}
	if n != len(m) {
		return fmt.Errorf("the partition's leaves number %d, want %d", n, len(m))
	}
	return nil
}

// TestOldLayoutIsRefused: a store holding the hash-keyed layout (or the
// latest record of this layout's first cut, 'L') makes every operation fail
// with ErrOldLayout, saying what to do.
func TestOldLayoutIsRefused(t *testing.T) {
	for _, key := range []string{"n\x01\x02\x03", "r\x00\x00\x00\x00\x00\x00\x00\x01", "L"} {
		t.Run(key[:1], func(t *testing.T) {
			db := kv.NewMem()
			b := db.NewBatch()
			b.Put(append([]byte("s/"), key...), []byte{1})
			if err := db.Write(b, false); err != nil {
				t.Fatal(err)
			}
			tr := New(db, []byte("s/"))
			_, err := tr.Root(1)
			if !errors.Is(err, ErrOldLayout) || !strings.Contains(err.Error(), "older layout; resync the node") {
				t.Fatalf("Root: %v, want ErrOldLayout", err)
			}
			if _, err := tr.Root(0); !errors.Is(err, ErrOldLayout) {
				t.Fatalf("Root(0): %v", err)
			}
			if _, err := tr.Latest(); !errors.Is(err, ErrOldLayout) {
				t.Fatalf("Latest: %v", err)
			}
			if _, err := tr.Commit(db.NewBatch(), 0, 1, []Change{{Key: [32]byte{1}, Value: []byte{1}}}); !errors.Is(err, ErrOldLayout) {
				t.Fatalf("Commit: %v", err)
			}
			if _, err := tr.Prune(context.Background(), db, 0, 10); !errors.Is(err, ErrOldLayout) {
				t.Fatalf("Prune: %v", err)
			}
			if _, err := tr.ImportSubtree(db.NewBatch(), 1, 0, [32]byte{}, nil); !errors.Is(err, ErrOldLayout) {
				t.Fatalf("ImportSubtree: %v", err)
			}
		})
	}
	// A tree under another prefix, or keys that merely start with the
	// letters, do not count.
	db := kv.NewMem()
	b := db.NewBatch()
	b.Put([]byte("x/n1"), []byte{1})
	b.Put([]byte("s-n"), []byte{1})
	if err := db.Write(b, false); err != nil {
		t.Fatal(err)
	}
	if _, err := New(db, []byte("s/")).Root(0); err != nil {
		t.Fatalf("Root(0) beside foreign keys: %v", err)
	}
}

// TestCommitHistoryIsLinear: base must be the latest version.
func TestCommitHistoryIsLinear(t *testing.T) {
	db := kv.NewMem()
	tr := New(db, []byte("s/"))
	for v := uint64(1); v <= 3; v++ {
		commit(t, db, tr, v-1, v, []Change{{Key: [32]byte{byte(v)}, Value: []byte{byte(v)}}})
	}
	for _, base := range []uint64{0, 1, 2} {
		if _, err := tr.Commit(db.NewBatch(), base, 10, nil); !errors.Is(err, ErrVersionOrder) {
			t.Fatalf("Commit from %d with latest 3: %v, want ErrVersionOrder", base, err)
		}
	}
	if l, err := tr.Latest(); err != nil || l != 3 {
		t.Fatalf("Latest = %d, %v", l, err)
	}
	// Versions may skip numbers; the gap does not exist.
	commit(t, db, tr, 3, 7, []Change{{Key: [32]byte{7}, Value: []byte{7}}})
	if _, err := tr.Root(5); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("Root of a skipped version: %v", err)
	}
	if l, _ := tr.Latest(); l != 7 {
		t.Fatalf("Latest = %d, want 7", l)
	}
	if got, err := tr.Get(7, [32]byte{2}); err != nil || !bytes.Equal(got, []byte{2}) {
		t.Fatalf("Get(7) of a key from version 2: %x, %v", got, err)
	}
}

// TestMetaIsKept: Meta rides with the leaf, unhashed; a nil Meta keeps the
// old one, a non-nil one replaces it, and a Meta-only change rewrites the
// leaf without changing the root.
func TestMetaIsKept(t *testing.T) {
	db := kv.NewMem()
	tr := New(db, []byte("s/"))
	k, other := [32]byte{0x10}, [32]byte{0x90}
	meta := func(v uint64) []byte {
		var got []byte
		if err := tr.Leaves(v, 0, [32]byte{}, func(l Leaf) error {
			if l.Key == k {
				got = l.Meta
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	r1 := commit(t, db, tr, 0, 1, []Change{{Key: k, Value: []byte("a"), Meta: []byte("addr")}, {Key: other, Value: []byte("o")}})
	if got := meta(1); string(got) != "addr" {
		t.Fatalf("meta %q, want addr", got)
	}
	commit(t, db, tr, 1, 2, []Change{{Key: k, Value: []byte("b")}})
	if got := meta(2); string(got) != "addr" {
		t.Fatalf("after a value change without Meta: meta %q, want addr", got)
	}
	b := &countingBatch{}
	root, err := tr.Commit(b, 2, 3, []Change{{Key: k, Value: []byte("b"), Meta: []byte("new")}})
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := tr.Root(2)
	if root != r2 || b.byTag[tagNode] == 0 || b.byTag[tagStale] == 0 {
		t.Fatalf("a Meta-only change: root changed %v, node puts %d, stale %d", root != r2, b.byTag[tagNode], b.byTag[tagStale])
	}
	commit(t, db, tr, 2, 3, []Change{{Key: k, Value: []byte("b"), Meta: []byte("new")}})
	if got := meta(3); string(got) != "new" {
		t.Fatalf("meta %q, want new", got)
	}
	if got := meta(1); string(got) != "addr" {
		t.Fatalf("version 1's meta changed to %q", got)
	}
	b = &countingBatch{}
	if _, err := tr.Commit(b, 3, 4, []Change{{Key: k, Value: []byte("b"), Meta: []byte("new")}, {Key: other, Value: []byte("o")}}); err != nil {
		t.Fatal(err)
	}
	if b.byTag[tagNode] != 0 || b.byTag[tagStale] != 0 {
		t.Fatalf("changes that change nothing wrote %d nodes and %d stale entries", b.byTag[tagNode], b.byTag[tagStale])
	}
	commit(t, db, tr, 3, 4, []Change{{Key: k, Value: []byte("b"), Meta: []byte{}}})
	if got := meta(4); got != nil {
		t.Fatalf("an empty Meta left %q", got)
	}
	if _, err := tr.Commit(db.NewBatch(), 4, 5, []Change{{Key: k, Value: []byte("c"), Meta: make([]byte, MaxMetaSize+1)}}); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("a Meta over MaxMetaSize: %v", err)
	}
	if root, _ := tr.Root(1); root != r1 {
		t.Fatal("version 1's root changed")
	}
}

// racingReader runs prune once, just before the first read of a key for
// which at says so: a prune that lands between two reads of a reader.
type racingReader struct {
	kv.Reader
	at    func(key []byte) bool
	prune func()
	done  bool
}

func (r *racingReader) Get(key []byte) ([]byte, error) {
	if !r.done && r.at(key) {
		r.done = true
		r.prune()
	}
	return r.Reader.Get(key)
}

// TestReadRacingPrune: a read that checked Oldest and then finds its root
// record or one of its nodes deleted by a prune reports ErrVersionPruned,
// never ErrVersionNotFound or ErrCorrupt.
func TestReadRacingPrune(t *testing.T) {
	for _, tag := range []byte{tagRoot, tagNode} {
		t.Run(string(tag), func(t *testing.T) {
			db := kv.NewMem()
			tr := New(db, []byte("s/"))
			for v := uint64(1); v <= 3; v++ {
				var cs []Change
				for i := range 30 {
					cs = append(cs, Change{Key: [32]byte{byte(i * 8), byte(v)}, Value: []byte{byte(v)}})
				}
				commit(t, db, tr, v-1, v, cs)
			}
			rr := &racingReader{Reader: db}
			rr.at = func(key []byte) bool { return len(key) > 2 && key[2] == tag }
			rr.prune = func() {
				if _, err := tr.Prune(context.Background(), db, 3, 100); err != nil {
					t.Fatal(err)
				}
			}
			racing := New(rr, []byte("s/"), WithCacheBytes(0))
			if _, err := racing.Get(1, [32]byte{8, 1}); !errors.Is(err, ErrVersionPruned) {
				t.Fatalf("a read racing with a prune: %v, want ErrVersionPruned", err)
			}
			if !rr.done {
				t.Fatal("the prune did not run")
			}
		})
	}
}
