package statetree

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/ledgerd/ledgerd/ledger/kv"
)

// Prune removes every node and root that only versions below keepFrom need.
// It first records keepFrom as the oldest version (atomically, in its first
// batch), then deletes in batches of at most maxOps deletions written to db
// one by one (not synced; it is garbage collection), so it can run in the
// background beside Commit (it never touches nodes of versions >= keepFrom),
// and it is crash safe: after a kill at any point, calling Prune again
// finishes the job and no retained version loses a node. keepFrom must be
// <= Latest(). It returns the number of nodes deleted. Pruning stops early
// when ctx is done.
//
// A keepFrom below the recorded Oldest prunes to Oldest instead (the oldest
// version never goes down), which is how a Prune cut off by a crash or by
// ctx is finished. Prune also removes what an import left below its
// version (see FinishImport). db must be the store the tree reads.
func (t *Tree) Prune(ctx context.Context, db kv.DB, keepFrom uint64, maxOps int) (int, error) {
	if maxOps < 1 {
		return 0, fmt.Errorf("statetree: prune with batches of %d deletions", maxOps)
	}
	latest, err := t.Latest()
	if err != nil {
		return 0, err
	}
	if keepFrom > latest {
		return 0, fmt.Errorf("%w: prune to version %d, above the latest version %d", ErrVersionNotFound, keepFrom, latest)
	}
	oldest, err := t.Oldest()
	if err != nil {
		return 0, err
	}
	if keepFrom > oldest {
		b := db.NewBatch()
		b.Put(t.recordKey(tagOldest), encodeU64(keepFrom))
		if err := db.Write(b, false); err != nil {
			return 0, fmt.Errorf("statetree: record oldest version %d: %w", keepFrom, err)
		}
		oldest = keepFrom
	}
	// Pruning up to done was finished by an earlier call: the stale
	// entries up to it and the roots below it are gone, so the scans
	// start there instead of wading through their tombstones.
	done, err := t.readVersion(tagPruned)
	if err != nil {
		return 0, err
	}
	p := pruner{t: t, db: db, ctx: ctx, max: maxOps, b: db.NewBatch()}
	if err := p.belowFloor(); err != nil {
		return p.nodes, err
	}
	if oldest <= done {
		return p.nodes, nil
	}
	if err := p.staleUpTo(done, oldest); err != nil {
		return p.nodes, err
	}
	if err := p.rootsBelow(done, oldest); err != nil {
		return p.nodes, err
	}
	p.b.Put(t.recordKey(tagPruned), encodeU64(oldest))
	return p.nodes, p.flush()
}

// pruner deletes in bounded batches.
type pruner struct {
	t     *Tree
	db    kv.DB
	ctx   context.Context
	max   int
	b     kv.Batch
	nodes int
}

// del queues a deletion, writing the batch when it is full.
func (p *pruner) del(key []byte) error {
	p.b.Delete(key)
	if p.b.Len() >= p.max {
		return p.flush()
	}
	return nil
}

// flush writes the queued deletions, unless ctx is done.
func (p *pruner) flush() error {
	if p.b.Len() == 0 {
		return nil
	}
	if err := p.ctx.Err(); err != nil {
		return fmt.Errorf("statetree: prune: %w", err)
	}
	if err := p.db.Write(p.b, false); err != nil {
		return fmt.Errorf("statetree: prune: write %d deletions: %w", p.b.Len(), err)
	}
	p.b = p.db.NewBatch()
	return nil
}

// scan calls fn for the keys under prefix from start on, in order, a page
// at a time, so that no iterator stays open across batch writes. fn
// returns whether to go on.
func (p *pruner) scan(prefix, start []byte, fn func(key, value []byte) (bool, error)) error {
	const page = 1024
	for {
		if err := p.ctx.Err(); err != nil {
			return fmt.Errorf("statetree: prune: %w", err)
		}
		type kv struct{ k, v []byte }
		var got []kv
		if err := p.db.IterateFrom(prefix, start, func(k, v []byte) bool {
			got = append(got, kv{bytes.Clone(k), bytes.Clone(v)})
			return len(got) < page
		}); err != nil {
			return fmt.Errorf("statetree: prune: scan: %w", err)
		}
		for _, e := range got {
			more, err := fn(e.k, e.v)
			if err != nil || !more {
				return err
			}
		}
		if len(got) < page {
			return nil
		}
		start = append(got[len(got)-1].k, 0) // the next key after the last
	}
}

// belowFloor deletes every node of a version below the floor an import
// set (all of them garbage: the imported version's nodes are all its own),
// then the floor record.
func (p *pruner) belowFloor() error {
	floor, err := p.t.readVersion(tagFloor)
	if err != nil || floor == 0 {
		return err
	}
	prefix := p.t.recordKey(tagNode)
	end := p.t.versionKey(tagNode, floor)
	err = p.scan(prefix, nil, func(k, _ []byte) (bool, error) {
		if bytes.Compare(k, end) >= 0 {
			return false, nil
		}
		p.nodes++
		return true, p.del(k)
	})
	if err != nil {
		return err
	}
	if err := p.del(p.t.recordKey(tagFloor)); err != nil {
		return err
	}
	return p.flush()
}

// staleUpTo deletes every node stale since a version after done and up to
// oldest, with its stale-index entry: such a node serves only versions
// below oldest. A node is deleted before (or with) its entry, so a crash
// leaves no node that the index has forgotten.
func (p *pruner) staleUpTo(done, oldest uint64) error {
	prefix := p.t.recordKey(tagStale)
	return p.scan(prefix, p.t.versionKey(tagStale, done+1), func(k, _ []byte) (bool, error) {
		since, position, err := parseStaleEntry(k[len(prefix):])
		if err != nil {
			return false, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if since > oldest {
			return false, nil
		}
		p.nodes++
		if err := p.del(p.t.nodeKeyFrom(position)); err != nil {
			return false, err
		}
		return true, p.del(k)
	})
}

// rootsBelow deletes the root records of versions from done up to oldest.
func (p *pruner) rootsBelow(done, oldest uint64) error {
	prefix := p.t.recordKey(tagRoot)
	return p.scan(prefix, p.t.versionKey(tagRoot, done), func(k, _ []byte) (bool, error) {
		if len(k) != len(prefix)+8 {
			return false, fmt.Errorf("%w: root key of %d bytes", ErrCorrupt, len(k))
		}
		if binary.BigEndian.Uint64(k[len(prefix):]) >= oldest {
			return false, nil
		}
		return true, p.del(k)
	})
}

// ErrImportConflict is returned by ImportSubtree and FinishImport when the
// store holds nodes of an unfinished import at a version above the one
// being imported, which later commits would collide with; AbortImport
// removes them.
var ErrImportConflict = errors.New("statetree: nodes of an unfinished import above this version (call AbortImport)")

// AbortImport deletes every node stored at a version above Latest: what an
// import that never finished left behind. It writes batches of at most
// maxOps deletions to db and returns the number of nodes deleted. It must
// not run while a commit or an import is under way (a state-sync restorer
// calls it before it starts).
func (t *Tree) AbortImport(ctx context.Context, db kv.DB, maxOps int) (int, error) {
	if maxOps < 1 {
		return 0, fmt.Errorf("statetree: abort import with batches of %d deletions", maxOps)
	}
	latest, err := t.Latest()
	if err != nil || latest == math.MaxUint64 {
		return 0, err
	}
	p := pruner{t: t, db: db, ctx: ctx, max: maxOps, b: db.NewBatch()}
	err = p.scan(t.recordKey(tagNode), t.versionKey(tagNode, latest+1), func(k, _ []byte) (bool, error) {
		p.nodes++
		return true, p.del(k)
	})
	if err != nil {
		return p.nodes, err
	}
	return p.nodes, p.flush()
}

// checkNoneAbove fails with ErrImportConflict when a node of a version
// above version is stored.
func (t *Tree) checkNoneAbove(version uint64) error {
	if version == math.MaxUint64 {
		return nil
	}
	found := false
	if err := t.db.IterateFrom(t.recordKey(tagNode), t.versionKey(tagNode, version+1), func(_, _ []byte) bool {
		found = true
		return false
	}); err != nil {
		return fmt.Errorf("statetree: import: %w", err)
	}
	if found {
		return fmt.Errorf("%w: importing version %d", ErrImportConflict, version)
	}
	return nil
}
