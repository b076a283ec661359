package snapshot

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/testkit/testseed"
)

// restoreAll restores b into a memImporter, adding the chunks in the
// order given (index order when nil), and checks the result.
func restoreAll(t testing.TB, b *built, appHash [32]byte, order []int) *memImporter {
	t.Helper()
	imp := newMemImporter()
	r, err := NewRestorer(b.m, appHash, imp)
	if err != nil {
		t.Fatal(err)
	}
	if order == nil {
		for i := range b.chunks {
			order = append(order, i)
		}
	}
	for _, i := range order {
		if err := r.Add(b.chunks[i]); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
	return imp
}

func TestRestoreInAnyOrder(t *testing.T) {
	tree, b := fixture(t, 40_000)
	rng, _ := testseed.Rand(t)
	order := rng.Perm(len(b.chunks))
	// Every chunk twice more, at random places: duplicates are ignored.
	for range 2 {
		for _, i := range rng.Perm(len(b.chunks)) {
			at := rng.IntN(len(order) + 1)
			order = append(order[:at], append([]int{i}, order[at:]...)...)
		}
	}
	imp := newMemImporter()
	r, err := NewRestorer(b.m, tree.root(), imp)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range order {
		if err := r.Add(b.chunks[i]); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	if imp.imported != len(b.chunks) {
		t.Fatalf("%d imports for %d chunks", imp.imported, len(b.chunks))
	}
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
	if !equalLeaves(imp.sortedLeaves(), tree.leaves) {
		t.Fatal("restored leaves differ from the tree's")
	}
	if err := r.Add(b.chunks[0]); !errors.Is(err, ErrFinished) {
		t.Fatalf("Add after Finish: %v", err)
	}
	if err := r.Finish(); !errors.Is(err, ErrFinished) {
		t.Fatalf("Finish twice: %v", err)
	}
}

func TestRestoreConcurrentAdds(t *testing.T) {
	tree, b := fixture(t, 30_000)
	imp := newMemImporter()
	r, err := NewRestorer(b.m, tree.root(), imp)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*len(b.chunks))
	for w := range 4 {
		wg.Go(func() {
			for j := range b.chunks {
				if err := r.Add(b.chunks[(j+w)%len(b.chunks)]); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
	if imp.imported != len(b.chunks) {
		t.Fatalf("%d imports for %d chunks", imp.imported, len(b.chunks))
	}
}

// A bad chunk is refused before anything is written, and the good one
// is still taken afterwards.
func TestRestoreRefusesABadChunkAtOnce(t *testing.T) {
	tree, b := fixture(t, 20_000)
	imp := newMemImporter()
	r, err := NewRestorer(b.m, tree.root(), imp)
	if err != nil {
		t.Fatal(err)
	}
	bad := mutate(t, b.chunks[1], func(c *Chunk) { c.Leaves[0].Value = append([]byte(nil), 9, 9, 9) })
	if err := r.Add(bad); !errors.Is(err, ErrChunkProof) {
		t.Fatalf("bad chunk: %v", err)
	}
	if imp.imported != 0 {
		t.Fatal("a bad chunk was imported")
	}
	if m := r.Missing(); len(m) != len(b.chunks) {
		t.Fatalf("missing %v after a bad chunk", m)
	}
	if err := r.Add(b.chunks[1]); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Finish with chunks missing: %v", err)
	}
	m := r.Missing()
	if len(m) != len(b.chunks)-1 || m[0] != 0 || m[1] != 2 {
		t.Fatalf("missing %v", m)
	}
}

func TestRestoreImportFailure(t *testing.T) {
	tree, b := fixture(t, 10_000)
	imp := newMemImporter()
	r, err := NewRestorer(b.m, tree.root(), imp)
	if err != nil {
		t.Fatal(err)
	}
	imp.fail = errors.New("disk full")
	if err := r.Add(b.chunks[0]); err == nil || !errors.Is(err, imp.fail) {
		t.Fatalf("Add with a failing importer: %v", err)
	}
	if m := r.Missing(); len(m) != len(b.chunks) {
		t.Fatalf("a failed import counts as done: missing %v", m)
	}
	imp.fail = nil
	for _, c := range b.chunks {
		if err := r.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
}

// lyingImporter builds a top that is not the tree's.
type lyingImporter struct{ *memImporter }

func (l lyingImporter) FinishImport(parts []SubtreeRef) ([32]byte, error) { return [32]byte{1}, nil }

func TestRestoreChecksTheRoot(t *testing.T) {
	tree, b := fixture(t, 10_000)
	r, err := NewRestorer(b.m, tree.root(), lyingImporter{newMemImporter()})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b.chunks {
		if err := r.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Finish(); !errors.Is(err, ErrRootMismatch) {
		t.Fatalf("Finish: %v", err)
	}
}

func TestRestoreRefusesAnUntrustedManifest(t *testing.T) {
	tree, b := fixture(t, 1000)
	other := tree.root()
	other[0] ^= 1
	if _, err := NewRestorer(b.m, other, newMemImporter()); !errors.Is(err, ErrManifestNotTrusted) {
		t.Fatalf("NewRestorer: %v", err)
	}
}

func TestRestoreProgress(t *testing.T) {
	tree, b := fixture(t, 30_000)
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	r, err := NewRestorer(b.m, tree.root(), newMemImporter(), WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	p := r.Progress()
	if p.Chunks != 0 || p.TotalChunks != len(b.chunks) || p.Rate != 0 || p.ETA != 0 || p.TotalBytes != b.m.TotalBytes() {
		t.Fatalf("at the start: %+v", p)
	}
	var done uint64
	for i := range 2 {
		if err := r.Add(b.chunks[i]); err != nil {
			t.Fatal(err)
		}
		done += uint64(len(b.chunks[i]))
	}
	now = now.Add(4 * time.Second)
	p = r.Progress()
	if p.Chunks != 2 || p.Bytes != done || p.Leaves != uint64(b.m.Chunks[0].Leaves+b.m.Chunks[1].Leaves) {
		t.Fatalf("after two chunks: %+v", p)
	}
	rate := float64(done) / 4
	if p.Rate != rate {
		t.Fatalf("rate %v, want %v", p.Rate, rate)
	}
	wantETA := time.Duration(float64(p.TotalBytes-done) / rate * float64(time.Second))
	if p.ETA != wantETA {
		t.Fatalf("ETA %v, want %v", p.ETA, wantETA)
	}
	if p.Elapsed != 4*time.Second || p.Done() {
		t.Fatalf("%+v", p)
	}
	for _, c := range b.chunks[2:] {
		if err := r.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	if p = r.Progress(); !p.Done() || p.ETA != 0 || p.Bytes != p.TotalBytes {
		t.Fatalf("at the end: %+v", p)
	}
	if s := p.String(); s == "" {
		t.Fatal("empty summary")
	} else {
		t.Log(s)
	}
}
