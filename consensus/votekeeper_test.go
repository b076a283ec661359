package consensus

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// quorums renders what the keeper's guards would see in round r, for the
// blocks in ids: "polka A", "polka-any", "precommit A", "precommit-any",
// "skip" (f+1 active in r), joined by "; ".
func quorums(k *VoteKeeper, r uint32, ids map[string]crypto.Hash) string {
	names := []string{"A", "B", "nil"}
	var out []string
	for _, n := range names {
		if k.PolkaFor(r, ids[n]) {
			out = append(out, "polka "+n)
		}
	}
	if k.PolkaAny(r) {
		out = append(out, "polka-any")
	}
	for _, n := range names {
		if k.PrecommitFor(r, ids[n]) {
			out = append(out, "precommit "+n)
		}
	}
	if k.PrecommitAny(r) {
		out = append(out, "precommit-any")
	}
	if s, ok := k.HighestSkipRound(); ok && s == r {
		out = append(out, "skip")
	}
	return strings.Join(out, "; ")
}

// TestVoteKeeperTalliesByPower feeds votes with unequal powers and checks,
// after each, which quorums hold in the vote's round.
func TestVoteKeeperTalliesByPower(t *testing.T) {
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
		want  string // quorums of the round after the vote, or "error ..."/"evidence" first
	}
	tests := []struct {
		name    string
		adds    []add
		commits []string // CommitQuorums at the end, as "r/block"
	}{
		{"polka for a value and for anything", []add{
			{ledger.Prevote, 0, "A", 4, "skip"},
			{ledger.Prevote, 0, "A", 2, "skip"},
			{ledger.Prevote, 0, "A", 1, "polka A; polka-any; skip"},
			{ledger.Prevote, 0, "B", 3, "polka A; polka-any; skip"},
		}, nil},
		{"polka for anything without a value", []add{
			{ledger.Prevote, 0, "A", 3, ""},
			{ledger.Prevote, 0, "nil", 2, "skip"},
			{ledger.Prevote, 0, "B", 4, "polka-any; skip"},
		}, nil},
		{"polka for nil", []add{
			{ledger.Prevote, 1, "nil", 4, "skip"},
			{ledger.Prevote, 1, "nil", 3, "polka nil; polka-any; skip"},
		}, nil},
		{"precommits for a value and for anything, per round", []add{
			{ledger.Precommit, 0, "A", 4, "skip"},
			{ledger.Precommit, 0, "A", 3, "precommit A; precommit-any; skip"},
			{ledger.Precommit, 1, "A", 4, "skip"},
			{ledger.Precommit, 1, "nil", 3, "precommit-any; skip"},
			{ledger.Precommit, 0, "A", 2, "precommit A; precommit-any"},
			{ledger.Precommit, 1, "A", 2, "precommit-any; skip"},
			{ledger.Precommit, 1, "A", 1, "precommit A; precommit-any; skip"},
		}, []string{"0/A", "1/A"}},
		{"f+1 counts each validator once across types", []add{
			{ledger.Prevote, 2, "A", 3, ""},
			{ledger.Precommit, 2, "A", 3, ""},
			{ledger.Precommit, 2, "nil", 1, "skip"},
		}, nil},
		{"a duplicate changes nothing", []add{
			{ledger.Prevote, 0, "A", 4, "skip"},
			{ledger.Prevote, 0, "A", 4, "error duplicate; skip"},
			{ledger.Prevote, 0, "A", 3, "polka A; polka-any; skip"},
		}, nil},
		{"an equivocation counts for each of its blocks but once in the totals", []add{
			{ledger.Prevote, 0, "A", 4, "skip"},
			{ledger.Prevote, 0, "B", 4, "evidence; skip"},
			{ledger.Prevote, 0, "B", 4, "error duplicate; skip"},
			{ledger.Prevote, 0, "nil", 4, "skip"},
			{ledger.Prevote, 0, "nil", 4, "error duplicate; skip"},
			{ledger.Prevote, 0, "B", 2, "skip"},
			{ledger.Prevote, 0, "B", 1, "polka B; polka-any; skip"},
			{ledger.Prevote, 0, "A", 3, "polka A; polka B; polka-any; skip"},
		}, nil},
		{"three precommits of one validator each count for their value", []add{
			{ledger.Precommit, 0, "nil", 4, "skip"},
			{ledger.Precommit, 0, "A", 4, "evidence; skip"},
			{ledger.Precommit, 0, "B", 4, "skip"},
			{ledger.Precommit, 0, "B", 3, "precommit B; precommit-any; skip"},
			{ledger.Precommit, 0, "A", 2, "precommit B; precommit-any; skip"},
		}, []string{"0/B"}},
		{"precommit quorums for two values are each listed once", []add{
			{ledger.Precommit, 0, "A", 4, "skip"},
			{ledger.Precommit, 0, "B", 4, "evidence; skip"},
			{ledger.Precommit, 0, "B", 3, "precommit B; precommit-any; skip"},
			{ledger.Precommit, 0, "A", 3, "evidence; precommit A; precommit B; precommit-any; skip"},
			{ledger.Precommit, 0, "A", 2, "precommit A; precommit B; precommit-any; skip"},
			{ledger.Precommit, 0, "B", 2, "evidence; precommit A; precommit B; precommit-any; skip"},
		}, []string{"0/B", "0/A"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := NewVoteKeeper(vals, 1)
			k.SetRound(2)
			for n, a := range tc.adds {
				v := &ledger.Vote{Type: a.typ, Height: 1, Round: a.round, BlockID: ids[a.block]}
				v.Sign(testChain, byPower[a.power])
				ev, err := k.Add(v)
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
				if q := quorums(k, a.round, ids); q != "" {
					got = append(got, q)
				}
				if g := strings.Join(got, "; "); g != a.want {
					t.Fatalf("add %d (%s r=%d %s by power %d): got %q, want %q", n, a.typ, a.round, a.block, a.power, g, a.want)
				}
			}
			var commits []string
			for _, q := range k.CommitQuorums() {
				name := map[crypto.Hash]string{idA: "A", idB: "B"}[q.BlockID]
				commits = append(commits, fmt.Sprintf("%d/%s", q.Round, name))
			}
			if g, w := strings.Join(commits, " "), strings.Join(tc.commits, " "); g != w {
				t.Fatalf("commit quorums %q, want %q", g, w)
			}
		})
	}
}

// keeperModel recounts the accepted votes and observed proposals of one
// height from scratch, the paper's way: power of the distinct validators
// per (round, type, block), per (round, type) and per round.
type keeperModel struct {
	vals    *ledger.ValidatorSet
	votes   []ledger.Vote
	present map[uint32]map[int]bool
	commits []CommitQuorum // in the order the recount first showed them
}

func (m *keeperModel) power(r uint32, t ledger.VoteType, id *crypto.Hash) uint64 {
	seen := map[int]bool{}
	var p uint64
	for _, v := range m.votes {
		if v.Round != r || v.Type != t || (id != nil && v.BlockID != *id) {
			continue
		}
		i, _ := m.vals.ByAddress(v.Validator)
		if !seen[i] {
			seen[i] = true
			p += m.vals.Get(i).Power
		}
	}
	return p
}

// slot reports what the accepted votes hold of validator i in round r
// and type t: how many different values, whether id is one of them, and
// the power of the other validators whose first vote there names id.
func (m *keeperModel) slot(i int, r uint32, t ledger.VoteType, id crypto.Hash) (held int, has bool, backing uint64) {
	firsts := map[int]bool{}
	for _, v := range m.votes {
		if v.Round != r || v.Type != t {
			continue
		}
		j, _ := m.vals.ByAddress(v.Validator)
		if j == i {
			held++
			has = has || v.BlockID == id
		} else if !firsts[j] {
			firsts[j] = true
			if v.BlockID == id {
				backing += m.vals.Get(j).Power
			}
		}
	}
	return held, has, backing
}

func (m *keeperModel) skip() (uint32, bool) {
	var best uint32
	found := false
	for r, who := range m.present {
		var p uint64
		for i := range who {
			p += m.vals.Get(i).Power
		}
		if p >= m.vals.OneThirdPlus() && (!found || r > best) {
			best, found = r, true
		}
	}
	return best, found
}

// TestVoteKeeperMatchesARecount feeds random votes (duplicates and
// equivocations included) and proposals' presence to a keeper and checks
// every answer against a recount from scratch after each accepted input;
// in particular that every (round, block) precommit quorum is listed
// exactly once, in the order reached, so L49 sees each once.
func TestVoteKeeperMatchesARecount(t *testing.T) {
	var commits, polkas, skips, backed int // reached over all seeds: the test is not vacuous
	for seed := uint64(0); seed < 100; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 2))
			keys, vals := testKeysPowers([]uint64{4, 3, 2, 1, 1})
			ids := []crypto.Hash{{}, crypto.Sum([]byte("A")), crypto.Sum([]byte("B")), crypto.Sum([]byte("C")), crypto.Sum([]byte("D")), crypto.Sum([]byte("E"))}
			k := NewVoteKeeper(vals, 1)
			m := &keeperModel{vals: vals, present: map[uint32]map[int]bool{}}
			base := uint32(0)
			mark := func(i int, round uint32) {
				if m.present[round] == nil {
					m.present[round] = map[int]bool{}
				}
				m.present[round][i] = true
			}
			for n := 0; n < 400; n++ {
				round := uint32(r.IntN(6))
				i := r.IntN(len(keys))
				switch r.IntN(12) {
				case 0:
					base = min(base+1, 5)
					k.SetRound(base)
					continue
				case 1:
					if err := k.Observe(i, round); err == nil {
						mark(i, round)
					}
				default:
					typ := ledger.Prevote
					if r.IntN(2) == 0 {
						typ = ledger.Precommit
					}
					v := &ledger.Vote{Type: typ, Height: 1, Round: round, BlockID: ids[r.IntN(len(ids))]}
					v.Sign(testChain, keys[i])
					held, has, backing := m.slot(i, round, typ, v.BlockID)
					_, err := k.Add(v)
					if held > 0 { // the future-round window does not apply
						want := !has && held < MaxVoteValues && (held < MaxUnbackedVoteValues || backing >= vals.OneThirdPlus())
						if (err == nil) != want {
							t.Fatalf("seed %d input %d: %s (validator holds %d values, has it %v, backed by %d): err = %v, want kept %v",
								seed, n, VoteString(v), held, has, backing, err, want)
						}
						if want && held >= MaxUnbackedVoteValues {
							backed++
						}
					}
					if err != nil {
						continue
					}
					m.votes = append(m.votes, *v)
					mark(i, round)
				}
				for rr := uint32(0); rr < 6; rr++ {
					for _, id := range ids {
						if got, want := k.PolkaFor(rr, id), m.power(rr, ledger.Prevote, &id) >= vals.Quorum(); got != want {
							t.Fatalf("seed %d input %d: PolkaFor(%d, %s) = %v, recount %v", seed, n, rr, ShortID(id), got, want)
						}
						reached := m.power(rr, ledger.Precommit, &id) >= vals.Quorum()
						if got := k.PrecommitFor(rr, id); got != reached {
							t.Fatalf("seed %d input %d: PrecommitFor(%d, %s) = %v, recount %v", seed, n, rr, ShortID(id), got, reached)
						}
						q := CommitQuorum{Round: rr, BlockID: id}
						if reached && !id.IsZero() && !slices.Contains(m.commits, q) {
							m.commits = append(m.commits, q)
						}
					}
					if got, want := k.PolkaAny(rr), m.power(rr, ledger.Prevote, nil) >= vals.Quorum(); got != want {
						t.Fatalf("seed %d input %d: PolkaAny(%d) = %v, recount %v", seed, n, rr, got, want)
					}
					if got, want := k.PrecommitAny(rr), m.power(rr, ledger.Precommit, nil) >= vals.Quorum(); got != want {
						t.Fatalf("seed %d input %d: PrecommitAny(%d) = %v, recount %v", seed, n, rr, got, want)
					}
				}
				gs, gok := k.HighestSkipRound()
				ws, wok := m.skip()
				if gs != ws || gok != wok {
					t.Fatalf("seed %d input %d: HighestSkipRound = %d %v, recount %d %v", seed, n, gs, gok, ws, wok)
				}
				if got := k.CommitQuorums(); !slices.Equal(got, m.commits) {
					t.Fatalf("seed %d input %d: CommitQuorums = %v, recount %v", seed, n, got, m.commits)
				}
			}
			commits += len(m.commits)
			for rr := uint32(0); rr < 6; rr++ {
				if k.PolkaAny(rr) {
					polkas++
				}
			}
			if _, ok := k.HighestSkipRound(); ok {
				skips++
			}
		})
	}
	t.Logf("reached: %d commit quorums, %d polkas for anything, %d skip rounds, %d backed votes beyond the unconditional values", commits, polkas, skips, backed)
	if commits == 0 || polkas == 0 || skips == 0 || backed == 0 {
		t.Fatalf("the random inputs reached %d commit quorums, %d polkas, %d skip rounds, %d backed votes: too weak a test", commits, polkas, skips, backed)
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
		if _, err := k.Add(v); err != nil {
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
	if _, err := k.Add(v); !errors.Is(err, ErrNotValidator) {
		t.Fatalf("stranger's vote: err = %v, want ErrNotValidator", err)
	}
	keys, _ := testKeys(4)
	v = &ledger.Vote{Type: ledger.Prevote, Height: 2}
	v.Sign(testChain, keys[0])
	if _, err := k.Add(v); !errors.Is(err, ErrMalformed) {
		t.Fatalf("vote of another height: err = %v, want ErrMalformed", err)
	}
}

// signedVote returns key's vote of type t for id at height 1, round r.
func signedVote(key crypto.PrivKey, t ledger.VoteType, r uint32, id crypto.Hash) *ledger.Vote {
	v := &ledger.Vote{Type: t, Height: 1, Round: r, BlockID: id}
	v.Sign(testChain, key)
	return v
}

// permutations returns every order of xs.
func permutations[T any](xs []T) [][]T {
	if len(xs) <= 1 {
		return [][]T{slices.Clone(xs)}
	}
	var out [][]T
	for i := range xs {
		rest := append(slices.Clone(xs[:i]), xs[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]T{xs[i]}, p...))
		}
	}
	return out
}

// TestVoteKeeperThreeConflictingPrecommitsDecideTheSameEverywhere: a
// faulty validator Z precommits three values A, B and C in one round, and
// two honest validators precommit C; with Z's vote, C has a quorum. Every
// keeper must see that quorum, whatever order Z's precommits reach it in
// and whether the honest ones come before, between or after them: two
// honest nodes that got Z's votes in different orders must reach the same
// decision. A keeper that kept only two of Z's votes refused C on the
// keepers that got it last, and those nodes never decided (the
// simulator's TestThirdVote, seed 248).
func TestVoteKeeperThreeConflictingPrecommitsDecideTheSameEverywhere(t *testing.T) {
	keys, vals := testKeys(4) // quorum 3
	z, honest := keys[0], keys[1:3]
	idA, idB, idC := crypto.Sum([]byte("A")), crypto.Sum([]byte("B")), crypto.Sum([]byte("C"))
	name := map[crypto.Hash]string{idA: "A", idB: "B", idC: "C"}
	for _, order := range permutations([]crypto.Hash{idA, idB, idC}) {
		for at := 0; at <= len(order); at++ { // the honest precommits come before Z's vote number at
			var feed []*ledger.Vote
			var desc []string
			for n, id := range order {
				if n == at {
					for _, h := range honest {
						feed = append(feed, signedVote(h, ledger.Precommit, 0, idC))
					}
					desc = append(desc, "honest C")
				}
				feed = append(feed, signedVote(z, ledger.Precommit, 0, id))
				desc = append(desc, "Z "+name[id])
			}
			if at == len(order) {
				for _, h := range honest {
					feed = append(feed, signedVote(h, ledger.Precommit, 0, idC))
				}
				desc = append(desc, "honest C")
			}
			k := NewVoteKeeper(vals, 1)
			var evidence int
			for _, v := range feed {
				ev, err := k.Add(v)
				if err != nil && !errors.Is(err, ErrDuplicate) {
					t.Fatalf("%s: add %s: %v", strings.Join(desc, ", "), VoteString(v), err)
				}
				if ev != nil {
					if err := ev.Verify(testChain, vals); err != nil {
						t.Fatalf("%s: evidence does not verify: %v", strings.Join(desc, ", "), err)
					}
					evidence++
				}
			}
			want := []CommitQuorum{{Round: 0, BlockID: idC}}
			if got := k.CommitQuorums(); !slices.Equal(got, want) || !k.PrecommitFor(0, idC) {
				t.Fatalf("order %s: commit quorums %v, want C's alone", strings.Join(desc, ", "), got)
			}
			c := k.Commit(0, idC)
			if c == nil || len(c.Sigs) != 3 {
				t.Fatalf("order %s: commit %+v, want Z's and the two honest signatures", strings.Join(desc, ", "), c)
			}
			if err := c.Verify(testChain, vals, 1, idC); err != nil {
				t.Fatalf("order %s: commit does not verify: %v", strings.Join(desc, ", "), err)
			}
			if evidence != 1 {
				t.Fatalf("order %s: %d pieces of evidence, want one (Z's first two values)", strings.Join(desc, ", "), evidence)
			}
		}
	}
}

// TestVoteKeeperKeepsABackedValueBeyondTheBound: a faulty validator Z
// names more values than the keeper keeps unconditionally. A further
// value is refused while few back it, kept when its vote comes again once
// honest first votes of more than a third of the power name it, and the
// keeper never holds more than MaxVoteValues of Z's values.
func TestVoteKeeperKeepsABackedValueBeyondTheBound(t *testing.T) {
	keys, vals := testKeys(7) // quorum 5, more than a third 3
	z, honest := keys[0], keys[1:5]
	k := NewVoteKeeper(vals, 1)
	junk := func(n int) crypto.Hash { return crypto.Sum([]byte(fmt.Sprintf("junk %d", n))) }
	for n := range MaxUnbackedVoteValues {
		if _, err := k.Add(signedVote(z, ledger.Prevote, 0, junk(n))); err != nil {
			t.Fatalf("Z's value %d of %d unconditionally kept: %v", n+1, MaxUnbackedVoteValues, err)
		}
	}
	x := crypto.Sum([]byte("X"))
	zx := signedVote(z, ledger.Prevote, 0, x)
	if _, err := k.Add(zx); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("Z's vote for X, backed by nobody, beyond %d values: err = %v, want ErrDuplicate", MaxUnbackedVoteValues, err)
	}
	if k.Names(0, x) {
		t.Fatal("a refused vote changed the tallies")
	}
	for n, h := range honest {
		if _, err := k.Add(signedVote(h, ledger.Prevote, 0, x)); err != nil {
			t.Fatal(err)
		}
		if n == 1 { // two of seven back X: not more than a third
			if _, err := k.Add(zx); !errors.Is(err, ErrDuplicate) {
				t.Fatalf("Z's vote for X backed by 2 of 7: err = %v, want ErrDuplicate", err)
			}
		}
	}
	if k.PolkaFor(0, x) {
		t.Fatal("four honest prevotes of seven make a polka")
	}
	if ev, err := k.Add(zx); err != nil || ev != nil {
		t.Fatalf("Z's vote for X delivered again, backed by 4 of 7: evidence %v, err %v; want it kept, no new evidence", ev, err)
	}
	if !k.PolkaFor(0, x) || len(k.VotesFor(0, ledger.Prevote, x)) != 5 {
		t.Fatalf("X with Z's vote: polka %v, %d votes; want a polka of 5", k.PolkaFor(0, x), len(k.VotesFor(0, ledger.Prevote, x)))
	}
	// The two other validators back nil; Z's nil is the last place.
	for _, h := range keys[5:] {
		if _, err := k.Add(signedVote(h, ledger.Prevote, 0, crypto.Hash{})); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := k.Add(signedVote(z, ledger.Prevote, 0, crypto.Hash{})); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("Z's nil backed by 2 of 7: err = %v, want ErrDuplicate", err)
	}
	for n := MaxUnbackedVoteValues; n < 3*MaxVoteValues; n++ {
		if _, err := k.Add(signedVote(z, ledger.Prevote, 0, junk(n))); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("Z's junk value %d: err = %v, want ErrDuplicate", n, err)
		}
	}
	zAddr := vals.Get(0).Address()
	var held []string
	for n := -1; n < 3*MaxVoteValues; n++ {
		id := x
		if n >= 0 {
			id = junk(n)
		}
		for _, v := range k.VotesFor(0, ledger.Prevote, id) {
			if v.Validator == zAddr {
				held = append(held, ShortID(id))
			}
		}
	}
	if len(held) != MaxUnbackedVoteValues+1 || len(held) > MaxVoteValues {
		t.Fatalf("the keeper holds Z's prevotes for %v; want X and the first %d junk values", held, MaxUnbackedVoteValues)
	}
}
