package store

import (
	"bytes"
	"testing"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
	"github.com/ledgerd/ledgerd/ledger/statetree"
)

// TestValidatorSetChangesTakeEffectTwoHeightsLater writes blocks whose
// execution changed the validator set and state records, and checks that
// the store serves each height's set (the change of block h from h+2 on),
// keeps the records flat and in the commitment, and reloads all of it.
func TestValidatorSetChangesTakeEffectTwoHeightsLater(t *testing.T) {
	c := ledgertest.NewChain(4, 2, 1000)
	dir := t.TempDir()
	db, err := kv.OpenLevel(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, st := newStore(t, db, c)
	genesisSet := st.Validators
	// Block 2 drops validator 3; block 3 brings it back with more power.
	smaller, err := ledger.NewValidatorSet(genesisSet.Validators()[:3])
	if err != nil {
		t.Fatal(err)
	}
	vals := genesisSet.Validators()
	vals[3].Power = 25
	larger, err := ledger.NewValidatorSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	changes := map[uint64]*ledger.ValidatorSet{2: smaller, 3: larger}
	record := []byte("stk/test")
	var last *ledger.Commit
	for h := uint64(1); h <= 5; h++ {
		b := c.NextBlock(st, nil, last, 0)
		res, err := ledger.Execute(st, s.Reader(), b)
		if err != nil {
			t.Fatalf("block %d: %v", h, err)
		}
		res.NextValidators = changes[h]
		res.Records = []ledger.Record{{Key: record, Value: []byte{byte(h)}}}
		// Commits must carry the signatures of the set that decided the
		// block; the chain's keys cover every member.
		cm := commitBy(t, c, b, st.Validators)
		if st, err = s.write(st, b, cm, b.Hash(), res); err != nil {
			t.Fatalf("write %d: %v", h, err)
		}
		last = cm
	}
	want := map[uint64]*ledger.ValidatorSet{1: genesisSet, 2: genesisSet, 3: genesisSet, 4: smaller, 5: larger, 6: larger, 7: larger}
	check := func(s *Store, st *ledger.State) {
		t.Helper()
		for h, w := range want {
			got, err := s.ValidatorsAt(h)
			if err != nil || !got.Equal(w) {
				t.Errorf("set of height %d: %v, want %d members (hash %s)", h, err, w.Size(), w.Hash())
			}
		}
		if _, err := s.ValidatorsAt(8); err == nil {
			t.Error("set of height 8 served before block 6 decided it")
		}
		if !st.LastValidators.Equal(larger) || !st.Validators.Equal(larger) || !st.NextValidators.Equal(larger) {
			t.Errorf("state after 5 holds the wrong sets")
		}
		for h := uint64(1); h <= 5; h++ {
			v, p, err := s.RecordProof(h, record)
			if err != nil || !bytes.Equal(v, []byte{byte(h)}) {
				t.Fatalf("record after %d: %x, %v", h, v, err)
			}
			root, _ := s.AppHash(h)
			if err := statetree.Verify(root, ledger.RecordKey(record), v, p); err != nil {
				t.Errorf("record after %d does not prove: %v", h, err)
			}
		}
		if v, err := s.Reader().Record(record); err != nil || !bytes.Equal(v, []byte{5}) {
			t.Errorf("flat record = %x, %v", v, err)
		}
	}
	check(s, st)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = kv.OpenLevel(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s2, st2 := newStore(t, db, c)
	check(s2, st2)
}

// commitBy signs b's commit with every member of vals.
func commitBy(t *testing.T, c *ledgertest.Chain, b *ledger.Block, vals *ledger.ValidatorSet) *ledger.Commit {
	t.Helper()
	var signers []int
	for i, k := range c.ValKeys {
		if _, ok := vals.ByAddress(k.PubKey().Address()); ok {
			signers = append(signers, i)
		}
	}
	cm := c.Commit(b, signers...)
	if err := cm.Verify(c.Genesis.ChainID, vals, b.Height(), b.Hash()); err != nil {
		t.Fatalf("commit of %d: %v", b.Height(), err)
	}
	return cm
}
