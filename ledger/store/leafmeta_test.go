package store

import (
	"testing"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
	"github.com/ledgerd/ledgerd/ledger/statetree"
)

// TestStateLeavesCarryTheirPreimage: every leaf of the state commitment
// carries a Meta that names its key's preimage (an account's address, a
// record's natural key), so that a restored snapshot can rebuild the flat
// indexes, and the flat index holds the leaf's value under it.
func TestStateLeavesCarryTheirPreimage(t *testing.T) {
	if ledger.MaxLeafMeta != statetree.MaxMetaSize {
		t.Fatalf("ledger.MaxLeafMeta %d, statetree.MaxMetaSize %d", ledger.MaxLeafMeta, statetree.MaxMetaSize)
	}
	c := ledgertest.NewChain(2, 4, 1<<40)
	db := kv.NewMem()
	s, st := newStore(t, db, c)
	fresh := ledgertest.Key("fresh", 1).PubKey().Address()
	txs := []*ledger.Tx{
		ledgertest.Transfer(c.Accounts[0], fresh, 20, 0, 0),
		ledgertest.Delegate(c.Accounts[1], c.ValKeys[0].PubKey().Address(), 1<<30, 0, 0),
	}
	b1 := c.NextBlock(st, txs, nil, 0)
	st1, res, err := s.Apply(b1, c.Commit(b1))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Receipts {
		if r.Error != "" {
			t.Fatalf("tx %d failed: %s", r.Index, r.Error)
		}
	}
	for _, h := range []uint64{0, st1.Height} {
		kinds := map[byte]int{}
		err := s.tree.Leaves(version(h), 0, [32]byte{}, func(l statetree.Leaf) error {
			key, err := ledger.LeafKeyOf(l.Meta)
			if err != nil || key != l.Key {
				t.Fatalf("height %d: leaf %x has meta %q: key %x, %v", h, l.Key, l.Meta, key, err)
			}
			kinds[l.Meta[0]]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if kinds[ledger.MetaAccount] == 0 || kinds[ledger.MetaRecord] == 0 {
			t.Fatalf("height %d: leaves by meta kind %v, want accounts and records", h, kinds)
		}
	}
	// The flat indexes agree with the leaves at the latest height.
	err = s.tree.Leaves(version(st1.Height), 0, [32]byte{}, func(l statetree.Leaf) error {
		var flat []byte
		switch l.Meta[0] {
		case ledger.MetaAccount:
			flat, err = db.Get(append(append([]byte(nil), prefixAccount...), l.Meta[1:]...))
		case ledger.MetaRecord:
			flat, err = db.Get(recordKey(l.Meta[1:]))
		default:
			return nil
		}
		if err != nil || string(flat) != string(l.Value) {
			t.Fatalf("leaf %q: flat index holds %x (%v), the tree %x", l.Meta, flat, err, l.Value)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
