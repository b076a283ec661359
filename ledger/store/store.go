// Package store persists the ledger: blocks by height and hash, the commit
// of every height, a transaction index, and the account state with its
// Merkle commitment, all in one kv.DB.
//
// A block, its commit, its index entries and the state it produces are
// written in one synced batch, so after a crash the store holds either the
// whole height or none of it, and the previous height stays intact.
package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/statetree"
	"github.com/ledgerd/ledgerd/wire"
)

// Key layout. Heights are 8-byte big-endian so blocks iterate in order.
var (
	prefixBlock    = []byte("b/") // height -> block
	prefixHash     = []byte("h/") // block hash -> height
	prefixCommit   = []byte("c/") // height -> commit that decided the block
	prefixTx       = []byte("t/") // tx hash -> height, index
	prefixTree     = []byte("s/") // state commitment nodes
	prefixAccount  = []byte("a/") // address -> latest account (flat index for execution)
	prefixEvidence = []byte("e/") // evidence key -> height committed (flat index)
	prefixAcctTx   = []byte("x/") // address, height, index -> tx hash (both sender and recipient)
	prefixRecord   = []byte("k/") // natural key -> latest state record (flat index for execution)
	prefixVals     = []byte("v/") // ^height (big-endian) -> validator set from that height on
	prefixTxError  = []byte("f/") // tx hash -> why the committed transaction failed (its receipt's error)
	keyState       = []byte("m/state")
	keyGenesisHash = []byte("m/genesis")
)

// ErrNotFound is returned for a height, hash or transaction the store does not hold.
var ErrNotFound = errors.New("not found")

// Store is the ledger's persistent store. Reads are safe concurrently with
// Apply; a reader sees either the old or the new height, never a mix.
type Store struct {
	db   kv.DB
	tree *statetree.Tree

	mu    sync.RWMutex
	state *ledger.State // latest committed state, nil before genesis

	// base is the lowest height whose block the store holds (see Base),
	// 0 until Init or FinishRestore.
	base atomic.Uint64

	// writing is held while a height is written; seq counts the writes
	// begun and ended (odd while one is under way). ReadLatest uses them
	// to see the flat indexes of one height.
	writing sync.RWMutex
	seq     atomic.Uint64

	// verified, when set, reports transactions whose signatures the node
	// already checked (see ledger.VerifiedTxs).
	verified func(crypto.Hash) bool

	// validated caches the execution of the last block Validate accepted,
	// so that Apply of the decided block does not execute it a second time.
	validated struct {
		sync.Mutex
		height uint64
		id     crypto.Hash
		res    *ledger.Result
	}
}

// TxLocation says where a committed transaction sits.
type TxLocation struct {
	Height uint64 `json:"height,string"`
	Index  uint32 `json:"index"`
}

// encodeLocation is l as the tx index stores it and account tx keys end:
// height (8 bytes) then index (4), big-endian, so keys sort by position.
func encodeLocation(l TxLocation) []byte {
	w := wire.NewWriter(make([]byte, 0, 12))
	w.U64(l.Height)
	w.U32(l.Index)
	return w.Bytes()
}

// decodeLocation reads what encodeLocation wrote.
func decodeLocation(b []byte) (TxLocation, error) {
	r := wire.NewReader(b)
	l := TxLocation{Height: r.U64(), Index: r.U32()}
	return l, r.Finish("tx location")
}

// Next is the position right after l, where a page of AccountTxs that
// ended at l resumes.
func (l TxLocation) Next() TxLocation {
	if l.Index == math.MaxUint32 {
		return TxLocation{Height: l.Height + 1}
	}
	return TxLocation{Height: l.Height, Index: l.Index + 1}
}

// version maps a height to the state commitment's version: the genesis
// accounts are version 1 and the state after block h is version h+1, so
// version 0 stays the empty tree.
func version(height uint64) uint64 { return height + 1 }

// Open returns a store over db. Call Init before anything else.
func Open(db kv.DB) *Store {
	return &Store{db: db, tree: statetree.New(db, prefixTree)}
}

// Init loads the latest committed state, or on an empty store commits the
// genesis state and accounts as height 0. A store that state sync began
// to restore and did not finish is refused with ErrRestoreIncomplete. genesisHash identifies the
// genesis document; reopening a store made from a different genesis fails.
// genesis.Validators is the set of the first heights; records are the
// genesis state records (the staking state).
func (s *Store) Init(genesis *ledger.State, accounts []ledger.AccountUpdate, records []ledger.Record, genesisHash crypto.Hash) (*ledger.State, error) {
	if m, underway, err := s.readRestoreMarker(); err != nil {
		return nil, err
	} else if underway {
		return nil, fmt.Errorf("%w (height %d)", ErrRestoreIncomplete, m.height)
	}
	stored, err := s.db.Get(keyGenesisHash)
	switch {
	case err == nil:
		if string(stored) != string(genesisHash[:]) {
			return nil, fmt.Errorf("store was initialised from genesis %x, not %s", stored, genesisHash)
		}
		st, err := s.loadState()
		if err != nil {
			return nil, err
		}
		base, err := s.loadBase()
		if err != nil {
			return nil, err
		}
		s.base.Store(base)
		s.setState(st)
		return st.Copy(), nil
	case !errors.Is(err, kv.ErrNotFound):
		return nil, fmt.Errorf("read genesis hash: %w", err)
	}

	st := genesis.WithValidators(genesis.Validators)
	st.Height = 0
	var supply uint64
	changes := make([]statetree.Change, 0, len(accounts)+len(records))
	for _, a := range accounts {
		if supply+a.Account.Balance < supply {
			return nil, errors.New("genesis supply overflows")
		}
		supply += a.Account.Balance
		changes = append(changes, statetree.Change{Key: ledger.AccountKey(a.Address), Value: a.Account.Encode(), Meta: ledger.AccountMeta(a.Address)})
	}
	if genesis.TotalSupply != 0 && genesis.TotalSupply < supply {
		return nil, fmt.Errorf("genesis supply %d is below the sum of the balances %d", genesis.TotalSupply, supply)
	}
	if genesis.TotalSupply == 0 {
		st.TotalSupply = supply
	}
	b := s.db.NewBatch()
	for _, a := range accounts {
		b.Put(accountKey(a.Address), a.Account.Encode())
	}
	for _, r := range records {
		if r.Value == nil {
			continue
		}
		changes = append(changes, statetree.Change{Key: ledger.RecordKey(r.Key), Value: r.Value, Meta: ledger.RecordMeta(r.Key)})
		b.Put(recordKey(r.Key), r.Value)
	}
	b.Put(valsKey(1), st.Validators.Encode())
	root, err := s.tree.Commit(b, 0, version(0), changes)
	if err != nil {
		return nil, fmt.Errorf("commit genesis accounts: %w", err)
	}
	st.AppHash = root
	if err := putState(b, st); err != nil {
		return nil, err
	}
	b.Put(keyGenesisHash, genesisHash[:])
	if err := s.db.Write(b, true); err != nil {
		return nil, fmt.Errorf("write genesis: %w", err)
	}
	s.base.Store(1)
	s.setState(st)
	return st.Copy(), nil
}

// State returns a copy of the latest committed state.
func (s *Store) State() *ledger.State {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.state == nil {
		return nil
	}
	return s.state.Copy()
}

// Height is the latest committed height (0 before the first block).
func (s *Store) Height() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.state == nil {
		return 0
	}
	return s.state.Height
}

func (s *Store) setState(st *ledger.State) {
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
}

// Apply validates and executes block b with commit c on the latest state
// and writes the block, the commit, the transaction index and the new state
// in one synced batch. It returns the new state and the execution result.
// On any error nothing is written.
func (s *Store) Apply(b *ledger.Block, c *ledger.Commit) (*ledger.State, *ledger.Result, error) {
	s.mu.RLock()
	cur := s.state
	s.mu.RUnlock()
	if cur == nil {
		return nil, nil, errors.New("store: not initialised")
	}
	id := b.Hash()
	if err := c.Verify(cur.ChainID, cur.Validators, b.Height(), id); err != nil {
		return nil, nil, fmt.Errorf("block %d: commit: %w", b.Height(), err)
	}
	res := s.takeValidated(cur.Height, id)
	if res == nil {
		var err error
		if res, err = ledger.Execute(cur, s.latest(), b); err != nil {
			return nil, nil, err
		}
	}
	next, err := s.write(cur, b, c, id, res)
	if err != nil {
		return nil, nil, err
	}
	return next, res, nil
}

// SetVerifiedTxs installs f as the source of ledger.VerifiedTxs for block
// execution: transactions it vouches for are not verified again. Call it
// before the store is used concurrently.
func (s *Store) SetVerifiedTxs(f func(crypto.Hash) bool) { s.verified = f }

// Validate checks that b is a valid next block on the latest state (see
// ledger.Validate) and remembers the execution, which Apply reuses when
// the same block is decided at the same height.
func (s *Store) Validate(b *ledger.Block) error {
	s.mu.RLock()
	cur := s.state
	s.mu.RUnlock()
	if cur == nil {
		return errors.New("store: not initialised")
	}
	res, err := ledger.Execute(cur, s.latest(), b)
	if err != nil {
		return err
	}
	s.validated.Lock()
	s.validated.height, s.validated.id, s.validated.res = cur.Height, b.Hash(), res
	s.validated.Unlock()
	return nil
}

// takeValidated returns the cached execution of block id on the state at
// height, if Validate produced it.
func (s *Store) takeValidated(height uint64, id crypto.Hash) *ledger.Result {
	s.validated.Lock()
	defer s.validated.Unlock()
	if s.validated.res == nil || s.validated.height != height || s.validated.id != id {
		return nil
	}
	res := s.validated.res
	s.validated.res = nil
	return res
}

// write commits a block whose execution result is res.
func (s *Store) write(cur *ledger.State, b *ledger.Block, c *ledger.Commit, id crypto.Hash, res *ledger.Result) (*ledger.State, error) {
	h := b.Height()
	changes := make([]statetree.Change, 0, len(res.Accounts)+len(res.Evidence)+len(res.Records))
	batch := s.db.NewBatch()
	for _, r := range res.Records {
		changes = append(changes, statetree.Change{Key: ledger.RecordKey(r.Key), Value: r.Value, Meta: ledger.RecordMeta(r.Key)})
		if r.Value == nil {
			batch.Delete(recordKey(r.Key))
		} else {
			batch.Put(recordKey(r.Key), r.Value)
		}
	}
	if res.NextValidators != nil {
		batch.Put(valsKey(h+2), res.NextValidators.Encode())
	}
	for _, u := range res.Accounts {
		enc := u.Account.Encode()
		changes = append(changes, statetree.Change{Key: ledger.AccountKey(u.Address), Value: enc, Meta: ledger.AccountMeta(u.Address)})
		batch.Put(accountKey(u.Address), enc)
	}
	for _, k := range res.Evidence {
		rec := ledger.EvidenceRecord(h)
		changes = append(changes, statetree.Change{Key: k, Value: rec, Meta: ledger.EvidenceMeta(k)})
		batch.Put(append(append([]byte(nil), prefixEvidence...), k[:]...), rec)
	}
	root, err := s.tree.Commit(batch, version(cur.Height), version(h), changes)
	if err != nil {
		return nil, fmt.Errorf("block %d: update state commitment: %w", h, err)
	}
	next := cur.Next(b, res, root)

	hk := heightKey(h)
	batch.Put(append(prefixBlock, hk...), b.Encode())
	batch.Put(append(prefixCommit, hk...), c.Encode())
	batch.Put(append(prefixHash, id[:]...), hk)
	for _, r := range res.Receipts {
		loc := encodeLocation(TxLocation{Height: h, Index: r.Index})
		batch.Put(append(prefixTx, r.TxHash[:]...), loc)
		tx := b.Txs[r.Index]
		batch.Put(acctTxKey(tx.Sender(), loc), r.TxHash[:])
		if to, ok := tx.Counterparty(); ok {
			batch.Put(acctTxKey(to, loc), r.TxHash[:])
		}
		if r.Error != "" {
			batch.Put(txErrorKey(r.TxHash), []byte(clipReason(r.Error)))
		}
	}
	if err := putState(batch, next); err != nil {
		return nil, err
	}
	s.writing.Lock()
	s.seq.Add(1)
	err = s.db.Write(batch, true)
	if err == nil {
		s.setState(next)
	}
	s.seq.Add(1)
	s.writing.Unlock()
	if err != nil {
		return nil, fmt.Errorf("block %d: write: %w", h, err)
	}
	return next.Copy(), nil
}

// MaxTxErrorBytes bounds the reason a failed transaction's index entry
// keeps; a longer one is cut (at a character boundary).
const MaxTxErrorBytes = 512

// clipReason cuts s to at most MaxTxErrorBytes without splitting a
// UTF-8 sequence.
func clipReason(s string) string {
	if len(s) <= MaxTxErrorBytes {
		return s
	}
	s = s[:MaxTxErrorBytes]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

func txErrorKey(h crypto.Hash) []byte {
	return append(append(make([]byte, 0, len(prefixTxError)+len(h)), prefixTxError...), h[:]...)
}

func acctTxKey(a crypto.Address, loc []byte) []byte {
	k := make([]byte, 0, len(prefixAcctTx)+len(a)+len(loc))
	return append(append(append(k, prefixAcctTx...), a[:]...), loc...)
}

func accountKey(a crypto.Address) []byte {
	return append(append(make([]byte, 0, len(prefixAccount)+len(a)), prefixAccount...), a[:]...)
}

func recordKey(k []byte) []byte {
	return append(append(make([]byte, 0, len(prefixRecord)+len(k)), prefixRecord...), k...)
}

// valsKey is the key of the set that starts at height h. Heights are
// stored complemented, so that an ascending seek from valsKey(h) finds
// the latest start at or below h.
func valsKey(h uint64) []byte {
	return append(append(make([]byte, 0, len(prefixVals)+8), prefixVals...), heightKey(math.MaxUint64-h)...)
}

func heightKey(h uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, h)
	return k
}

// storedState is the persisted part of ledger.State (the validator sets
// are kept by height under prefixVals) with the proposer priorities of
// the next two heights, each in its canonical binary encoding (which names
// its set by hash and is bounded by it).
type storedState struct {
	ledger.State
	Priorities     []byte `json:"proposer_priorities"`
	NextPriorities []byte `json:"next_proposer_priorities"`
}

func putState(b kv.Batch, st *ledger.State) error {
	if st.Priorities == nil || st.NextPriorities == nil {
		return errors.New("encode state: no proposer priorities")
	}
	buf, err := json.Marshal(storedState{State: *st, Priorities: st.Priorities.Encode(), NextPriorities: st.NextPriorities.Encode()})
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	b.Put(keyState, buf)
	return nil
}

// maxStateRecord bounds the state record: the JSON fields are small, and
// each priorities encoding is at most 35 + 8 * MaxValidators bytes, under
// 11 kB, which base64 makes under 15 kB.
const maxStateRecord = 64 << 10

func (s *Store) loadState() (*ledger.State, error) {
	buf, err := s.db.Get(keyState)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	if len(buf) > maxStateRecord {
		return nil, fmt.Errorf("decode state: record of %d bytes, at most %d", len(buf), maxStateRecord)
	}
	var ss storedState
	if err := json.Unmarshal(buf, &ss); err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	st := ss.State
	for _, v := range []struct {
		h   uint64
		set **ledger.ValidatorSet
	}{{max(st.Height, 1), &st.LastValidators}, {st.Height + 1, &st.Validators}, {st.Height + 2, &st.NextValidators}} {
		vals, err := s.validatorsAt(v.h)
		if err != nil {
			return nil, err
		}
		*v.set = vals
	}
	if st.Priorities, err = ledger.DecodeProposerPriorities(st.Validators, ss.Priorities); err != nil {
		return nil, fmt.Errorf("state at height %d: priorities of height %d: %w", st.Height, st.Height+1, err)
	}
	if st.NextPriorities, err = ledger.DecodeProposerPriorities(st.NextValidators, ss.NextPriorities); err != nil {
		return nil, fmt.Errorf("state at height %d: priorities of height %d: %w", st.Height, st.Height+2, err)
	}
	if want := st.Priorities.Next(st.NextValidators); !st.NextPriorities.Equal(want) {
		return nil, fmt.Errorf("state at height %d: priorities of height %d are not those of height %d carried one height on", st.Height, st.Height+2, st.Height+1)
	}
	if st.Height > 0 {
		if _, err := s.db.Get(append(prefixBlock, heightKey(st.Height)...)); err != nil {
			return nil, fmt.Errorf("state at height %d but its block is unreadable: %w", st.Height, err)
		}
	}
	root, err := s.tree.Root(version(st.Height))
	if err != nil {
		return nil, fmt.Errorf("state commitment at height %d: %w", st.Height, err)
	}
	if root != st.AppHash {
		return nil, fmt.Errorf("state commitment at height %d is %s, state says %s", st.Height, crypto.Hash(root), st.AppHash)
	}
	return &st, nil
}
