package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
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
	smaller, larger := changedSets(t, genesisSet)
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

// TestProposerPrioritiesPersist writes blocks that change the set and
// checks that the store serves the proposer priorities of the next two
// heights, equal to the genesis priorities carried height by height
// through the sets, before and after a reopen; that it refuses other
// heights; and that a state record whose priorities were damaged (another
// set, out of bounds, or next-height priorities that do not follow from
// the current ones) makes Init fail instead of starting with them.
func TestProposerPrioritiesPersist(t *testing.T) {
	c := ledgertest.NewChain(4, 2, 1000)
	dir := t.TempDir()
	db, err := kv.OpenLevel(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, st := newStore(t, db, c)
	genesisSet := st.Validators
	smaller, larger := changedSets(t, genesisSet)
	changes := map[uint64]*ledger.ValidatorSet{2: smaller, 3: larger}
	setOf := map[uint64]*ledger.ValidatorSet{1: genesisSet, 2: genesisSet, 3: genesisSet, 4: smaller}
	for h := uint64(5); h <= 8; h++ {
		setOf[h] = larger
	}
	want := map[uint64]*ledger.ProposerPriorities{1: ledger.GenesisPriorities(genesisSet)}
	for h := uint64(2); h <= 8; h++ {
		want[h] = want[h-1].Next(setOf[h])
	}
	check := func(s *Store, height uint64) {
		t.Helper()
		for _, h := range []uint64{height + 1, height + 2} {
			got, err := s.PrioritiesAt(h)
			if err != nil || !got.Equal(want[h]) || !got.Validators().Equal(setOf[h]) {
				t.Fatalf("at height %d, priorities of %d: %v (%v), want %v", height, h, got, err, want[h].Priorities())
			}
		}
		for _, h := range []uint64{height, height + 3} {
			if _, err := s.PrioritiesAt(h); !errors.Is(err, ErrNotFound) {
				t.Fatalf("at height %d, priorities of %d: %v, want ErrNotFound", height, h, err)
			}
		}
	}
	check(s, 0)
	var last *ledger.Commit
	for h := uint64(1); h <= 5; h++ {
		b := c.NextBlock(st, nil, last, 0)
		res, err := ledger.Execute(st, s.Reader(), b)
		if err != nil {
			t.Fatalf("block %d: %v", h, err)
		}
		res.NextValidators = changes[h]
		cm := commitBy(t, c, b, st.Validators)
		if st, err = s.write(st, b, cm, b.Hash(), res); err != nil {
			t.Fatalf("write %d: %v", h, err)
		}
		last = cm
		check(s, h)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	reopen := func() (*Store, error) {
		db, err := kv.OpenLevel(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		s := Open(db)
		_, err = s.Init(c.Genesis, c.Balances, c.Records, genesisHash)
		return s, err
	}
	s2, err := reopen()
	if err != nil {
		t.Fatal(err)
	}
	check(s2, 5)

	// Damage the record, one field at a time.
	stored, err := s2.db.Get(keyState)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		damage func(ss *storedState)
		want   string
	}{
		{"another set", func(ss *storedState) { ss.Priorities = ledger.GenesisPriorities(smaller).Encode() }, "belong to validator set"},
		{"out of bounds", func(ss *storedState) {
			p, _ := ledger.DecodeProposerPriorities(larger, ss.Priorities)
			q := p.Priorities()
			q[0] = 3 * int64(larger.TotalPower())
			enc := ledger.GenesisPriorities(larger).Encode()
			copy(enc[len(enc)-8*len(q):], func() []byte {
				var b []byte
				for _, v := range q {
					b = binary.BigEndian.AppendUint64(b, uint64(v))
				}
				return b
			}())
			ss.Priorities = enc
		}, "outside"},
		{"next not carried", func(ss *storedState) { ss.NextPriorities = ledger.GenesisPriorities(larger).Encode() }, "not those of height 6 carried"},
		{"missing", func(ss *storedState) { ss.NextPriorities = nil }, "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ss storedState
			if err := json.Unmarshal(stored, &ss); err != nil {
				t.Fatal(err)
			}
			tc.damage(&ss)
			buf, err := json.Marshal(ss)
			if err != nil {
				t.Fatal(err)
			}
			b := s2.db.NewBatch()
			b.Put(keyState, buf)
			if err := s2.db.Write(b, true); err != nil {
				t.Fatal(err)
			}
			if _, err := s2.loadState(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("load: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// changedSets returns genesis without its last validator, and genesis with
// that validator's power raised to 25: the sets the tests change to.
func changedSets(t *testing.T, genesis *ledger.ValidatorSet) (smaller, larger *ledger.ValidatorSet) {
	t.Helper()
	smaller, err := ledger.NewValidatorSet(genesis.Validators()[:3])
	if err != nil {
		t.Fatal(err)
	}
	vals := genesis.Validators()
	vals[3].Power = 25
	if larger, err = ledger.NewValidatorSet(vals); err != nil {
		t.Fatal(err)
	}
	return smaller, larger
}
