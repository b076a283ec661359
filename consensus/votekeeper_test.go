package consensus

import (
	"errors"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// TestVoteKeeperReportsEachThresholdOnce feeds votes with unequal powers
// and checks which thresholds each vote makes reachable for the first time.
func TestVoteKeeperReportsEachThresholdOnce(t *testing.T) {
	// Powers 4, 3, 2, 1 (canonical order differs; the test names keys by
	// power): total 10, quorum 7, f+1 = 4.
	keys, vals := testKeysPowers([]uint64{4, 3, 2, 1})
	byPower := map[uint64]crypto.PrivKey{}
	for i, k := range keys {
		byPower[vals.Get(i).Power] = k
	}
	idA, idB := crypto.Sum([]byte("A")), crypto.Sum([]byte("B"))
	ids := map[string]crypto.Hash{"A": idA, "B": idB, "nil": {}}
	type add struct {
		typ   ledger.VoteType
		round uint32
		block string
		power uint64
		want  string // thresholds, "; "-joined, or "error ..."
	}
	tests := []struct {
		name string
		adds []add
	}{
		{"polka for a value and for anything, then nothing more", []add{
			{ledger.Prevote, 0, "A", 4, "skip-round r=0"},
			{ledger.Prevote, 0, "A", 2, ""},
			{ledger.Prevote, 0, "A", 1, "polka-value r=0 " + ShortID(idA) + "; polka-any r=0"},
			{ledger.Prevote, 0, "B", 3, ""},
		}},
		{"polka for anything without a value", []add{
			{ledger.Prevote, 0, "A", 3, ""},
			{ledger.Prevote, 0, "nil", 2, "skip-round r=0"},
			{ledger.Prevote, 0, "B", 4, "polka-any r=0"},
		}},
		{"polka for nil", []add{
			{ledger.Prevote, 1, "nil", 4, "skip-round r=1"},
			{ledger.Prevote, 1, "nil", 3, "polka-nil r=1; polka-any r=1"},
		}},
		{"precommits for a value and for anything, per round", []add{
			{ledger.Precommit, 0, "A", 4, "skip-round r=0"},
			{ledger.Precommit, 0, "A", 3, "precommit-value r=0 " + ShortID(idA) + "; precommit-any r=0"},
			{ledger.Precommit, 1, "A", 4, "skip-round r=1"},
			{ledger.Precommit, 1, "nil", 3, "precommit-any r=1"},
		}},
		{"f+1 counts each validator once across types", []add{
			{ledger.Prevote, 2, "A", 3, ""},
			{ledger.Precommit, 2, "A", 3, ""},
			{ledger.Precommit, 2, "nil", 1, "skip-round r=2"},
		}},
		{"a duplicate changes nothing", []add{
			{ledger.Prevote, 0, "A", 4, "skip-round r=0"},
			{ledger.Prevote, 0, "A", 4, "error duplicate"},
			{ledger.Prevote, 0, "A", 3, "polka-value r=0 " + ShortID(idA) + "; polka-any r=0"},
		}},
		{"an equivocation counts for its block but once in the totals", []add{
			{ledger.Prevote, 0, "A", 4, "skip-round r=0"},
			{ledger.Prevote, 0, "B", 4, "evidence"},
			{ledger.Prevote, 0, "B", 4, "error duplicate"},
			{ledger.Prevote, 0, "nil", 4, "error duplicate"},
			{ledger.Prevote, 0, "B", 2, ""},
			{ledger.Prevote, 0, "B", 1, "polka-value r=0 " + ShortID(idB) + "; polka-any r=0"},
			{ledger.Prevote, 0, "A", 3, "polka-value r=0 " + ShortID(idA)},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := NewVoteKeeper(vals, 1)
			k.SetRound(2)
			for n, a := range tc.adds {
				v := &ledger.Vote{Type: a.typ, Height: 1, Round: a.round, BlockID: ids[a.block]}
				v.Sign(testChain, byPower[a.power])
				ths, ev, err := k.Add(v)
				var got []string
				switch {
				case errors.Is(err, ErrDuplicate):
					got = append(got, "error duplicate")
				case err != nil:
					got = append(got, "error "+err.Error())
				case ev != nil:
					if err := ev.Verify(testChain, vals); err != nil {
						t.Fatalf("add %d: evidence does not verify: %v", n, err)
					}
					got = append(got, "evidence")
				}
				for _, th := range ths {
					got = append(got, th.String())
				}
				if g := strings.Join(got, "; "); g != a.want {
					t.Fatalf("add %d (%s r=%d %s by power %d): got %q, want %q", n, a.typ, a.round, a.block, a.power, g, a.want)
				}
			}
		})
	}
}

// TestVoteKeeperCommitVerifies checks that the commit assembled from the
// precommits that reached a quorum verifies against the validator set.
func TestVoteKeeperCommitVerifies(t *testing.T) {
	keys, vals := testKeysPowers([]uint64{5, 1, 1, 1, 1})
	k := NewVoteKeeper(vals, 7)
	id := crypto.Sum([]byte("block"))
	if c := k.Commit(3, id); c != nil {
		t.Fatal("commit without precommits")
	}
	nilVoter := -1
	for i := range keys {
		bid := id
		if nilVoter < 0 && vals.Get(i).Power == 1 {
			nilVoter, bid = i, crypto.Hash{} // a nil precommit stays out of the commit
		}
		v := &ledger.Vote{Type: ledger.Precommit, Height: 7, Round: 3, BlockID: bid}
		v.Sign(testChain, keys[i])
		if _, _, err := k.Add(v); err != nil {
			t.Fatal(err)
		}
	}
	c := k.Commit(3, id)
	if c == nil || len(c.Sigs) != 4 {
		t.Fatalf("commit = %+v, want 4 signatures", c)
	}
	if err := c.Verify(testChain, vals, 7, id); err != nil {
		t.Fatalf("commit does not verify: %v", err)
	}
}

// TestVoteKeeperRefusesStrangers checks membership and height.
func TestVoteKeeperRefusesStrangers(t *testing.T) {
	_, vals := testKeys(4)
	k := NewVoteKeeper(vals, 1)
	stranger, _ := crypto.PrivKeyFromSeed(make([]byte, 32))
	v := &ledger.Vote{Type: ledger.Prevote, Height: 1}
	v.Sign(testChain, stranger)
	if _, _, err := k.Add(v); !errors.Is(err, ErrNotValidator) {
		t.Fatalf("stranger's vote: err = %v, want ErrNotValidator", err)
	}
	keys, _ := testKeys(4)
	v = &ledger.Vote{Type: ledger.Prevote, Height: 2}
	v.Sign(testChain, keys[0])
	if _, _, err := k.Add(v); !errors.Is(err, ErrMalformed) {
		t.Fatalf("vote of another height: err = %v, want ErrMalformed", err)
	}
}
