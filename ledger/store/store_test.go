package store

import (
	"errors"
	"testing"

	"github.com/ledgerd/ledgerd/internal/testkit/testseed"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
	"github.com/ledgerd/ledgerd/ledger/statetree"
)

// testSeed returns the seed for a randomised test; it is printed and
// replays with -seed (see internal/testkit/testseed).
func testSeed(t testing.TB) uint64 { return testseed.Seed(t) }

var genesisHash = crypto.Sum([]byte("test genesis"))

func newStore(t testing.TB, db kv.DB, c *ledgertest.Chain) (*Store, *ledger.State) {
	t.Helper()
	s := Open(db)
	st, err := s.Init(c.Genesis, c.Balances, c.Records, genesisHash)
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	return s, st
}

func TestApplyStoresBlockCommitIndexAndState(t *testing.T) {
	c := ledgertest.NewChain(4, 3, 1000)
	dir := t.TempDir()
	db, err := kv.OpenLevel(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, st := newStore(t, db, c)
	if st.AppHash.IsZero() {
		t.Fatal("genesis app hash is zero")
	}
	a0, a1 := c.Accounts[0], c.Accounts[1]
	tx := ledgertest.Transfer(a0, a1.PubKey().Address(), 100, 7, 0)
	b1 := c.NextBlock(st, []*ledger.Tx{tx}, nil, 2)
	cm1 := c.Commit(b1)
	st1, res, err := s.Apply(b1, cm1)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if st1.Height != 1 || st1.LastBlockHash != b1.Hash() || st1.AppHash == st.AppHash {
		t.Fatalf("state after block 1: %+v", st1)
	}
	if len(res.Receipts) != 1 || res.Receipts[0].TxHash != tx.Hash() {
		t.Fatalf("receipts %+v", res.Receipts)
	}

	got, err := s.Block(1)
	if err != nil || got.Hash() != b1.Hash() {
		t.Fatalf("Block(1) = %v, %v", got, err)
	}
	if got, err := s.BlockByHash(b1.Hash()); err != nil || got.Height() != 1 {
		t.Fatalf("BlockByHash = %v, %v", got, err)
	}
	if got, err := s.Commit(1); err != nil || got.Hash() != cm1.Hash() {
		t.Fatalf("Commit(1) = %v, %v", got, err)
	}
	gtx, loc, err := s.Tx(tx.Hash())
	if err != nil || loc != (TxLocation{Height: 1, Index: 0}) || gtx.Hash() != tx.Hash() {
		t.Fatalf("Tx = %v %+v %v", gtx, loc, err)
	}
	if _, err := s.Block(2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Block(2) err = %v, want ErrNotFound", err)
	}
	for _, a := range []crypto.Address{a0.PubKey().Address(), a1.PubKey().Address()} {
		got, more, err := s.AccountTxs(a, TxLocation{}, 10)
		if err != nil || more || len(got) != 1 || got[0].Hash != tx.Hash() || got[0].Location != (TxLocation{Height: 1}) {
			t.Fatalf("AccountTxs(%s) = %+v, %v", a, got, err)
		}
	}
	if got, _, _ := s.AccountTxs(c.Accounts[2].PubKey().Address(), TxLocation{}, 10); len(got) != 0 {
		t.Fatalf("AccountTxs of an untouched account = %+v", got)
	}
	if got, _, _ := s.AccountTxs(a0.PubKey().Address(), TxLocation{Height: 2}, 10); len(got) != 0 {
		t.Fatalf("AccountTxs from height 2 = %+v", got)
	}
	wantAcct := map[crypto.Address]uint64{
		a0.PubKey().Address():                          1000 - 107,
		a1.PubKey().Address():                          1100,
		st.Validators.Get(2).Address():                 7,
		c.Accounts[2].PubKey().Address():               1000,
		ledgertest.Key("nobody", 0).PubKey().Address(): 0,
	}
	for a, bal := range wantAcct {
		acc, err := s.Account(1, a)
		if err != nil || acc.Balance != bal {
			t.Errorf("account %s after block 1 = %+v, %v; want balance %d", a, acc, err, bal)
		}
	}
	if acc, _ := s.Account(0, a0.PubKey().Address()); acc.Balance != 1000 || acc.Nonce != 0 {
		t.Errorf("account at genesis = %+v, want the genesis balance still readable", acc)
	}
	if acc, _ := s.Account(1, a0.PubKey().Address()); acc.Nonce != 1 {
		t.Errorf("sender nonce = %d, want 1", acc.Nonce)
	}

	// Reopen from the files: same state, same reads.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := kv.OpenLevel(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	s2, st2 := newStore(t, db2, c)
	if st2.Height != 1 || st2.AppHash != st1.AppHash || st2.LastBlockHash != st1.LastBlockHash {
		t.Fatalf("reopened state %+v, want %+v", st2, st1)
	}
	if acc, _ := s2.Account(1, a1.PubKey().Address()); acc.Balance != 1100 {
		t.Fatalf("reopened balance %d", acc.Balance)
	}
}

func TestInitRefusesAnotherGenesis(t *testing.T) {
	c := ledgertest.NewChain(1, 1, 10)
	db := kv.NewMem()
	newStore(t, db, c)
	_, err := Open(db).Init(c.Genesis, c.Balances, c.Records, crypto.Sum([]byte("other")))
	if err == nil {
		t.Fatal("Init with a different genesis hash succeeded")
	}
}

func TestApplyRejectsBadCommit(t *testing.T) {
	c := ledgertest.NewChain(4, 2, 1000)
	s, st := newStore(t, kv.NewMem(), c)
	b := c.NextBlock(st, nil, nil, 0)
	cases := map[string]*ledger.Commit{
		"two of four signers": c.Commit(b, 0, 1),
		"other block":         c.Commit(c.NextBlock(st, []*ledger.Tx{ledgertest.Transfer(c.Accounts[0], c.Accounts[1].PubKey().Address(), 1, 0, 0)}, nil, 0)),
		"nil":                 nil,
	}
	for name, cm := range cases {
		t.Run(name, func(t *testing.T) {
			if _, _, err := s.Apply(b, cm); err == nil {
				t.Fatal("Apply accepted a bad commit")
			}
			if s.Height() != 0 {
				t.Fatalf("height %d after a refused block", s.Height())
			}
		})
	}
	if _, _, err := s.Apply(b, c.Commit(b, 0, 1, 3)); err != nil {
		t.Fatalf("three of four signers refused: %v", err)
	}
}

// TestCommitCutOffLeavesPreviousHeight fails the batch write of a block
// and checks that the store still serves the previous height, intact, and
// can apply the block afterwards.
func TestCommitCutOffLeavesPreviousHeight(t *testing.T) {
	c := ledgertest.NewChain(4, 2, 1000)
	db := kv.NewMem()
	s, st := newStore(t, db, c)
	b1 := c.NextBlock(st, []*ledger.Tx{ledgertest.Transfer(c.Accounts[0], c.Accounts[1].PubKey().Address(), 5, 1, 0)}, nil, 0)
	st1, _, err := s.Apply(b1, c.Commit(b1))
	if err != nil {
		t.Fatal(err)
	}
	keysBefore := db.Len()

	b2 := c.NextBlock(st1, []*ledger.Tx{ledgertest.Transfer(c.Accounts[1], c.Accounts[0].PubKey().Address(), 9, 1, 0)}, c.Commit(b1), 1)
	db.FailNextWrite = true
	if _, _, err := s.Apply(b2, c.Commit(b2)); !errors.Is(err, kv.ErrInjected) {
		t.Fatalf("Apply with a failing write: err = %v", err)
	}
	if db.Len() != keysBefore {
		t.Fatalf("failed write left %d keys behind", db.Len()-keysBefore)
	}
	// The same store object and a reopened one both stand at height 1.
	for name, st := range map[string]*Store{"same": s, "reopened": Open(db)} {
		cur, err := st.Init(c.Genesis, c.Balances, c.Records, genesisHash)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cur.Height != 1 || cur.AppHash != st1.AppHash {
			t.Fatalf("%s: state %+v, want height 1 app %s", name, cur, st1.AppHash)
		}
		if _, err := st.Block(2); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: block 2 visible after a failed commit: %v", name, err)
		}
		if acc, _ := st.Account(1, c.Accounts[0].PubKey().Address()); acc.Balance != 994 {
			t.Fatalf("%s: balance %d, want 994", name, acc.Balance)
		}
	}
	if _, _, err := s.Apply(b2, c.Commit(b2)); err != nil {
		t.Fatalf("Apply after the failed write: %v", err)
	}
}

// TestAccountProofs checks proofs from the store against the app hash that
// the next header carries.
func TestAccountProofs(t *testing.T) {
	c := ledgertest.NewChain(1, 4, 50)
	s, st := newStore(t, kv.NewMem(), c)
	b1 := c.NextBlock(st, []*ledger.Tx{ledgertest.Transfer(c.Accounts[0], c.Accounts[3].PubKey().Address(), 20, 0, 0)}, nil, 0)
	st1, _, err := s.Apply(b1, c.Commit(b1))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []uint64{0, 1} {
		root, err := s.AppHash(h)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []crypto.Address{c.Accounts[0].PubKey().Address(), c.Accounts[3].PubKey().Address(), ledgertest.Key("absent", 1).PubKey().Address()} {
			acc, p, err := s.AccountProof(h, a)
			if err != nil {
				t.Fatal(err)
			}
			var val []byte
			if acc != (ledger.Account{}) {
				val = acc.Encode()
			}
			if err := statetree.Verify(root, ledger.AccountKey(a), val, p); err != nil {
				t.Errorf("height %d account %s: %v", h, a, err)
			}
			// Claiming one more unit must fail.
			forged := acc
			forged.Balance++
			if err := statetree.Verify(root, ledger.AccountKey(a), forged.Encode(), p); err == nil {
				t.Errorf("height %d account %s: a forged balance verified", h, a)
			}
		}
	}
	if root1, _ := s.AppHash(1); root1 != st1.AppHash {
		t.Fatalf("AppHash(1) = %s, state says %s", root1, st1.AppHash)
	}
}
