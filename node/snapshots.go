package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/internal/durable"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/snapshot"
	"github.com/ledgerd/ledgerd/ledger/store"
	"github.com/ledgerd/ledgerd/p2p"
)

// snapshotter takes the node's state snapshots ([statesync]
// snapshot_interval) and holds them for serving. After each commit at a
// multiple of the interval the driver calls committed, which starts the
// snapshot of that height in a goroutine of its own and returns at once:
// the driver never waits for a snapshot. At most one runs at a time; a
// height that comes due while one is still being written is skipped.
// While it runs, the height's state is pinned (pinned), so the pruner
// keeps it until the snapshot is written.
type snapshotter struct {
	snaps    *snapshot.Store
	ledger   *store.Store
	log      *slog.Logger
	interval uint64 // 0: no snapshots are taken (those held are still served)
	dir      string // the snapshot directory

	// source wraps the state tree the snapshots read; tests slow it down.
	source func(snapshot.Source) snapshot.Source
	// goRun runs the snapshot goroutine as one the node owns, so the node
	// waits for it before it closes the store.
	goRun func(func() error)

	mu      sync.Mutex
	ctx     context.Context // the running node's; nil before start
	running bool
	pin     uint64 // the height being written, while running
	last    snapshotRun
	// prios are the proposer priorities of height h+1 for each snapshot
	// at h this process took (at most those the store holds): state sync
	// needs them and no hash commits them. Kept on disk beside the
	// snapshot (prioritiesFile). Not yet served to peers.
	prios map[uint64]*ledger.ProposerPriorities
}

// snapshotRun is what the last snapshot did, for the logs and tests.
type snapshotRun struct {
	Height uint64
	Chunks int
	Bytes  uint64
	Took   time.Duration
	Err    error
}

// openSnapshotter opens the node's snapshot store (data/snapshots) for
// cfg. The store is opened even with snapshots off, so that snapshots
// taken earlier are still served.
func openSnapshotter(cfg *Config, st *store.Store, log *slog.Logger) (*snapshotter, error) {
	snaps, err := snapshot.OpenStore(cfg.SnapshotsDir(), cfg.StateSync.SnapshotKeepRecent)
	if err != nil {
		return nil, err
	}
	s := &snapshotter{snaps: snaps, ledger: st, log: log, interval: cfg.StateSync.SnapshotInterval,
		dir: cfg.SnapshotsDir(), prios: make(map[uint64]*ledger.ProposerPriorities)}
	s.loadPriorities()
	return s, nil
}

// The proposer priorities of height h+1 recorded with the snapshot at h
// are kept beside it, in <h>.priorities in the snapshot directory (which
// the snapshot store leaves alone), so that a restarted node still has
// them: no hash commits them and the ledger store keeps only the newest.
const prioritiesSuffix = ".priorities"

// maxPrioritiesFileBytes bounds a priorities file: the encoding's
// version, set hash and count, and MaxValidators priorities.
const maxPrioritiesFileBytes = 1 + 32 + binary.MaxVarintLen64 + ledger.MaxValidators*8

func (s *snapshotter) prioritiesFile(h uint64) string {
	return filepath.Join(s.dir, strconv.FormatUint(h, 10)+prioritiesSuffix)
}

// decodeSnapshotPriorities decodes a priorities file of at most
// maxPrioritiesFileBytes against vals, the validator set of the height
// they are of.
func decodeSnapshotPriorities(b []byte, vals *ledger.ValidatorSet) (*ledger.ProposerPriorities, error) {
	if len(b) > maxPrioritiesFileBytes {
		return nil, fmt.Errorf("proposer priorities: %d bytes, at most %d", len(b), maxPrioritiesFileBytes)
	}
	return ledger.DecodeProposerPriorities(vals, b)
}

// loadPriorities reads the priorities files of the snapshots held and
// removes those of snapshots no longer held. A file that does not read or
// decode is logged and left out: that snapshot is served without them.
func (s *snapshotter) loadPriorities() {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		s.log.Warn("reading the snapshot directory", "err", err)
		return
	}
	held := s.snaps.List()
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), prioritiesSuffix)
		if !ok {
			continue
		}
		h, err := strconv.ParseUint(name, 10, 64)
		if err != nil || e.IsDir() {
			continue
		}
		if !slices.ContainsFunc(held, func(in snapshot.Info) bool { return in.Height == h }) {
			_ = os.Remove(s.prioritiesFile(h))
			continue
		}
		p, err := s.readPriorities(h)
		if err != nil {
			s.log.Warn("proposer priorities of a snapshot", "height", h, "err", err)
			continue
		}
		s.prios[h] = p
	}
}

func (s *snapshotter) readPriorities(h uint64) (*ledger.ProposerPriorities, error) {
	f, err := os.Open(s.prioritiesFile(h))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPrioritiesFileBytes+1))
	if err != nil {
		return nil, err
	}
	vals, err := s.ledger.ValidatorsAt(h + 1)
	if err != nil {
		return nil, err
	}
	return decodeSnapshotPriorities(b, vals)
}

// start lets committed take snapshots, in goroutines run by goRun until
// ctx is done.
func (s *snapshotter) start(ctx context.Context, goRun func(func() error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctx, s.goRun = ctx, goRun
}

// pinned is the pruner's hook: the height whose state a snapshot is
// reading, and true, while one runs.
func (s *snapshotter) pinned() (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pin, s.running
}

// committed starts the snapshot of the state st after height h if h is
// due and none is being written; it never blocks. It must be called
// before the pruner hears of h, so that the pin is in place before any
// pruning for h starts.
func (s *snapshotter) committed(st *ledger.State) {
	h := st.Height
	if s == nil || s.interval == 0 || h == 0 || h%s.interval != 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil || s.ctx.Err() != nil {
		return
	}
	if s.running {
		s.log.Debug("skipping a snapshot: the previous one is still being written", "height", h, "writing", s.pin)
		return
	}
	s.running, s.pin = true, h
	ctx, prio := s.ctx, st.Priorities
	s.goRun(func() error {
		run := s.take(ctx, h)
		held := s.snaps.List()
		s.mu.Lock()
		s.running, s.pin, s.last = false, 0, run
		if run.Err == nil && prio != nil {
			s.prios[h] = prio
		}
		var dropped []uint64
		for k := range s.prios {
			if !slices.ContainsFunc(held, func(in snapshot.Info) bool { return in.Height == k }) {
				delete(s.prios, k)
				dropped = append(dropped, k)
			}
		}
		s.mu.Unlock()
		if run.Err == nil && prio != nil {
			if err := durable.WriteFile(s.prioritiesFile(h), prio.Encode(), 0o600); err != nil {
				s.log.Warn("writing the proposer priorities of a snapshot", "height", h, "err", err)
			}
		}
		for _, k := range dropped {
			if err := os.Remove(s.prioritiesFile(k)); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("removing the proposer priorities of a dropped snapshot", "height", k, "err", err)
			}
		}
		return nil // a failed snapshot is logged; the node goes on
	})
}

// take writes the snapshot of height h and logs what it did.
func (s *snapshotter) take(ctx context.Context, h uint64) snapshotRun {
	start := time.Now()
	run := snapshotRun{Height: h}
	appHash, err := s.ledger.AppHash(h)
	if err != nil {
		run.Err = fmt.Errorf("snapshot of height %d: %w", h, err)
	} else {
		var src snapshot.Source = s.ledger.StateTree()
		if s.source != nil {
			src = s.source(src)
		}
		var m *snapshot.Manifest
		m, run.Err = s.snaps.Create(ctx, src, store.StateVersion(h), h, appHash)
		if run.Err == nil {
			run.Chunks, run.Bytes = len(m.Chunks), m.TotalBytes()
		}
	}
	run.Took = time.Since(start)
	switch {
	case run.Err == nil:
		s.log.Info("snapshot taken", "height", h, "chunks", run.Chunks, "bytes", run.Bytes, "took", run.Took)
	case errors.Is(run.Err, snapshot.ErrBusy):
		s.log.Debug("skipping a snapshot: another is being written", "height", h)
	case ctx.Err() != nil:
		s.log.Debug("snapshot abandoned: the node is stopping", "height", h)
	default:
		s.log.Error("taking a snapshot", "height", h, "err", run.Err)
	}
	return run
}

// priorities returns the proposer priorities of height h+1 recorded with
// the snapshot at h, if this process took it.
func (s *snapshotter) priorities(h uint64) (*ledger.ProposerPriorities, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.prios[h]
	return p, ok
}

// encodedPriorities returns the encoded proposer priorities of height
// h+1 recorded with the snapshot at h, as the snapshot protocol serves
// them, or an error wrapping p2p.ErrNotFound.
func (s *snapshotter) encodedPriorities(h uint64) ([]byte, error) {
	p, ok := s.priorities(h)
	if !ok {
		return nil, fmt.Errorf("proposer priorities of the snapshot at %d: %w", h, p2p.ErrNotFound)
	}
	return p.Encode(), nil
}

// lastRun returns what the last finished snapshot did.
func (s *snapshotter) lastRun() snapshotRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// offers lists the snapshots held, newest first, as the snapshot protocol
// offers them.
func (s *snapshotter) offers() []p2p.SnapshotOffer {
	list := s.snaps.List()
	out := make([]p2p.SnapshotOffer, 0, min(len(list), p2p.MaxSnapshotOffers))
	for i := len(list) - 1; i >= 0 && len(out) < p2p.MaxSnapshotOffers; i-- {
		in := list[i]
		if in.Chunks < 1 || in.Chunks > p2p.MaxSnapshotChunks {
			continue
		}
		out = append(out, p2p.SnapshotOffer{Height: in.Height, Format: snapshot.Format, Chunks: uint32(in.Chunks), ManifestHash: in.ID})
	}
	return out
}

// manifest returns the encoded manifest of the snapshot at height.
func (s *snapshotter) manifest(height uint64) ([]byte, error) {
	m, err := s.snaps.Manifest(height)
	if errors.Is(err, snapshot.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", p2p.ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	return m.Encode(), nil
}

// chunk returns chunk index of the snapshot at height, as stored (the
// store checks it against its manifest before serving it).
func (s *snapshotter) chunk(height uint64, index uint32) ([]byte, error) {
	if index > p2p.MaxSnapshotChunks {
		return nil, fmt.Errorf("%w: chunk %d", p2p.ErrNotFound, index)
	}
	b, err := s.snaps.Chunk(height, int(index))
	if errors.Is(err, snapshot.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", p2p.ErrNotFound, err)
	}
	return b, err
}
