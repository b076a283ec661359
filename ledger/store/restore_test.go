package store

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
	"github.com/ledgerd/ledgerd/ledger/snapshot"
	"github.com/ledgerd/ledgerd/ledger/staking"
	"github.com/ledgerd/ledgerd/ledger/statetree"
)

// grow applies n blocks to s: transfers between the chain's accounts,
// and in the second block a delegation, so the state holds changed
// records as well as accounts. It returns the state after them.
func grow(t testing.TB, s *Store, c *ledgertest.Chain, n int) *ledger.State {
	t.Helper()
	st := s.State()
	for range n {
		var last *ledger.Commit
		if st.Height > 0 {
			var err error
			if last, err = s.Commit(st.Height); err != nil {
				t.Fatal(err)
			}
		}
		var txs []*ledger.Tx
		for i, k := range c.Accounts[:min(len(c.Accounts), 20)] {
			a, err := s.Reader().Account(k.PubKey().Address())
			if err != nil {
				t.Fatal(err)
			}
			to := c.Accounts[(i+1)%len(c.Accounts)].PubKey().Address()
			if st.Height == 1 && i == 0 {
				txs = append(txs, ledgertest.Delegate(k, c.ValKeys[0].PubKey().Address(), 1_000_000, 1, a.Nonce))
				continue
			}
			txs = append(txs, ledgertest.Transfer(k, to, 10+uint64(i), 1, a.Nonce))
		}
		b := c.NextBlock(st, txs, last, int(st.Height))
		var err error
		if st, _, err = s.Apply(b, c.Commit(b)); err != nil {
			t.Fatalf("block %d: %v", b.Height(), err)
		}
	}
	return st
}

// snapshotOf builds, in memory, the snapshot of the state after height of
// src.
func snapshotOf(t testing.TB, src *Store, height uint64) (*snapshot.Manifest, [][]byte) {
	t.Helper()
	appHash, err := src.AppHash(height)
	if err != nil {
		t.Fatal(err)
	}
	var chunks [][]byte
	m, err := snapshot.Build(context.Background(), src.StateTree(), StateVersion(height), height, appHash, func(_ int, raw []byte) error {
		chunks = append(chunks, raw)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, chunks
}

// importAll restores m's chunks into dst's tree and flat indexes (not
// FinishRestore).
func importAll(t testing.TB, dst *Store, m *snapshot.Manifest, chunks [][]byte) {
	t.Helper()
	r, err := dst.BeginRestore(m.Height, m.AppHash, genesisHash)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := snapshot.NewRestorer(m, m.AppHash, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(chunks) - 1; i >= 0; i-- {
		if err := rs.Add(chunks[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := rs.Finish(); err != nil {
		t.Fatal(err)
	}
}

// restoreLatest restores src's latest height into dst, whole.
func restoreLatest(t testing.TB, src, dst *Store) *ledger.State {
	t.Helper()
	st := src.State()
	m, chunks := snapshotOf(t, src, st.Height)
	importAll(t, dst, m, chunks)
	b, err := src.Block(st.Height)
	if err != nil {
		t.Fatal(err)
	}
	c, err := src.Commit(st.Height)
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.FinishRestore(st, b, c); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestRestoredStoreWorksLikeTheSource(t *testing.T) {
	c := ledgertest.NewChain(4, 300, 1<<40)
	src, _ := newStore(t, kv.NewMem(), c)
	grow(t, src, c, 3)
	db := kv.NewMem()
	dst := Open(db)
	st := restoreLatest(t, src, dst)

	// Reopened, the restored store initialises like any other.
	dst = Open(db)
	got, err := dst.Init(c.Genesis, c.Balances, c.Records, genesisHash)
	if err != nil {
		t.Fatal(err)
	}
	if got.Height != st.Height || got.AppHash != st.AppHash || got.LastBlockHash != st.LastBlockHash ||
		got.TotalSupply != st.TotalSupply || !got.NextPriorities.Equal(st.NextPriorities) {
		t.Fatalf("restored state %v, source %v", got, st)
	}
	if dst.Base() != st.Height || src.Base() != 1 {
		t.Fatalf("base: restored %d, source %d", dst.Base(), src.Base())
	}
	for _, k := range c.Accounts {
		a := k.PubKey().Address()
		want, _ := src.Reader().Account(a)
		flat, err := dst.Reader().Account(a)
		if err != nil || flat != want {
			t.Fatalf("account %s: flat index %+v (%v), source %+v", a, flat, err, want)
		}
		tree, err := dst.Account(st.Height, a)
		if err != nil || tree != want {
			t.Fatalf("account %s: state tree %+v (%v), source %+v", a, tree, err, want)
		}
	}
	if !equalRecords(t, src, dst) {
		t.Fatal("the records differ")
	}

	// The next block applies identically on both.
	next := grow(t, src, c, 1)
	b, _ := src.Block(next.Height)
	cm, _ := src.Commit(next.Height)
	after, _, err := dst.Apply(b, cm)
	if err != nil {
		t.Fatalf("the restored store refuses block %d: %v", b.Height(), err)
	}
	if after.AppHash != next.AppHash {
		t.Fatalf("after block %d: restored app hash %s, source %s", b.Height(), after.AppHash, next.AppHash)
	}
}

// equalRecords compares the records of the flat indexes of a and b.
func equalRecords(t testing.TB, a, b *Store) bool {
	t.Helper()
	all := func(s *Store) (keys, vals [][]byte) {
		err := s.ReadLatest(func(_ uint64, r Records) error {
			return r.Iterate(nil, func(k, v []byte) error {
				keys, vals = append(keys, k), append(vals, v)
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return keys, vals
	}
	ka, va := all(a)
	kb, vb := all(b)
	if len(ka) == 0 {
		t.Fatal("no records")
	}
	if len(ka) != len(kb) {
		return false
	}
	for i := range ka {
		if !bytes.Equal(ka[i], kb[i]) || !bytes.Equal(va[i], vb[i]) {
			return false
		}
		if v, err := b.Record(b.Height(), ka[i]); err != nil || !bytes.Equal(v, va[i]) {
			return false
		}
	}
	return true
}

// Below its base a restored store holds nothing, and every read of it
// says so cleanly.
func TestRestoredStoreReadsBelowItsBase(t *testing.T) {
	c := ledgertest.NewChain(4, 50, 1<<40)
	src, _ := newStore(t, kv.NewMem(), c)
	grow(t, src, c, 3)
	dst := Open(kv.NewMem())
	st := restoreLatest(t, src, dst)
	old, err := src.Block(1)
	if err != nil {
		t.Fatal(err)
	}
	oldTx := old.Txs[0].Hash()
	for name, err := range map[string]error{
		"block":      second(dst.Block(1)),
		"block hash": second(dst.BlockByHash(old.Hash())),
		"bytes":      second(dst.BlockBytes(1)),
		"commit":     second(dst.Commit(2)),
		"tx":         second(dst.TxLocation(oldTx)),
		"validators": second(dst.ValidatorsAt(st.Height - 1)),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s below the base: %v, want ErrNotFound", name, err)
		}
	}
	if _, _, err := dst.Tx(oldTx); !errors.Is(err, ErrNotFound) {
		t.Errorf("Tx below the base: %v", err)
	}
	if reason, err := dst.TxError(oldTx); reason != "" || err != nil {
		t.Errorf("TxError below the base: %q, %v", reason, err)
	}
	page, more, err := dst.AccountTxs(c.Accounts[0].PubKey().Address(), TxLocation{}, 10)
	if err != nil || more || len(page) != 0 {
		t.Errorf("account history below the base: %v, %v, %v", page, more, err)
	}
	if _, err := dst.Account(1, c.Accounts[0].PubKey().Address()); !errors.Is(err, ErrPruned) {
		t.Errorf("account below the base: %v, want ErrPruned", err)
	}
	if _, err := dst.AppHash(1); !errors.Is(err, ErrPruned) {
		t.Errorf("app hash below the base: %v, want ErrPruned", err)
	}
	if got := dst.OldestState(); got != st.Height {
		t.Errorf("OldestState %d, want the base %d", got, st.Height)
	}
	for h := st.Height; h <= st.Height+2; h++ {
		if _, err := dst.ValidatorsAt(h); err != nil {
			t.Errorf("validators of height %d: %v", h, err)
		}
	}
	if _, err := dst.Block(st.Height); err != nil {
		t.Errorf("block at the base: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

// A restore cut short leaves a store that Init refuses and that a new
// restore, of another height even, starts over: nothing of the first
// attempt stays behind, not even a record the later state deleted.
func TestHalfRestoredStoreStartsOver(t *testing.T) {
	c := ledgertest.NewChain(4, 300, 1<<40)
	src, _ := newStore(t, kv.NewMem(), c)
	early := grow(t, src, c, 2) // block 2 delegates 1,000,000 from account 0
	mEarly, chunksEarly := snapshotOf(t, src, early.Height)
	// Account 0 undelegates all of it: the later state has no delegation
	// record of it.
	del := c.Accounts[0]
	op := c.ValKeys[0].PubKey().Address()
	delKey := staking.DelegationKey(del.PubKey().Address(), op)
	if v, _ := src.Reader().Record(delKey); v == nil {
		t.Fatal("no delegation to undelegate: the test proves nothing")
	}
	st := src.State()
	last, _ := src.Commit(st.Height)
	a, _ := src.Reader().Account(del.PubKey().Address())
	b := c.NextBlock(st, []*ledger.Tx{ledgertest.Undelegate(del, op, 1_000_000, 1, a.Nonce)}, last, 0)
	late, res, err := src.Apply(b, c.Commit(b))
	if err != nil || res.Receipts[0].Error != "" {
		t.Fatalf("undelegate: %v %+v", err, res.Receipts)
	}
	if v, _ := src.Reader().Record(delKey); v != nil {
		t.Fatal("the delegation record outlived a full undelegation: the test proves nothing")
	}
	mLate, chunksLate := snapshotOf(t, src, late.Height)

	db := kv.NewMem()
	dst := Open(db)
	importAll(t, dst, mEarly, chunksEarly) // then "crash" before FinishRestore
	dst = Open(db)
	if _, err := dst.Init(c.Genesis, c.Balances, c.Records, genesisHash); !errors.Is(err, ErrRestoreIncomplete) {
		t.Fatalf("Init of a half-restored store: %v", err)
	}
	if h, ok, err := dst.RestoreUnderway(); err != nil || !ok || h != early.Height {
		t.Fatalf("RestoreUnderway = %d, %v, %v", h, ok, err)
	}
	if v, _ := dst.Reader().Record(delKey); v == nil {
		t.Fatal("the first attempt's delegation record is not in the store: the test proves nothing")
	}

	importAll(t, dst, mLate, chunksLate)
	lb, _ := src.Block(late.Height)
	lc, _ := src.Commit(late.Height)
	if err := dst.FinishRestore(late, lb, lc); err != nil {
		t.Fatal(err)
	}
	if v, _ := dst.Reader().Record(delKey); v != nil {
		t.Fatalf("the abandoned restore left the delegation record %x", v)
	}
	if !equalRecords(t, src, dst) {
		t.Fatal("the records differ from the source's")
	}
	if _, ok, _ := dst.RestoreUnderway(); ok {
		t.Fatal("the marker outlived FinishRestore")
	}
	dst = Open(db)
	if got, err := dst.Init(c.Genesis, c.Balances, c.Records, genesisHash); err != nil || got.AppHash != late.AppHash {
		t.Fatalf("Init after the second restore: %v, %v", got, err)
	}
}

func TestBeginRestoreNeedsAnEmptyStore(t *testing.T) {
	c := ledgertest.NewChain(4, 10, 1000)
	s, st := newStore(t, kv.NewMem(), c)
	if _, err := s.BeginRestore(5, st.AppHash, genesisHash); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("restore into a store with a chain: %v", err)
	}
	db := kv.NewMem()
	b := db.NewBatch()
	b.Put([]byte("z/other"), []byte{1})
	if err := db.Write(b, true); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(db).BeginRestore(5, st.AppHash, genesisHash); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("restore into a store holding other keys: %v", err)
	}
	// Opened afresh, a store with a chain but not initialised yet is
	// refused all the same.
	if _, err := Open(s.db).BeginRestore(5, st.AppHash, genesisHash); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("restore into a reopened store with a chain: %v", err)
	}
}

// FinishRestore refuses a state, block or commit that do not fit the
// restore or each other, and leaves the store half-restored.
func TestFinishRestoreChecks(t *testing.T) {
	c := ledgertest.NewChain(4, 100, 1<<40)
	src, _ := newStore(t, kv.NewMem(), c)
	st := grow(t, src, c, 3)
	m, chunks := snapshotOf(t, src, st.Height)
	b, _ := src.Block(st.Height)
	cm, _ := src.Commit(st.Height)
	prev, _ := src.Block(st.Height - 1)
	other := ledgertest.NewChain(5, 1, 1)
	edit := func(f func(s *ledger.State)) *ledger.State {
		s := st.Copy()
		f(s)
		return s
	}
	cases := []struct {
		name string
		st   *ledger.State
		b    *ledger.Block
		c    *ledger.Commit
	}{
		{"state of another height", edit(func(s *ledger.State) { s.Height-- }), b, cm},
		{"another app hash", edit(func(s *ledger.State) { s.AppHash[0] ^= 1 }), b, cm},
		{"another last block", edit(func(s *ledger.State) { s.LastBlockHash[0] ^= 1 }), b, cm},
		{"block of another height", st, prev, cm},
		{"commit of another block", st, b, c.Commit(prev)},
		{"commit of too few signers", st, b, c.Commit(b, 0, 1)},
		{"other last validators", edit(func(s *ledger.State) { s.LastValidators = other.Genesis.Validators }), b, cm},
		{"other validators", edit(func(s *ledger.State) { s.Validators = other.Genesis.Validators }), b, cm},
		{"other validators with their own priorities", edit(func(s *ledger.State) {
			s.Validators = other.Genesis.Validators
			s.Priorities = ledger.GenesisPriorities(s.Validators)
			s.NextPriorities = s.Priorities.Next(s.NextValidators)
		}), b, cm},
		{"no priorities", edit(func(s *ledger.State) { s.Priorities = nil }), b, cm},
		{"priorities not carried on", edit(func(s *ledger.State) { s.NextPriorities = s.Priorities }), b, cm},
	}
	db := kv.NewMem()
	dst := Open(db)
	importAll(t, dst, m, chunks)
	for _, tc := range cases {
		if err := dst.FinishRestore(tc.st, tc.b, tc.c); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
		if _, ok, _ := dst.RestoreUnderway(); !ok {
			t.Fatalf("%s: the marker is gone", tc.name)
		}
	}
	if err := dst.FinishRestore(st, b, cm); err != nil {
		t.Fatal(err)
	}
	if err := dst.FinishRestore(st, b, cm); err == nil {
		t.Fatal("FinishRestore twice")
	}
}

// The store writes nothing of a tree whose root is not the app hash the
// restore began with.
func TestFinishImportChecksTheRoot(t *testing.T) {
	c := ledgertest.NewChain(4, 100, 1<<40)
	src, _ := newStore(t, kv.NewMem(), c)
	st := grow(t, src, c, 1)
	dst := Open(kv.NewMem())
	wrong := st.AppHash
	wrong[3] ^= 1
	r, err := dst.BeginRestore(st.Height, wrong, genesisHash)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := src.StateTree().Partition(StateVersion(st.Height), 64)
	if err != nil {
		t.Fatal(err)
	}
	var refs []statetree.SubtreeRef
	for _, p := range parts {
		var leaves []statetree.Leaf
		if err := src.StateTree().Leaves(StateVersion(st.Height), p.Depth, p.Prefix, func(l statetree.Leaf) error {
			leaves = append(leaves, l)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		ref, err := r.ImportChunk(p.Depth, p.Prefix, leaves)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	if _, err := r.FinishImport(refs); err == nil {
		t.Fatal("FinishImport accepted a root that is not the app hash")
	}
	if _, err := dst.AppHash(st.Height); err == nil {
		t.Fatal("the wrong tree's root was written")
	}
}

func TestFlatKeyChecksTheMeta(t *testing.T) {
	addr := crypto.Address{1, 2, 3}
	ev := crypto.Sum([]byte("evidence"))
	good := []statetree.Leaf{
		{Key: ledger.AccountKey(addr), Meta: ledger.AccountMeta(addr)},
		{Key: ledger.RecordKey([]byte("stk/x")), Meta: ledger.RecordMeta([]byte("stk/x"))},
		{Key: ev, Meta: ledger.EvidenceMeta(ev)},
	}
	for _, l := range good {
		if _, err := flatKey(l); err != nil {
			t.Errorf("meta %q: %v", l.Meta[:1], err)
		}
	}
	bad := []statetree.Leaf{
		{Key: ledger.AccountKey(addr)},
		{Key: ledger.AccountKey(addr), Meta: ledger.AccountMeta(crypto.Address{9})},
		{Key: ledger.AccountKey(addr), Meta: append(ledger.AccountMeta(addr), 0)},
		{Key: ledger.AccountKey(addr), Meta: append([]byte{'x'}, addr[:]...)},
		{Key: ledger.RecordKey([]byte("stk/x")), Meta: ledger.RecordMeta([]byte("stk/y"))},
		{Key: ev, Meta: ledger.EvidenceMeta(crypto.Sum([]byte("other")))},
		{Key: ev, Meta: append([]byte{'e'}, ev[:31]...)},
	}
	for i, l := range bad {
		if _, err := flatKey(l); err == nil {
			t.Errorf("bad leaf %d accepted", i)
		}
	}
}
