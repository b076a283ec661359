package store

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/statetree"
	"github.com/ledgerd/ledgerd/wire"
)

// A restore (state sync) fills an empty store from a snapshot of the
// state after height H, then adds what the snapshot does not carry:
//
//  1. BeginRestore writes a marker (synced) naming H, the app hash and
//     the genesis. From then until FinishRestore the store is a
//     half-restored one: Init refuses it with ErrRestoreIncomplete.
//  2. Restore.ImportChunk writes each verified chunk: its part of the
//     state tree at version(H), and its accounts, records and evidence
//     into the flat indexes execution reads. Restore.FinishImport joins
//     the parts into the root and checks it against the app hash. These
//     writes are not synced one by one.
//  3. FinishRestore writes the state record, the validator sets of H,
//     H+1 and H+2, block H with its commit, the base height and the
//     genesis hash, and removes the marker, in one synced batch (which
//     also makes every earlier write durable: LevelDB's log is ordered).
//
// A crash anywhere before step 3 completes leaves the marker in place. A
// new BeginRestore then deletes everything the store holds and starts
// over; the operator only needs to run state sync again.
var (
	keyRestore = []byte("m/restore") // restore marker: H, app hash, genesis hash
	keyBase    = []byte("m/base")    // lowest height whose block the store holds, when not 1
)

var (
	// ErrRestoreIncomplete is returned by Init for a store that a state
	// sync restore began filling but did not finish (BeginRestore without
	// FinishRestore): it holds part of a state and no chain.
	ErrRestoreIncomplete = errors.New("store: holds a state sync restore that did not finish; run state sync again to start it over (or remove the data directory)")
	// ErrNotEmpty is returned by BeginRestore for a store that holds a
	// chain: state sync only fills an empty store.
	ErrNotEmpty = errors.New("store: holds a chain already; state sync needs an empty store")
)

// restoreMarker is what BeginRestore records.
type restoreMarker struct {
	height      uint64
	appHash     crypto.Hash
	genesisHash crypto.Hash
}

const restoreMarkerVersion = 1

func (m restoreMarker) encode() []byte {
	w := wire.NewWriter(make([]byte, 0, 1+8+2*crypto.HashSize))
	w.U8(restoreMarkerVersion)
	w.U64(m.height)
	w.Fixed(m.appHash[:])
	w.Fixed(m.genesisHash[:])
	return w.Bytes()
}

func decodeRestoreMarker(b []byte) (restoreMarker, error) {
	r := wire.NewReader(b)
	var m restoreMarker
	r.Version("restore marker", restoreMarkerVersion)
	m.height = r.U64()
	r.Fixed(m.appHash[:])
	r.Fixed(m.genesisHash[:])
	return m, r.Finish("restore marker")
}

// readRestoreMarker returns the marker and true when a restore is under
// way (or was interrupted).
func (s *Store) readRestoreMarker() (restoreMarker, bool, error) {
	b, err := s.db.Get(keyRestore)
	switch {
	case errors.Is(err, kv.ErrNotFound):
		return restoreMarker{}, false, nil
	case err != nil:
		return restoreMarker{}, false, fmt.Errorf("read restore marker: %w", err)
	}
	m, err := decodeRestoreMarker(b)
	if err != nil {
		return restoreMarker{}, false, err
	}
	return m, true, nil
}

// RestoreUnderway reports whether the store holds a restore that began
// and did not finish, and the height it was restoring: the node tells the
// operator, or starts state sync over.
func (s *Store) RestoreUnderway() (height uint64, underway bool, err error) {
	m, ok, err := s.readRestoreMarker()
	return m.height, ok, err
}

// Restore writes a snapshot of the state after one height into the
// store. It implements snapshot.Importer. It is used by one restorer at
// a time, before the store is initialised; FinishRestore completes it.
type Restore struct {
	s       *Store
	marker  restoreMarker
	version uint64
}

// BeginRestore starts a restore of the state after height, whose root is
// appHash, on the chain of genesisHash. The store must be empty, or hold
// an unfinished restore, which it deletes first (whatever its height):
// anything else fails with ErrNotEmpty.
func (s *Store) BeginRestore(height uint64, appHash, genesisHash crypto.Hash) (*Restore, error) {
	if height == 0 {
		return nil, errors.New("store: restore at height 0 (start from genesis instead)")
	}
	if s.State() != nil {
		return nil, ErrNotEmpty
	}
	_, underway, err := s.readRestoreMarker()
	if err != nil {
		return nil, fmt.Errorf("begin restore: %w", err)
	}
	if !underway {
		var first []byte
		if err := s.db.Iterate(nil, func(k, _ []byte) bool { first = bytes.Clone(k); return false }); err != nil {
			return nil, fmt.Errorf("begin restore: %w", err)
		}
		if first != nil {
			return nil, fmt.Errorf("%w (it holds key %q)", ErrNotEmpty, first)
		}
	} else if err := s.wipe(); err != nil {
		return nil, fmt.Errorf("begin restore: clear the unfinished restore: %w", err)
	}
	m := restoreMarker{height: height, appHash: appHash, genesisHash: genesisHash}
	b := s.db.NewBatch()
	b.Put(keyRestore, m.encode())
	if err := s.db.Write(b, true); err != nil {
		return nil, fmt.Errorf("begin restore: write marker: %w", err)
	}
	return &Restore{s: s, marker: m, version: version(height)}, nil
}

// wipeBatch bounds the deletions of one batch while a store is cleared.
const wipeBatch = 10_000

// wipe deletes every key of the store, in bounded batches, the last one
// synced. The restore marker goes last, so a crash meanwhile leaves a
// store that is still marked half-restored.
func (s *Store) wipe() error {
	for {
		var keys [][]byte
		err := s.db.Iterate(nil, func(k, _ []byte) bool {
			if !bytes.Equal(k, keyRestore) {
				keys = append(keys, bytes.Clone(k))
			}
			return len(keys) < wipeBatch
		})
		if err != nil {
			return err
		}
		b := s.db.NewBatch()
		for _, k := range keys {
			b.Delete(k)
		}
		if len(keys) < wipeBatch {
			b.Delete(keyRestore)
			return s.db.Write(b, true)
		}
		if err := s.db.Write(b, false); err != nil {
			return err
		}
	}
}

// ImportChunk writes one verified chunk: the leaves as the state tree's
// subtree at depth under prefix, at the restored version, and each leaf
// into its flat index, by the kind its meta names (see flatKey). The
// write is not synced; FinishRestore's is.
func (r *Restore) ImportChunk(depth int, prefix [32]byte, leaves []statetree.Leaf) (statetree.SubtreeRef, error) {
	b := r.s.db.NewBatch()
	for _, l := range leaves {
		k, err := flatKey(l)
		if err != nil {
			return statetree.SubtreeRef{}, fmt.Errorf("restore: %w", err)
		}
		b.Put(k, l.Value)
	}
	ref, err := r.s.tree.ImportSubtree(b, r.version, depth, prefix, leaves)
	if err != nil {
		return statetree.SubtreeRef{}, fmt.Errorf("restore: %w", err)
	}
	if err := r.s.db.Write(b, false); err != nil {
		return statetree.SubtreeRef{}, fmt.Errorf("restore: write part at depth %d, prefix %x: %w", depth, prefix, err)
	}
	return ref, nil
}

// FinishImport joins the imported parts into the tree's root and writes
// the top of the tree, if the root is the app hash BeginRestore was
// given; otherwise it writes nothing and fails.
func (r *Restore) FinishImport(parts []statetree.SubtreeRef) ([32]byte, error) {
	b := r.s.db.NewBatch()
	root, err := r.s.tree.FinishImport(b, r.version, parts)
	if err != nil {
		return root, fmt.Errorf("restore: %w", err)
	}
	if root != r.marker.appHash {
		return root, fmt.Errorf("restore: the imported tree's root is %x, the app hash %s", root, r.marker.appHash)
	}
	if err := r.s.db.Write(b, false); err != nil {
		return root, fmt.Errorf("restore: write the top of the tree: %w", err)
	}
	return root, nil
}

// flatKey returns the flat index key of a snapshot leaf, from its meta
// (its key's preimage, see ledger.LeafKeyOf): an account's address
// (a/address), a state record's natural key (k/natural key), or a
// committed evidence key (e/key). It checks that the meta is the preimage
// of the leaf's key, so that a leaf is never indexed under a key other
// than the one the state tree proves.
func flatKey(l statetree.Leaf) ([]byte, error) {
	key, err := ledger.LeafKeyOf(l.Meta)
	if err != nil {
		return nil, fmt.Errorf("leaf %x: %w", l.Key, err)
	}
	if key != l.Key {
		return nil, fmt.Errorf("leaf %x: its meta is the preimage of %x", l.Key, key)
	}
	switch body := l.Meta[1:]; l.Meta[0] {
	case ledger.MetaAccount:
		return accountKey(crypto.Address(body)), nil
	case ledger.MetaRecord:
		return recordKey(body), nil
	case ledger.MetaEvidence:
		return append(bytes.Clone(prefixEvidence), body...), nil
	}
	// LeafKeyOf knows a kind this store does not index.
	return nil, fmt.Errorf("leaf %x: meta kind %#x has no flat index", l.Key, l.Meta[0])
}

// FinishRestore completes a restore whose tree FinishImport built: st is
// the state after block b (height H), c the commit that decided b. It
// checks that they fit together and with the restore (st.AppHash is the
// imported root, b is st's last block, c is a valid commit of b by
// st.LastValidators, and b's header names the sets of H and H+1), then
// writes, in one synced batch, the state record, the validator sets of
// H, H+1 and H+2, block H and its commit, the base height H and the
// genesis hash, and removes the restore marker. The store is then
// initialised at H, and Init opens it like any other.
//
// What st holds besides the app hash is not in the snapshot: the caller
// takes it from verified headers (see the package snapshot's doc): the
// sets of H+1 and H+2 are bound by header H+1's ValidatorsHash and
// NextValidatorsHash, and the proposer priorities must be those of H+1
// and H+2 (checked here only for consistency with each other).
func (s *Store) FinishRestore(st *ledger.State, b *ledger.Block, c *ledger.Commit) error {
	m, underway, err := s.readRestoreMarker()
	if err != nil {
		return fmt.Errorf("finish restore: %w", err)
	}
	if !underway {
		return errors.New("finish restore: no restore under way")
	}
	if err := checkRestoredState(st, m, b, c); err != nil {
		return fmt.Errorf("finish restore at height %d: %w", m.height, err)
	}
	root, err := s.tree.Root(version(m.height))
	if err != nil {
		return fmt.Errorf("finish restore at height %d: the imported tree: %w", m.height, err)
	}
	if root != st.AppHash {
		return fmt.Errorf("finish restore at height %d: the imported tree's root is %x, the state's app hash %s", m.height, root, st.AppHash)
	}
	h := m.height
	batch := s.db.NewBatch()
	if err := putState(batch, st); err != nil {
		return fmt.Errorf("finish restore: %w", err)
	}
	batch.Put(valsKey(h), st.LastValidators.Encode())
	batch.Put(valsKey(h+1), st.Validators.Encode())
	batch.Put(valsKey(h+2), st.NextValidators.Encode())
	hk := heightKey(h)
	id := b.Hash()
	batch.Put(append(bytes.Clone(prefixBlock), hk...), b.Encode())
	batch.Put(append(bytes.Clone(prefixCommit), hk...), c.Encode())
	batch.Put(append(bytes.Clone(prefixHash), id[:]...), hk)
	batch.Put(keyBase, hk)
	batch.Put(keyGenesisHash, m.genesisHash[:])
	batch.Delete(keyRestore)
	if err := s.db.Write(batch, true); err != nil {
		return fmt.Errorf("finish restore at height %d: write: %w", h, err)
	}
	s.base.Store(h)
	s.setState(st.Copy())
	return nil
}

// checkRestoredState checks what FinishRestore can of st, b and c.
func checkRestoredState(st *ledger.State, m restoreMarker, b *ledger.Block, c *ledger.Commit) error {
	h := m.height
	switch {
	case st.Height != h:
		return fmt.Errorf("state of height %d", st.Height)
	case st.AppHash != m.appHash:
		return fmt.Errorf("state app hash %s, the restore's %s", st.AppHash, m.appHash)
	case st.LastValidators == nil || st.Validators == nil || st.NextValidators == nil:
		return errors.New("state without its validator sets")
	case st.Priorities == nil || st.NextPriorities == nil:
		return errors.New("state without proposer priorities")
	case b.Height() != h:
		return fmt.Errorf("block of height %d", b.Height())
	case b.Header.ChainID != st.ChainID:
		return fmt.Errorf("block of chain %q, state of %q", b.Header.ChainID, st.ChainID)
	case b.Hash() != st.LastBlockHash:
		return fmt.Errorf("block %s, the state's last block %s", b.Hash(), st.LastBlockHash)
	case b.Header.Time != st.LastBlockTime:
		return errors.New("the block's time is not the state's last block time")
	case b.Header.ValidatorsHash != st.LastValidators.Hash():
		return errors.New("the block's validators hash is not the hash of the state's last validators")
	case b.Header.NextValidatorsHash != st.Validators.Hash():
		return errors.New("the block's next validators hash is not the hash of the state's validators")
	}
	if err := c.Verify(st.ChainID, st.LastValidators, h, b.Hash()); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if _, err := ledger.DecodeProposerPriorities(st.Validators, st.Priorities.Encode()); err != nil {
		return fmt.Errorf("priorities of height %d: %w", h+1, err)
	}
	if !st.NextPriorities.Equal(st.Priorities.Next(st.NextValidators)) {
		return fmt.Errorf("priorities of height %d are not those of height %d carried one height on", h+2, h+1)
	}
	return nil
}

// Base is the lowest height whose block the store holds: 1 on a store
// started from genesis (the blocks below are never absent), the snapshot
// height on a store that state sync restored, 0 before Init. Blocks,
// commits, the transaction index and account histories below it are
// absent, and reads of them return ErrNotFound; the state below it is
// not kept.
func (s *Store) Base() uint64 { return s.base.Load() }

// loadBase reads the base height a restore recorded, 1 when there is
// none (the store started from genesis).
func (s *Store) loadBase() (uint64, error) {
	b, err := s.db.Get(keyBase)
	switch {
	case errors.Is(err, kv.ErrNotFound):
		return 1, nil
	case err != nil:
		return 0, fmt.Errorf("read base height: %w", err)
	}
	return decodeBase(b)
}

// decodeBase reads the base height record: 8 bytes, big-endian, at
// least 1.
func decodeBase(b []byte) (uint64, error) {
	r := wire.NewReader(b)
	h := r.U64()
	if err := r.Finish("base height"); err != nil {
		return 0, err
	}
	if h == 0 {
		return 0, errors.New("decode base height: 0")
	}
	return h, nil
}

// StateTree returns the store's state tree, for reading retained versions
// (the snapshot producer's Partition and Leaves). Writes go through Apply
// and restores only.
func (s *Store) StateTree() *statetree.Tree { return s.tree }

// StateVersion is the state tree version that holds the state after
// height: the version a snapshot of that height reads.
func StateVersion(height uint64) uint64 { return version(height) }
