package store

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// A staking transaction the staking rules refuse is committed as failed;
// the store keeps its receipt's reason, beside the transactions that
// succeeded (no reason), across a reopen.
func TestFailedTxKeepsItsReason(t *testing.T) {
	c := ledgertest.NewChain(4, 2, 1_000_000)
	db := kv.NewMem()
	s, st := newStore(t, db, c)
	a0, a1 := c.Accounts[0], c.Accounts[1]
	nobody := ledgertest.Key("nobody", 0).PubKey().Address()
	ok := ledgertest.Transfer(a0, a1.PubKey().Address(), 5, 1, 0)
	bad := ledgertest.Delegate(a0, nobody, 100, 1, 1) // no such validator
	good := ledgertest.Delegate(a1, c.Genesis.Validators.Get(0).Operator, 100, 1, 0)
	b := c.NextBlock(st, []*ledger.Tx{ok, bad, good}, nil, 0)
	_, res, err := s.Apply(b, c.Commit(b))
	if err != nil {
		t.Fatal(err)
	}
	if res.Receipts[1].Error == "" {
		t.Fatal("the delegation to an unknown validator did not fail: the test proves nothing")
	}
	check := func(s *Store) {
		t.Helper()
		for _, tc := range []struct {
			tx   *ledger.Tx
			want string
		}{{ok, ""}, {bad, res.Receipts[1].Error}, {good, ""}} {
			got, err := s.TxError(tc.tx.Hash())
			if err != nil || got != tc.want {
				t.Errorf("TxError(%s %s) = %q, %v; want %q", tc.tx.Kind, tc.tx.Hash(), got, err, tc.want)
			}
		}
		if got, err := s.TxError(crypto.Sum([]byte("never sent"))); err != nil || got != "" {
			t.Errorf("TxError of an unknown hash = %q, %v; want no reason", got, err)
		}
	}
	check(s)
	s2 := Open(db)
	if _, err := s2.Init(c.Genesis, c.Balances, c.Records, genesisHash); err != nil {
		t.Fatal(err)
	}
	check(s2)
}

// A reason is kept whole up to MaxTxErrorBytes and cut at a character
// boundary beyond; a damaged index entry reads as an error, not a panic.
func TestTxErrorIndexIsBounded(t *testing.T) {
	long := strings.Repeat("é", MaxTxErrorBytes) // 2 bytes each
	cut := clipReason(long)
	if len(cut) > MaxTxErrorBytes || !utf8.ValidString(cut) || !strings.HasPrefix(long, cut) {
		t.Fatalf("clipReason: %d bytes, valid %v", len(cut), utf8.ValidString(cut))
	}
	if clipReason("short") != "short" {
		t.Fatal("a short reason was changed")
	}
	c := ledgertest.NewChain(1, 1, 1000)
	db := kv.NewMem()
	s, _ := newStore(t, db, c)
	h := crypto.Sum([]byte("some tx"))
	for _, v := range [][]byte{{}, {0xff, 0xfe}, []byte(strings.Repeat("x", MaxTxErrorBytes+1))} {
		b := db.NewBatch()
		b.Put(txErrorKey(h), v)
		if err := db.Write(b, false); err != nil {
			t.Fatal(err)
		}
		if got, err := s.TxError(h); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("entry %q: TxError = %q, %v; want a decode error", v, got, err)
		}
	}
}

// FuzzDecodeTxError: the reason decoder never panics, and what it accepts
// is bounded valid UTF-8 that reads back the same.
func FuzzDecodeTxError(f *testing.F) {
	for _, s := range []string{"", "transaction failed: staking: rejected: no validator", "\xff", strings.Repeat("a", MaxTxErrorBytes+1)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeTxError(b)
		if err != nil {
			return
		}
		if s == "" || len(s) > MaxTxErrorBytes || !utf8.ValidString(s) || s != string(b) {
			t.Fatalf("accepted %q as %q", b, s)
		}
	})
}
