package statetree

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/ledgerd/ledgerd/ledger/kv"
)

// MaxValueSize bounds a value's length.
const MaxValueSize = 1 << 20

// MaxMetaSize bounds a leaf's Meta.
const MaxMetaSize = 256

// DefaultCacheBytes is the node cache budget New uses unless told otherwise.
// It holds the top 18 levels of the tree (up to 262,143 nodes, everything
// down to depth 17; a tree of 1,000,000 random keys has its leaves around
// depth 20) plus up to about 130,000 other recently used nodes.
const DefaultCacheBytes = 128 << 20

var (
	// ErrVersionNotFound is returned for a version that was never committed
	// (or whose batch was not written yet).
	ErrVersionNotFound = errors.New("statetree: version not found")
	// ErrVersionExists is returned by Commit when next is already recorded.
	ErrVersionExists = errors.New("statetree: version already committed")
	// ErrVersionOrder is returned by Commit when next is not above base, or
	// base is not the latest version: history is linear.
	ErrVersionOrder = errors.New("statetree: next version must be greater than base, and base the latest version")
	// ErrVersionPruned is returned for a version below Oldest: its nodes
	// may be gone. A read that races with Prune and finds a node missing
	// reports it too.
	ErrVersionPruned = errors.New("statetree: version pruned")
	// ErrEmptyValue is returned by Commit for a zero-length, non-nil value.
	// Present values are never empty, so a nil value always means absent.
	ErrEmptyValue = errors.New("statetree: empty value (use nil to delete)")
	// ErrValueTooLarge is returned by Commit for a value over MaxValueSize.
	ErrValueTooLarge = errors.New("statetree: value too large")
	// ErrMetaTooLarge is returned for a Meta over MaxMetaSize.
	ErrMetaTooLarge = errors.New("statetree: meta too large")
	// ErrCorrupt is returned when the store holds a node or root that is
	// missing, malformed or does not match its hash.
	ErrCorrupt = errors.New("statetree: corrupt store")
	// ErrOldLayout is returned by every operation on a store that holds a
	// state tree in the hash-keyed layout this package used before issue 12.
	// That layout cannot be read; the node must resync its state.
	ErrOldLayout = errors.New("statetree: state tree written by an older layout; resync the node")
)

// errNodeMissing marks a node absent from the store, which a reader turns
// into ErrVersionPruned when pruning removed it.
var errNodeMissing = errors.New("node missing")

// Change sets Key to Value in a commit; a nil Value deletes Key.
type Change struct {
	Key   [32]byte
	Value []byte
	// Meta is opaque bytes kept with the leaf (not hashed), at most
	// MaxMetaSize bytes, typically the key's preimage (an address, a
	// record's natural key) so that snapshots can be restored into the
	// ledger's flat indexes. A nil Meta on an existing key keeps its old
	// Meta; a non-nil one, even empty, replaces it. A new key with a nil
	// Meta has none.
	Meta []byte
}

// Tree is the versioned Merkle map over a kv store. It holds no mutable
// state besides a bounded cache of immutable nodes, so any number of
// goroutines may read (Root, Get, Prove, Partition, Leaves) while another
// commits and another prunes.
type Tree struct {
	db     kv.Reader
	prefix []byte
	cache  *nodeCache
	// layoutOK is set once the store was seen free of the old layout.
	layoutOK atomic.Bool
}

// Option configures a Tree.
type Option func(*Tree)

// WithCacheBytes sets the node cache budget in bytes; 0 disables the cache.
func WithCacheBytes(n int) Option {
	return func(t *Tree) { t.cache = newNodeCache(n) }
}

// New returns the tree stored in db under prefix. Every key the tree reads
// or writes starts with prefix, so the tree can share db with other stores.
// New reads nothing; the first operation checks the store's layout and
// fails with ErrOldLayout on a tree written by an older layout.
func New(db kv.Reader, prefix []byte, opts ...Option) *Tree {
	t := &Tree{db: db, prefix: slices.Clone(prefix), cache: newNodeCache(DefaultCacheBytes)}
	for _, o := range opts {
		o(t)
	}
	return t
}

// checkLayout fails with ErrOldLayout when the store holds keys of the
// hash-keyed layout (p || 'n' || hash, p || 'r' || version), or the latest
// record of this layout's first cut (p || 'L').
func (t *Tree) checkLayout() error {
	if t.layoutOK.Load() {
		return nil
	}
	for _, tag := range []byte{tagOldNode, tagOldRoot, tagOldLatest} {
		found := false
		if err := t.db.Iterate(t.recordKey(tag), func(_, _ []byte) bool { found = true; return false }); err != nil {
			return fmt.Errorf("statetree: check layout: %w", err)
		}
		if found {
			return fmt.Errorf("%w (found keys under %q)", ErrOldLayout, append(slices.Clone(t.prefix), tag))
		}
	}
	t.layoutOK.Store(true)
	return nil
}

// readVersion reads a version-valued record (Oldest, Latest, the floor),
// 0 when absent.
func (t *Tree) readVersion(tag byte) (uint64, error) {
	if err := t.checkLayout(); err != nil {
		return 0, err
	}
	b, err := t.db.Get(t.recordKey(tag))
	switch {
	case errors.Is(err, kv.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("statetree: read record %q: %w", tag, err)
	case len(b) != 8:
		return 0, fmt.Errorf("%w: record %q has %d bytes, want 8", ErrCorrupt, tag, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// Oldest returns the oldest retained version: every version from it to
// Latest that was committed can be read, and none below it. It is 0 until
// the first Prune (or import), version 0 being the empty tree.
func (t *Tree) Oldest() (uint64, error) { return t.readVersion(tagOldest) }

// Latest returns the newest committed version, 0 if none.
func (t *Tree) Latest() (uint64, error) { return t.readVersion(tagLatest) }

// pruned reports whether version is below Oldest, and if so an error
// wrapping ErrVersionPruned.
func (t *Tree) pruned(version uint64) error {
	oldest, err := t.Oldest()
	if err != nil {
		return err
	}
	if version < oldest {
		return fmt.Errorf("%w: version %d, oldest retained %d", ErrVersionPruned, version, oldest)
	}
	return nil
}

// explain turns an error from reading version's nodes into
// ErrVersionPruned when a node was missing because pruning removed it
// meanwhile (Prune records the new Oldest before it deletes anything).
func (t *Tree) explain(version uint64, err error) error {
	if errors.Is(err, errNodeMissing) {
		if perr := t.pruned(version); perr != nil {
			return perr
		}
	}
	return err
}

// rootRef returns the reference to version's root.
func (t *Tree) rootRef(version uint64) (ref, error) {
	if err := t.pruned(version); err != nil {
		return ref{}, err
	}
	b, err := t.db.Get(t.rootKey(version))
	switch {
	case errors.Is(err, kv.ErrNotFound):
		if err := t.pruned(version); err != nil {
			return ref{}, err // pruned since the check above
		}
		if version == 0 {
			return emptyRef, nil
		}
		return ref{}, fmt.Errorf("%w: %d", ErrVersionNotFound, version)
	case err != nil:
		return ref{}, fmt.Errorf("statetree: read root of version %d: %w", version, err)
	}
	r, err := decodeRootRecord(version, b)
	if err != nil {
		return ref{}, fmt.Errorf("%w: version %d: %w", ErrCorrupt, version, err)
	}
	return r, nil
}

// Root returns the root hash of a committed version. Version 0 is the empty
// tree (EmptyRoot) and exists unless pruned. A version whose batch has not
// been written yields ErrVersionNotFound, one below Oldest ErrVersionPruned.
func (t *Tree) Root(version uint64) ([32]byte, error) {
	r, err := t.rootRef(version)
	return r.hash, err
}

// load returns the node r refers to, which sits at depth on path's way
// down, or nil for the empty subtree. keep says whether to cache it.
func (t *Tree) load(r ref, depth int, path [32]byte, keep bool) (*node, error) {
	if r.kind == kindEmpty {
		return nil, nil
	}
	if n := t.cache.get(r.version, r.hash, depth, path); n != nil {
		return n, nil
	}
	b, err := t.db.Get(t.nodeKey(r.version, depth, path))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w: %s node %x of version %d at depth %d", ErrCorrupt, errNodeMissing, r.kind, r.hash, r.version, depth)
	}
	if err != nil {
		return nil, fmt.Errorf("statetree: read node %x: %w", r.hash, err)
	}
	n, err := decodeNode(b)
	if err == nil {
		err = checkNode(n, r, depth, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: node %x of version %d at depth %d: %w", ErrCorrupt, r.hash, r.version, depth, err)
	}
	n.version = r.version
	if keep {
		t.cache.add(n, depth, path)
	}
	return n, nil
}

// Get returns the value of key in version, or nil if key is absent. The
// returned slice is the caller's own.
func (t *Tree) Get(version uint64, key [32]byte) ([]byte, error) {
	v, _, err := t.walk(version, key, false)
	return v, err
}

// Prove returns the value of key in version (nil if absent) and a proof of
// that answer against Root(version), which Verify checks.
func (t *Tree) Prove(version uint64, key [32]byte) ([]byte, *Proof, error) {
	return t.walk(version, key, true)
}

// walk descends from the root of version along key's path to a leaf or an
// empty subtree, collecting the siblings when prove is set.
func (t *Tree) walk(version uint64, key [32]byte, prove bool) ([]byte, *Proof, error) {
	r, err := t.rootRef(version)
	if err != nil {
		return nil, nil, err
	}
	var p *Proof
	if prove {
		p = &Proof{}
	}
	for depth := 0; ; depth++ {
		n, err := t.load(r, depth, key, true)
		if err != nil {
			return nil, nil, t.explain(version, err)
		}
		if n == nil {
			return nil, p, nil
		}
		if n.leaf {
			if prove {
				p.Leaf = &ProofLeaf{Key: n.key, ValueHash: n.valueHash}
			}
			if n.key != key {
				return nil, p, nil
			}
			return slices.Clone(n.value), p, nil
		}
		sib := n.right
		r = n.left
		if bit(key, depth) == 1 {
			r, sib = n.right, n.left
		}
		if prove {
			p.Siblings = append(p.Siblings, sib.hash)
		}
	}
}
