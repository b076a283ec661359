package store

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/statetree"
	"github.com/ledgerd/ledgerd/wire"
)

func (s *Store) get(key []byte, what string) ([]byte, error) {
	v, err := s.db.Get(key)
	if errors.Is(err, kv.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return v, nil
}

// Block returns the block at height.
func (s *Store) Block(height uint64) (*ledger.Block, error) {
	v, err := s.get(append(prefixBlock, heightKey(height)...), fmt.Sprintf("block %d", height))
	if err != nil {
		return nil, err
	}
	return ledger.DecodeBlock(v)
}

// BlockBytes returns the encoded block at height, for serving block sync
// without a decode and re-encode.
func (s *Store) BlockBytes(height uint64) ([]byte, error) {
	return s.get(append(prefixBlock, heightKey(height)...), fmt.Sprintf("block %d", height))
}

// BlockByHash returns the block with hash id.
func (s *Store) BlockByHash(id crypto.Hash) (*ledger.Block, error) {
	hk, err := s.get(append(prefixHash, id[:]...), "block "+id.String())
	if err != nil {
		return nil, err
	}
	r := wire.NewReader(hk)
	height := r.U64()
	if err := r.Finish("hash index entry"); err != nil {
		return nil, fmt.Errorf("block %s: %w", id, err)
	}
	return s.Block(height)
}

// Commit returns the commit that decided the block at height.
func (s *Store) Commit(height uint64) (*ledger.Commit, error) {
	v, err := s.get(append(prefixCommit, heightKey(height)...), fmt.Sprintf("commit %d", height))
	if err != nil {
		return nil, err
	}
	return ledger.DecodeCommit(v)
}

// TxLocation returns where the committed transaction with hash h sits.
func (s *Store) TxLocation(h crypto.Hash) (TxLocation, error) {
	v, err := s.get(append(prefixTx, h[:]...), "tx "+h.String())
	if err != nil {
		return TxLocation{}, err
	}
	loc, err := decodeLocation(v)
	if err != nil {
		return TxLocation{}, fmt.Errorf("tx %s: %w", h, err)
	}
	return loc, nil
}

// TxError returns why the committed transaction h failed: its receipt's
// error (a staking transaction the staking rules refused; it paid its fee
// and used its nonce). It is "" for a transaction that succeeded, and for
// one the store does not hold (TxLocation tells those apart).
func (s *Store) TxError(h crypto.Hash) (string, error) {
	v, err := s.db.Get(txErrorKey(h))
	if errors.Is(err, kv.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("tx %s: read its error: %w", h, err)
	}
	reason, err := decodeTxError(v)
	if err != nil {
		return "", fmt.Errorf("tx %s: error index entry: %w", h, err)
	}
	return reason, nil
}

// decodeTxError reads a failed transaction's index entry: 1 to
// MaxTxErrorBytes of UTF-8 text.
func decodeTxError(b []byte) (string, error) {
	switch {
	case len(b) == 0:
		return "", errors.New("empty reason")
	case len(b) > MaxTxErrorBytes:
		return "", fmt.Errorf("reason of %d bytes, at most %d", len(b), MaxTxErrorBytes)
	case !utf8.Valid(b):
		return "", errors.New("reason is not UTF-8")
	}
	return string(b), nil
}

// Tx returns the committed transaction with hash h and its location.
func (s *Store) Tx(h crypto.Hash) (*ledger.Tx, TxLocation, error) {
	loc, err := s.TxLocation(h)
	if err != nil {
		return nil, loc, err
	}
	b, err := s.Block(loc.Height)
	if err != nil {
		return nil, loc, err
	}
	if int(loc.Index) >= len(b.Txs) {
		return nil, loc, fmt.Errorf("tx %s: index %d beyond block %d", h, loc.Index, loc.Height)
	}
	return b.Txs[loc.Index], loc, nil
}

// Account returns addr's account in the state after height.
func (s *Store) Account(height uint64, addr crypto.Address) (ledger.Account, error) {
	a, err := s.reader(height).Account(addr)
	if err != nil {
		return ledger.Account{}, s.stateErr("account "+addr.String(), height, err)
	}
	return a, nil
}

// AccountProof returns addr's account after height (the zero Account when
// absent) with a proof against the app hash of that state, which is the
// AppHash in the header of block height+1.
func (s *Store) AccountProof(height uint64, addr crypto.Address) (ledger.Account, *statetree.Proof, error) {
	v, p, err := s.tree.Prove(version(height), ledger.AccountKey(addr))
	if err != nil {
		return ledger.Account{}, nil, s.stateErr("prove account "+addr.String(), height, err)
	}
	if v == nil {
		return ledger.Account{}, p, nil
	}
	a, err := ledger.DecodeAccount(v)
	return a, p, err
}

// AppHash returns the state commitment after height.
func (s *Store) AppHash(height uint64) (crypto.Hash, error) {
	r, err := s.tree.Root(version(height))
	if err != nil {
		return crypto.Hash{}, s.stateErr("app hash", height, err)
	}
	return crypto.Hash(r), nil
}

// Reader returns a ledger.StateReader over the latest committed state.
// Its reads are single key lookups in the flat account index.
func (s *Store) Reader() ledger.StateReader { return s.latest() }

func (s *Store) latest() ledger.StateReader {
	if s.verified != nil {
		return vouchingReader{flatReader{db: s.db}, s.verified}
	}
	return flatReader{db: s.db}
}

// vouchingReader adds ledger.VerifiedTxs to the flat reader.
type vouchingReader struct {
	flatReader
	verified func(crypto.Hash) bool
}

func (r vouchingReader) SignatureVerified(h crypto.Hash) bool { return r.verified(h) }

// reader reads the state after height through the versioned commitment.
func (s *Store) reader(height uint64) stateReader {
	return stateReader{tree: s.tree, version: version(height)}
}

// flatReader reads the latest state from the flat indexes that every
// commit updates in the same batch as the commitment.
type flatReader struct{ db kv.Reader }

func (r flatReader) Account(addr crypto.Address) (ledger.Account, error) {
	v, err := r.db.Get(accountKey(addr))
	if errors.Is(err, kv.ErrNotFound) {
		return ledger.Account{}, nil
	}
	if err != nil {
		return ledger.Account{}, err
	}
	return ledger.DecodeAccount(v)
}

func (r flatReader) EvidenceCommitted(key crypto.Hash) (bool, error) {
	return r.db.Has(append(append([]byte(nil), prefixEvidence...), key[:]...))
}

func (r flatReader) ValidatorsAt(h uint64) (*ledger.ValidatorSet, error) {
	return validatorsAt(r.db, h)
}

func (r flatReader) Record(key []byte) ([]byte, error) {
	v, err := r.db.Get(recordKey(key))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

func (r flatReader) IterateRecords(prefix []byte, fn func(key, value []byte) error) error {
	var ferr error
	err := r.db.Iterate(recordKey(prefix), func(k, v []byte) bool {
		ferr = fn(bytes.Clone(k[len(prefixRecord):]), bytes.Clone(v))
		return ferr == nil
	})
	if err != nil {
		return err
	}
	return ferr
}

// Records reads the state records under their natural keys: Get ((nil,
// nil) when absent), and iteration in ascending key order over the keys
// under a prefix, from the start or from a key (the staking module's
// Reader and Seeker).
type Records interface {
	Get(key []byte) ([]byte, error)
	Iterate(prefix []byte, fn func(key, value []byte) error) error
	IterateFrom(prefix, start []byte, fn func(key, value []byte) error) error
}

// flatRecords reads the latest records from the flat index.
type flatRecords struct{ flatReader }

func (r flatRecords) Get(k []byte) ([]byte, error) { return r.Record(k) }
func (r flatRecords) Iterate(prefix []byte, fn func(k, v []byte) error) error {
	return r.IterateRecords(prefix, fn)
}
func (r flatRecords) IterateFrom(prefix, start []byte, fn func(k, v []byte) error) error {
	var ferr error
	err := r.db.IterateFrom(recordKey(prefix), recordKey(start), func(k, v []byte) bool {
		ferr = fn(bytes.Clone(k[len(prefixRecord):]), bytes.Clone(v))
		return ferr == nil
	})
	if err != nil {
		return err
	}
	return ferr
}

// maxReadAttempts bounds how often ReadLatest runs a read that a commit
// overlapped.
const maxReadAttempts = 8

// ErrBusy is returned by ReadLatest when commits overlapped every attempt.
var ErrBusy = errors.New("store: the latest state kept changing during the read")

// ReadLatest calls fn with the latest committed height and the state
// records after it, read from the flat index (which, unlike the versioned
// commitment, iterates by prefix). Several reads in fn see one height: a
// read that a commit overlapped is run again (up to maxReadAttempts
// times, then ErrBusy), and fn's answer is the one of a read no commit
// touched. fn must not keep r. Commits never wait for readers longer than
// it takes a reader to take and drop a lock.
func (s *Store) ReadLatest(fn func(height uint64, r Records) error) error {
	for range maxReadAttempts {
		// Wait out a write under way, then read between two writes.
		s.writing.RLock()
		before := s.seq.Load()
		s.writing.RUnlock()
		if before%2 == 1 {
			continue
		}
		err := fn(s.Height(), flatRecords{flatReader{db: s.db}})
		if s.seq.Load() == before {
			return err
		}
	}
	return ErrBusy
}

type stateReader struct {
	tree    *statetree.Tree
	version uint64
}

func (r stateReader) Account(addr crypto.Address) (ledger.Account, error) {
	v, err := r.tree.Get(r.version, ledger.AccountKey(addr))
	if err != nil {
		return ledger.Account{}, err
	}
	if v == nil {
		return ledger.Account{}, nil
	}
	return ledger.DecodeAccount(v)
}

// Record returns the state record under the natural key k after height,
// nil if absent.
func (s *Store) Record(height uint64, k []byte) ([]byte, error) {
	v, err := s.tree.Get(version(height), ledger.RecordKey(k))
	if err != nil {
		return nil, s.stateErr(fmt.Sprintf("record %q", k), height, err)
	}
	return v, nil
}

// RecordProof returns the state record under the natural key k after
// height (nil when absent) with a proof against the app hash of that
// state, the AppHash in the header of block height+1.
func (s *Store) RecordProof(height uint64, k []byte) ([]byte, *statetree.Proof, error) {
	v, p, err := s.tree.Prove(version(height), ledger.RecordKey(k))
	if err != nil {
		return nil, nil, s.stateErr(fmt.Sprintf("prove record %q", k), height, err)
	}
	return v, p, nil
}

// AccountTx is one committed transaction touching an account.
type AccountTx struct {
	Hash     crypto.Hash `json:"hash"`
	Location TxLocation  `json:"location"`
}

// MaxAccountTxs bounds one AccountTxs page.
const MaxAccountTxs = 1000

// ErrPageLimit is returned by AccountTxs for a limit outside 1..MaxAccountTxs.
var ErrPageLimit = fmt.Errorf("account txs: limit must be 1 to %d", MaxAccountTxs)

// AccountTxs returns one page of the committed transactions that addr sent
// or received, oldest first (by height, then index in the block): the
// first limit of them at or after position from, and whether more follow.
// A page may end inside a block; the next page starts at the Location
// after the last one returned (see TxLocation.Next). limit must be 1 to
// MaxAccountTxs (else ErrPageLimit): a page is never silently shortened.
func (s *Store) AccountTxs(addr crypto.Address, from TxLocation, limit int) (page []AccountTx, more bool, err error) {
	if limit < 1 || limit > MaxAccountTxs {
		return nil, false, fmt.Errorf("%w, got %d", ErrPageLimit, limit)
	}
	prefix := append(append([]byte(nil), prefixAcctTx...), addr[:]...)
	start := encodeLocation(from)
	var bad error
	err = s.db.IterateFrom(prefix, append(append([]byte(nil), prefix...), start...), func(k, v []byte) bool {
		if len(page) == limit {
			more = true // the probe: one more entry exists
			return false
		}
		loc, err := decodeLocation(k[len(prefix):])
		if err != nil || len(v) != crypto.HashSize {
			bad = fmt.Errorf("account tx index: corrupt entry for %s", addr)
			return false
		}
		var hash crypto.Hash
		copy(hash[:], v)
		page = append(page, AccountTx{Hash: hash, Location: loc})
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return nil, false, fmt.Errorf("account txs of %s: %w", addr, err)
	}
	return page, more, nil
}

// ValidatorsAt returns the validator set that decides height h, for h
// from 1 to the latest height + 2 (the sets beyond are not decided yet).
func (s *Store) ValidatorsAt(h uint64) (*ledger.ValidatorSet, error) {
	if top := s.Height() + 2; h > top {
		return nil, fmt.Errorf("validators of height %d: %w (known up to height %d)", h, ErrNotFound, top)
	}
	return s.validatorsAt(h)
}

// PrioritiesAt returns the validator set of height h with its proposer
// priorities at the start of h, for the two heights after the latest
// committed one: the heights consensus can be deciding. The priorities of
// earlier heights are not kept.
func (s *Store) PrioritiesAt(h uint64) (*ledger.ProposerPriorities, error) {
	s.mu.RLock()
	st := s.state
	s.mu.RUnlock()
	if st == nil {
		return nil, errors.New("store: not initialised")
	}
	if p, ok := st.PrioritiesAt(h); ok {
		return p, nil
	}
	return nil, fmt.Errorf("proposer priorities of height %d: %w (the store at height %d has those of heights %d and %d)",
		h, ErrNotFound, st.Height, st.Height+1, st.Height+2)
}

func (s *Store) validatorsAt(h uint64) (*ledger.ValidatorSet, error) {
	return validatorsAt(s.db, h)
}

func validatorsAt(db kv.Reader, h uint64) (*ledger.ValidatorSet, error) {
	if h == 0 {
		return nil, fmt.Errorf("validators of height 0: %w", ErrNotFound)
	}
	var (
		vals *ledger.ValidatorSet
		derr error
	)
	err := db.IterateFrom(prefixVals, valsKey(h), func(_, v []byte) bool {
		vals, derr = ledger.DecodeValidatorSet(v)
		return false
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("validators of height %d: %w", h, err)
	case derr != nil:
		return nil, fmt.Errorf("validators of height %d: %w", h, derr)
	case vals == nil:
		return nil, fmt.Errorf("validators of height %d: %w", h, ErrNotFound)
	}
	return vals, nil
}
