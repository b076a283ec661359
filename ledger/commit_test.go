package ledger_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

const commitHeight = 7

var commitBlock = crypto.Sum([]byte("the decided block"))

// signCommit returns a commit for commitBlock at commitHeight, round 2,
// signed by the listed indices of keys in the order given.
func signCommit(keys []crypto.PrivKey, signers ...int) *ledger.Commit {
	c := &ledger.Commit{Height: commitHeight, Round: 2, BlockID: commitBlock}
	msg := ledger.VoteSignBytes(ledgertest.ChainID, ledger.Precommit, c.Height, c.Round, c.BlockID)
	for _, i := range signers {
		c.Sigs = append(c.Sigs, ledger.CommitSig{ValidatorIndex: uint32(i), Sig: keys[i].Sign(msg)})
	}
	return c
}

func TestCommitVerifyQuorumBoundary(t *testing.T) {
	cases := []struct {
		name    string
		powers  []uint64
		signers []int
		ok      bool
	}{
		{"2 of 4 equal powers", []uint64{1, 1, 1, 1}, []int{0, 1}, false},
		{"2 of 4 equal powers, other pair", []uint64{1, 1, 1, 1}, []int{1, 3}, false},
		{"3 of 4 equal powers", []uint64{1, 1, 1, 1}, []int{0, 1, 2}, true},
		{"3 of 4 equal powers, other triple", []uint64{1, 1, 1, 1}, []int{0, 2, 3}, true},
		{"4 of 4", []uint64{1, 1, 1, 1}, []int{0, 1, 2, 3}, true},
		{"exactly two thirds of 3", []uint64{1, 1, 1}, []int{0, 2}, false},
		{"3 of 3", []uint64{1, 1, 1}, []int{0, 1, 2}, true},
		{"exactly two thirds of 9", []uint64{3, 3, 3}, []int{1, 2}, false},
		{"exactly two thirds of 30 in unequal powers", []uint64{20, 5, 5}, nil, false}, // the 20 alone, set below
		{"one above two thirds of 30", []uint64{21, 5, 4}, nil, true},                  // the 21 alone
		{"none", []uint64{1, 1, 1, 1}, []int{}, false},
		{"single validator", []uint64{5}, []int{0}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vs, keys := valSet(t, "quorum-boundary", tc.powers...)
			signers := tc.signers
			if signers == nil { // the heaviest validator alone
				heaviest := 0
				for i := range vs.Size() {
					if vs.Get(i).Power > vs.Get(heaviest).Power {
						heaviest = i
					}
				}
				signers = []int{heaviest}
			}
			c := signCommit(keys, signers...)
			var power uint64
			for _, i := range signers {
				power += vs.Get(i).Power
			}
			err := c.Verify(ledgertest.ChainID, vs, commitHeight, commitBlock)
			if tc.ok != (err == nil) {
				t.Fatalf("signers with %d of %d power (quorum %d): err = %v, want ok=%v", power, vs.TotalPower(), vs.Quorum(), err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "voting power") {
				t.Fatalf("refused for another reason than power: %v", err)
			}
		})
	}
}

func TestCommitVerifyRefuses(t *testing.T) {
	vs, keys := valSet(t, "commit-verify", 1, 1, 1, 1)
	full := func() *ledger.Commit { return signCommit(keys, 0, 1, 2, 3) }
	cases := []struct {
		name   string
		commit func() *ledger.Commit
		height uint64
		block  crypto.Hash
		chain  string
		want   error
		msg    string
	}{
		{name: "nil commit", commit: func() *ledger.Commit { return nil }, msg: "missing"},
		{name: "unsorted indices", commit: func() *ledger.Commit { return signCommit(keys, 0, 2, 1, 3) }, msg: "increasing"},
		{name: "duplicate index making up the power", commit: func() *ledger.Commit { return signCommit(keys, 0, 1, 1) }, msg: "increasing"},
		{name: "every index twice", commit: func() *ledger.Commit { return signCommit(keys, 0, 0, 1, 1, 2, 2, 3, 3) }, msg: "increasing"},
		{name: "index out of range", commit: func() *ledger.Commit {
			c := full()
			c.Sigs = append(c.Sigs, ledger.CommitSig{ValidatorIndex: 4, Sig: c.Sigs[0].Sig})
			return c
		}, msg: "out of range"},
		{name: "huge index", commit: func() *ledger.Commit {
			c := signCommit(keys, 0, 1, 2)
			c.Sigs = append(c.Sigs, ledger.CommitSig{ValidatorIndex: ^uint32(0)})
			return c
		}, msg: "out of range"},
		{name: "wrong height", commit: full, height: commitHeight + 1, msg: "height"},
		{name: "wrong block", commit: full, block: crypto.Sum([]byte("another block")), msg: "for block"},
		{name: "height 0", commit: func() *ledger.Commit {
			c := full()
			c.Height = 0
			return c
		}, msg: "height 0"},
		{name: "nil block", commit: func() *ledger.Commit {
			c := full()
			c.BlockID = crypto.Hash{}
			return c
		}, msg: "nil block"},
		{name: "round above MaxRound", commit: func() *ledger.Commit {
			c := full()
			c.Round = ledger.MaxRound + 1
			return c
		}, msg: "round"},
		{name: "one bad signature among a quorum", commit: func() *ledger.Commit {
			c := full()
			c.Sigs[3].Sig[0] ^= 1
			return c
		}, want: ledger.ErrBadSignature, msg: "validator 3"},
		{name: "signatures of another validator's key", commit: func() *ledger.Commit {
			c := full()
			c.Sigs[1].Sig = c.Sigs[2].Sig
			return c
		}, want: ledger.ErrBadSignature, msg: "validator 1"},
		{name: "signed for another round", commit: func() *ledger.Commit {
			c := full()
			c.Round = 3
			return c
		}, want: ledger.ErrBadSignature},
		{name: "signed for another chain", commit: full, chain: "other-chain", want: ledger.ErrBadSignature},
		{name: "signatures as prevotes", commit: func() *ledger.Commit {
			c := full()
			msg := ledger.VoteSignBytes(ledgertest.ChainID, ledger.Prevote, c.Height, c.Round, c.BlockID)
			for i := range c.Sigs {
				c.Sigs[i].Sig = keys[c.Sigs[i].ValidatorIndex].Sign(msg)
			}
			return c
		}, want: ledger.ErrBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			height, block, chain := tc.height, tc.block, tc.chain
			if height == 0 {
				height = commitHeight
			}
			if block.IsZero() {
				block = commitBlock
			}
			if chain == "" {
				chain = ledgertest.ChainID
			}
			err := tc.commit().Verify(chain, vs, height, block)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want errors.Is %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %q, want it to mention %q", err, tc.msg)
			}
		})
	}
	if err := full().Verify(ledgertest.ChainID, vs, commitHeight, commitBlock); err != nil {
		t.Fatalf("the unaltered commit: %v", err)
	}
}

// Votes expands a commit into precommits that each verify on their own.
func TestCommitVotesVerifyOneByOne(t *testing.T) {
	vs, keys := valSet(t, "commit-votes", 5, 1, 3, 2)
	c := signCommit(keys, 0, 2, 3)
	votes := c.Votes(vs)
	if len(votes) != 3 {
		t.Fatalf("%d votes from 3 signatures", len(votes))
	}
	for i, v := range votes {
		idx, err := v.Verify(ledgertest.ChainID, vs)
		if err != nil || idx != int(c.Sigs[i].ValidatorIndex) || v.Type != ledger.Precommit {
			t.Fatalf("vote %d: index %d, %v", i, idx, err)
		}
	}
}
