package snapshot

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// Errors of the snapshot Store.
var (
	// ErrNotFound: the store holds no snapshot at that height, or no such
	// chunk in it.
	ErrNotFound = errors.New("snapshot: not found")
	// ErrCorrupt: a file on disk does not match its manifest (a chunk
	// whose size or hash differ, an unreadable manifest); it is not served.
	ErrCorrupt = errors.New("snapshot: corrupt file on disk")
	// ErrBusy: Create was called while another Create was under way.
	ErrBusy = errors.New("snapshot: a snapshot is being taken already")
)

// File layout under the store's directory:
//
//	<height>/manifest        the manifest's encoding
//	<height>/chunk.<index>   chunk index's encoding, index in 5 digits
//	<height>.tmp/            a snapshot being written
//
// A snapshot is written whole into <height>.tmp, every file and the
// directory fsynced, then renamed to <height> and the parent fsynced: a
// crash leaves either no <height> or a complete one. Open removes the
// .tmp directories a crash left.
const (
	manifestFile = "manifest"
	tmpSuffix    = ".tmp"
	// chunkFilePerm and dirPerm keep snapshots to the node's user, like
	// the rest of its data directory.
	chunkFilePerm = 0o600
	dirPerm       = 0o700
)

func chunkFile(i int) string { return fmt.Sprintf("chunk.%05d", i) }

// Info summarises one snapshot the store holds.
type Info struct {
	Height uint64
	// ID is the manifest's ID, which names the snapshot to peers.
	ID     [32]byte
	Chunks int
	// Bytes is the total size of the chunks.
	Bytes uint64
}

// Store keeps the node's snapshots in a directory: it writes new ones
// (Create), keeps the last Keep of them, and serves their manifests and
// chunks to peers. Its methods are safe for concurrent use; Create runs
// beside the reads, and at most one Create runs at a time.
type Store struct {
	dir  string
	keep int

	mu    sync.RWMutex
	snaps map[uint64]*held // complete snapshots by height

	creating sync.Mutex
}

// held is a complete snapshot: its manifest and the manifest's ID.
type held struct {
	m  *Manifest
	id [32]byte
}

// OpenStore opens (creating it if needed) the snapshot directory dir,
// which keeps the last keep snapshots (at least 1). It removes what a
// crash during Create left (the .tmp directories) and any snapshot whose
// manifest does not decode, which could never be served.
func OpenStore(dir string, keep int) (*Store, error) {
	if keep < 1 {
		return nil, fmt.Errorf("snapshot store: keep %d, at least 1", keep)
	}
	if err := durable.EnsureDir(dir); err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	s := &Store{dir: dir, keep: keep, snaps: make(map[uint64]*held)}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	removed := false
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, tmpSuffix) {
			if _, ok := parseHeight(strings.TrimSuffix(name, tmpSuffix)); ok {
				if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
					return nil, fmt.Errorf("snapshot store: remove unfinished %s: %w", name, err)
				}
				removed = true
			}
			continue
		}
		h, ok := parseHeight(name)
		if !ok || !e.IsDir() {
			continue // not ours
		}
		m, err := readManifest(filepath.Join(dir, name, manifestFile))
		if err == nil && m.Height != h {
			err = fmt.Errorf("manifest of height %d", m.Height)
		}
		if err != nil {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("snapshot store: remove unreadable snapshot %s: %w", name, err)
			}
			removed = true
			continue
		}
		s.snaps[h] = &held{m: m, id: m.ID()}
	}
	if removed {
		if err := durable.SyncDir(dir); err != nil {
			return nil, fmt.Errorf("snapshot store: %w", err)
		}
	}
	return s, nil
}

// parseHeight reads a directory name that is a height in canonical
// decimal, at least 1.
func parseHeight(name string) (uint64, bool) {
	h, err := strconv.ParseUint(name, 10, 64)
	if err != nil || h == 0 || strconv.FormatUint(h, 10) != name {
		return 0, false
	}
	return h, true
}

// readManifest reads and decodes a manifest file, bounded by
// MaxManifestBytes.
func readManifest(path string) (*Manifest, error) {
	b, err := durable.ReadBounded(path, MaxManifestBytes)
	if err != nil {
		return nil, err
	}
	return DecodeManifest(b)
}

// List returns the snapshots the store holds, lowest height first.
func (s *Store) List() []Info {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Info, 0, len(s.snaps))
	for h, sn := range s.snaps {
		out = append(out, Info{Height: h, ID: sn.id, Chunks: len(sn.m.Chunks), Bytes: sn.m.TotalBytes()})
	}
	slices.SortFunc(out, func(a, b Info) int { return cmpUint(a.Height, b.Height) })
	return out
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Manifest returns the manifest of the snapshot at height, or an error
// wrapping ErrNotFound. The caller must not modify it.
func (s *Store) Manifest(height uint64) (*Manifest, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sn, ok := s.snaps[height]
	if !ok {
		return nil, fmt.Errorf("%w: no snapshot at height %d", ErrNotFound, height)
	}
	return sn.m, nil
}

// Chunk returns the encoding of chunk index of the snapshot at height. It
// reads at most the size the manifest gives and checks the bytes against
// the manifest's hash, so a file damaged on disk is never served: that is
// an error wrapping ErrCorrupt. A snapshot or index the store does not
// hold is an error wrapping ErrNotFound.
func (s *Store) Chunk(height uint64, index int) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sn, ok := s.snaps[height]
	if !ok {
		return nil, fmt.Errorf("%w: no snapshot at height %d", ErrNotFound, height)
	}
	if index < 0 || index >= len(sn.m.Chunks) {
		return nil, fmt.Errorf("%w: chunk %d of a snapshot of %d chunks", ErrNotFound, index, len(sn.m.Chunks))
	}
	e := sn.m.Chunks[index]
	path := filepath.Join(s.dir, strconv.FormatUint(height, 10), chunkFile(index))
	b, err := durable.ReadBounded(path, int(e.Size))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("%w: snapshot %d: chunk %d is missing", ErrCorrupt, height, index)
	case err != nil:
		return nil, fmt.Errorf("%w: snapshot %d: chunk %d: %w", ErrCorrupt, height, index, err)
	case len(b) != int(e.Size):
		return nil, fmt.Errorf("%w: snapshot %d: chunk %d has %d bytes, the manifest says %d", ErrCorrupt, height, index, len(b), e.Size)
	case sha256.Sum256(b) != e.Hash:
		return nil, fmt.Errorf("%w: snapshot %d: chunk %d does not match its hash", ErrCorrupt, height, index)
	}
	return b, nil
}

// Delete removes the snapshot at height (an error wrapping ErrNotFound if
// there is none). A chunk read of it under way may fail.
func (s *Store) Delete(height uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleteLocked(height)
}

func (s *Store) deleteLocked(height uint64) error {
	if _, ok := s.snaps[height]; !ok {
		return fmt.Errorf("%w: no snapshot at height %d", ErrNotFound, height)
	}
	delete(s.snaps, height)
	if err := os.RemoveAll(filepath.Join(s.dir, strconv.FormatUint(height, 10))); err != nil {
		return fmt.Errorf("snapshot store: delete %d: %w", height, err)
	}
	return durable.SyncDir(s.dir)
}

// Create takes the snapshot of version of src, the state after block
// height whose root is appHash, into the store, then prunes the store to
// its last Keep snapshots. It reads nothing but version, so the node runs
// it in a goroutine of its own while it commits later heights (the tree
// must keep version until Create returns). A snapshot already held at
// height is returned as it is. Another Create under way makes it fail
// with ErrBusy; when ctx is done it stops and leaves nothing behind.
func (s *Store) Create(ctx context.Context, src Source, version, height uint64, appHash [32]byte) (*Manifest, error) {
	if !s.creating.TryLock() {
		return nil, ErrBusy
	}
	defer s.creating.Unlock()
	if m, err := s.Manifest(height); err == nil {
		return m, nil
	}
	name := strconv.FormatUint(height, 10)
	tmp := filepath.Join(s.dir, name+tmpSuffix)
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", height, err)
	}
	if err := os.Mkdir(tmp, dirPerm); err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", height, err)
	}
	m, err := s.write(ctx, tmp, src, version, height, appHash)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("snapshot %d: %w", height, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("snapshot %d: %w", height, err)
	}
	if err := durable.SyncDir(s.dir); err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", height, err)
	}
	s.snaps[height] = &held{m: m, id: m.ID()}
	return m, s.pruneLocked()
}

// write builds the snapshot into the directory tmp: a file per chunk and
// the manifest, each fsynced, then the directory.
func (s *Store) write(ctx context.Context, tmp string, src Source, version, height uint64, appHash [32]byte) (*Manifest, error) {
	m, err := Build(ctx, src, version, height, appHash, func(i int, raw []byte) error {
		return writeSynced(filepath.Join(tmp, chunkFile(i)), raw)
	})
	if err != nil {
		return nil, err
	}
	if err := writeSynced(filepath.Join(tmp, manifestFile), m.Encode()); err != nil {
		return nil, err
	}
	if err := durable.SyncDir(tmp); err != nil {
		return nil, err
	}
	return m, nil
}

// writeSynced creates path with data and fsyncs it. The directory is
// synced once, after the last file.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, chunkFilePerm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// pruneLocked deletes the oldest snapshots beyond the last Keep.
func (s *Store) pruneLocked() error {
	heights := make([]uint64, 0, len(s.snaps))
	for h := range s.snaps {
		heights = append(heights, h)
	}
	slices.Sort(heights)
	for len(heights) > s.keep {
		if err := s.deleteLocked(heights[0]); err != nil {
			return err
		}
		heights = heights[1:]
	}
	return nil
}
