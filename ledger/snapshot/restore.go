package snapshot

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Importer is where a restore writes: the node's store (ledger/store's
// Restore) implements it. ImportChunk writes one verified chunk's leaves,
// both as the tree's subtree at depth under prefix and into the flat
// indexes execution reads; FinishImport builds the top of the tree over
// the parts, in key order, and returns the root. Neither needs to be
// durable on its own: the store makes the restore durable in one synced
// write when it finishes, and a crash before that makes the next restore
// start over.
type Importer interface {
	ImportChunk(depth int, prefix [32]byte, leaves []Leaf) (SubtreeRef, error)
	FinishImport(parts []SubtreeRef) ([32]byte, error)
}

// Errors of a Restorer besides the chunk errors of VerifyChunk.
var (
	// ErrIncomplete: Finish was called with chunks still missing.
	ErrIncomplete = errors.New("snapshot: restore incomplete")
	// ErrRootMismatch: every chunk verified, yet the imported tree's root
	// is not the app hash. The importer, not a peer, is at fault.
	ErrRootMismatch = errors.New("snapshot: imported root differs from the app hash")
	// ErrFinished: the restore was finished already.
	ErrFinished = errors.New("snapshot: restore finished already")
)

// Progress is how far a restore got.
type Progress struct {
	Chunks, TotalChunks int
	Bytes, TotalBytes   uint64
	Leaves, TotalLeaves uint64
	// Elapsed is the time since the restore started.
	Elapsed time.Duration
	// Rate is the chunk bytes imported per second since the start.
	Rate float64
	// ETA is the time the remaining bytes take at Rate; 0 when done or
	// when nothing has been imported yet to measure a rate by.
	ETA time.Duration
}

// Done reports whether every chunk is in.
func (p Progress) Done() bool { return p.Chunks == p.TotalChunks }

// String is a one-line summary for logs.
func (p Progress) String() string {
	return fmt.Sprintf("%d/%d chunks, %.1f/%.1f MB, %.1f MB/s, ETA %s",
		p.Chunks, p.TotalChunks, float64(p.Bytes)/1e6, float64(p.TotalBytes)/1e6, p.Rate/1e6, p.ETA.Round(time.Second))
}

// Restorer rebuilds the state from a snapshot's chunks, which arrive in
// any order from any peers: each is verified on arrival and imported at
// once, so a bad one is refused before anything is written and its peer
// can be told apart. Add may be called from several goroutines; the
// verification runs in parallel and the imports one at a time.
type Restorer struct {
	m       *Manifest
	appHash [32]byte
	imp     Importer
	now     func() time.Time
	start   time.Time

	importing sync.Mutex // held while the importer writes

	mu       sync.Mutex
	state    []chunkState
	refs     []SubtreeRef
	chunks   int
	bytes    uint64
	leaves   uint64
	finished bool
}

type chunkState uint8

const (
	chunkMissing chunkState = iota
	chunkImporting
	chunkDone
)

// RestoreOption configures a Restorer.
type RestoreOption func(*Restorer)

// WithClock sets the clock Progress measures the rate and ETA by
// (time.Now by default).
func WithClock(now func() time.Time) RestoreOption { return func(r *Restorer) { r.now = now } }

// NewRestorer starts a restore of the snapshot m into imp. m must be the
// manifest the caller verified with VerifyManifest against the trusted
// app hash appHash; NewRestorer checks it again.
func NewRestorer(m *Manifest, appHash [32]byte, imp Importer, opts ...RestoreOption) (*Restorer, error) {
	if err := VerifyManifest(m, m.Height, appHash); err != nil {
		return nil, err
	}
	r := &Restorer{m: m, appHash: appHash, imp: imp, now: time.Now,
		state: make([]chunkState, len(m.Chunks)), refs: make([]SubtreeRef, len(m.Chunks))}
	for _, o := range opts {
		o(r)
	}
	r.start = r.now()
	return r, nil
}

// Manifest returns the manifest being restored.
func (r *Restorer) Manifest() *Manifest { return r.m }

// Add verifies the encoded chunk raw (VerifyChunk) and imports it. It
// returns VerifyChunk's error for a bad chunk, with nothing written; the
// importer's error, wrapped, when the write fails; and nil for a chunk
// already imported or being imported, which it ignores.
func (r *Restorer) Add(raw []byte) error {
	c, err := VerifyChunk(r.m, r.appHash, raw)
	if err != nil {
		return err
	}
	r.mu.Lock()
	switch {
	case r.finished:
		r.mu.Unlock()
		return ErrFinished
	case r.state[c.Index] != chunkMissing:
		r.mu.Unlock()
		return nil
	}
	r.state[c.Index] = chunkImporting
	r.mu.Unlock()

	r.importing.Lock()
	ref, err := r.imp.ImportChunk(c.Depth, c.Prefix, c.Leaves)
	r.importing.Unlock()
	if err == nil && (ref.Depth != c.Depth || ref.Prefix != c.Prefix || ref.Leaves != uint64(len(c.Leaves))) {
		err = fmt.Errorf("importer returned the subtree at depth %d, prefix %x with %d leaves", ref.Depth, ref.Prefix, ref.Leaves)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.state[c.Index] = chunkMissing
		return fmt.Errorf("snapshot: import chunk %d: %w", c.Index, err)
	}
	r.state[c.Index] = chunkDone
	r.refs[c.Index] = ref
	r.chunks++
	r.bytes += uint64(len(raw))
	r.leaves += uint64(len(c.Leaves))
	return nil
}

// Missing returns the indexes of the chunks not imported yet (nor being
// imported), in order: what is left to fetch.
func (r *Restorer) Missing() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for i, s := range r.state {
		if s == chunkMissing {
			out = append(out, i)
		}
	}
	return out
}

// Progress reports how far the restore got.
func (r *Restorer) Progress() Progress {
	r.mu.Lock()
	p := Progress{
		Chunks: r.chunks, TotalChunks: len(r.m.Chunks),
		Bytes: r.bytes, TotalBytes: r.m.TotalBytes(),
		Leaves: r.leaves, TotalLeaves: r.m.TotalLeaves(),
	}
	r.mu.Unlock()
	p.Elapsed = r.now().Sub(r.start)
	if p.Elapsed > 0 && p.Bytes > 0 {
		p.Rate = float64(p.Bytes) / p.Elapsed.Seconds()
		if left := p.TotalBytes - p.Bytes; left > 0 {
			p.ETA = time.Duration(float64(left) / p.Rate * float64(time.Second))
		}
	}
	return p
}

// Finish builds the top of the tree over the imported chunks and checks
// that the root is the app hash. It fails with ErrIncomplete while chunks
// are missing (Add more and call it again), with ErrRootMismatch if the
// root differs. After it succeeds the caller writes the rest of the
// state (ledger/store's FinishRestore).
func (r *Restorer) Finish() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return ErrFinished
	}
	if r.chunks != len(r.m.Chunks) {
		return fmt.Errorf("%w: %d of %d chunks imported", ErrIncomplete, r.chunks, len(r.m.Chunks))
	}
	r.importing.Lock()
	root, err := r.imp.FinishImport(r.refs)
	r.importing.Unlock()
	if err != nil {
		return fmt.Errorf("snapshot: finish import: %w", err)
	}
	if root != r.appHash {
		return fmt.Errorf("%w: root %x, app hash %x", ErrRootMismatch, root, r.appHash)
	}
	r.finished = true
	return nil
}
