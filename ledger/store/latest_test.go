package store

import (
	"testing"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// ReadLatest gives a read that spans several records one height: when a
// commit lands between two of its reads, it reads again, and the answer
// never mixes two heights.
func TestReadLatestNeverMixesHeights(t *testing.T) {
	c := ledgertest.NewChain(1, 1, 1000)
	s, st := newStore(t, kv.NewMem(), c)
	keyA, keyB := []byte("stk/test/a"), []byte("stk/test/b")
	var last *ledger.Commit
	commit := func() {
		t.Helper()
		b := c.NextBlock(st, nil, last, 0)
		res, err := ledger.Execute(st, s.Reader(), b)
		if err != nil {
			t.Fatal(err)
		}
		v := []byte{byte(b.Height())}
		res.Records = append(res.Records, ledger.Record{Key: keyA, Value: v}, ledger.Record{Key: keyB, Value: v})
		last = c.Commit(b)
		if st, err = s.write(st, b, last, b.Hash(), res); err != nil {
			t.Fatal(err)
		}
	}
	commit()
	runs := 0
	var height uint64
	var a, b []byte
	err := s.ReadLatest(func(h uint64, r Records) error {
		runs++
		height = h
		var err error
		if a, err = r.Get(keyA); err != nil {
			return err
		}
		if runs == 1 {
			commit() // block 2 lands between the two reads
		}
		b, err = r.Get(keyB)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if runs != 2 || height != 2 || len(a) != 1 || len(b) != 1 || a[0] != 2 || b[0] != 2 {
		t.Fatalf("%d runs; height %d, a %v, b %v; want a second run reading height 2's records 2 and 2", runs, height, a, b)
	}
	// Iteration from a key sees the keys at or after it, under the prefix.
	var keys []string
	err = s.ReadLatest(func(_ uint64, r Records) error {
		return r.IterateFrom([]byte("stk/test/"), keyB, func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	if err != nil || len(keys) != 1 || keys[0] != string(keyB) {
		t.Fatalf("IterateFrom(b) = %q, %v", keys, err)
	}
}
