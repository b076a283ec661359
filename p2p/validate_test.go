package p2p

import (
	"bytes"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// TestValidatorVerdicts pins each topic validator's answer for good,
// garbage, wrong-chain, bad-signature, non-validator, stale and
// far-future messages, with the consensus position at height 10 round 2.
// A round beyond the window is rejected (its sender penalised) at every
// height the validator accepts, not only the current one.
func TestValidatorVerdicts(t *testing.T) {
	vals, keys := testVals(t)
	const H, R = 10, 2
	c := newChecker(testChainID, staticSets{vals}, func() (uint64, uint32) { return H, R })
	stranger := ledgertest.Key("stranger", 0)
	tc := getChain(t, 1, 3)
	blk, err := ledger.DecodeBlock(tc.blocks[0])
	if err != nil {
		t.Fatal(err)
	}
	acct := tc.c.Accounts
	to := acct[1].PubKey().Address()

	// Transactions.
	goodTx := ledgertest.Transfer(acct[0], to, 5, 1, 0)
	wrongChainTx := &ledger.Tx{ChainID: "other-chain", To: to, Amount: 5, Fee: 1}
	wrongChainTx.Sign(acct[0])
	badSigTx := *goodTx
	badSigTx.Sig[0] ^= 1
	zeroTx := ledgertest.Transfer(acct[0], to, 0, 1, 0)

	// Votes.
	vote := func(key crypto.PrivKey, chain string, h uint64, r uint32) *ledger.Vote {
		v := &ledger.Vote{Type: ledger.Prevote, Height: h, Round: r, BlockID: hashOf("block")}
		v.Sign(chain, key)
		return v
	}
	badSig := func(v *ledger.Vote) *ledger.Vote { v.Sig[5] ^= 0x40; return v }

	// Proposals and parts.
	prop := func(key crypto.PrivKey, chain string, h uint64, r uint32) (*ledger.Proposal, []*ledger.Part) {
		hdr, parts := ledger.SplitBlock(blk.Encode())
		p := &ledger.Proposal{Height: h, Round: r, POLRound: -1, BlockID: blk.Hash(), Parts: hdr}
		p.Sign(chain, key)
		return p, parts
	}
	goodProp, goodParts := prop(keys[0], testChainID, H, R)
	wrongChainProp, _ := prop(keys[0], "other-chain", H, R)
	strangerProp, _ := prop(stranger, testChainID, H, R)
	staleProp, staleParts := prop(keys[0], testChainID, H-1, 0)
	futureProp, _ := prop(keys[0], testChainID, H+2, 0)
	nextFarProp, _ := prop(keys[0], testChainID, H+1, 1<<20)
	farRoundProp, _ := prop(keys[0], testChainID, H, R+MaxRoundsAhead+1)
	badSigProp := *goodProp
	badSigProp.Sig[0] ^= 1
	tamperedPart := *goodParts[0]
	tamperedPart.Bytes = bytes.Clone(tamperedPart.Bytes)
	tamperedPart.Bytes[0] ^= 1
	outOfRangePart := *goodParts[0]
	outOfRangePart.Index = 7

	// Evidence.
	equivocate := func(key crypto.PrivKey, chain string, h uint64, a, b string) *ledger.Evidence {
		va := &ledger.Vote{Type: ledger.Precommit, Height: h, Round: 0, BlockID: hashOf(a)}
		vb := &ledger.Vote{Type: ledger.Precommit, Height: h, Round: 0, BlockID: hashOf(b)}
		va.Sign(chain, key)
		vb.Sign(chain, key)
		return ledger.NewEvidence(va, vb)
	}
	goodEv := equivocate(keys[1], testChainID, H-5, "a", "b")
	badSigEv := equivocate(keys[1], testChainID, H-5, "a", "b")
	badSigEv.VoteB.Sig[0] ^= 1

	garbage := []byte{envelopeVersion, 0x42, 1, 2, 3}
	oversized := make([]byte, maxEnvelopeBytes+1)

	cases := []struct {
		name  string
		topic int
		data  []byte
		local bool
		want  verdict
	}{
		{"tx/good", topicTx, encodeTx(goodTx), false, accept},
		{"tx/garbage", topicTx, append([]byte{envelopeVersion, byte(kindTx)}, 9, 9, 9), false, reject},
		{"tx/unknown kind", topicTx, garbage, false, reject},
		{"tx/unknown version", topicTx, append([]byte{9}, encodeTx(goodTx)[1:]...), false, reject},
		{"tx/oversized", topicTx, oversized, false, reject},
		{"tx/empty", topicTx, nil, false, reject},
		{"tx/wrong chain", topicTx, encodeTx(wrongChainTx), false, reject},
		{"tx/bad signature", topicTx, encodeTx(&badSigTx), false, reject},
		{"tx/zero amount", topicTx, encodeTx(zeroTx), false, reject},
		{"tx/vote on tx topic", topicTx, encodeVote(vote(keys[0], testChainID, H, R)), false, reject},
		{"tx/trailing byte", topicTx, append(encodeTx(goodTx), 0), false, reject},

		{"vote/good", topicVote, encodeVote(vote(keys[0], testChainID, H, R)), false, accept},
		{"vote/previous height (late precommit)", topicVote, encodeVote(vote(keys[0], testChainID, H-1, 0)), false, accept},
		{"vote/next height", topicVote, encodeVote(vote(keys[0], testChainID, H+1, 0)), false, accept},
		{"vote/later round", topicVote, encodeVote(vote(keys[0], testChainID, H, R+MaxRoundsAhead)), false, accept},
		{"vote/garbage", topicVote, []byte{envelopeVersion, byte(kindVote), 1, 2}, false, reject},
		{"vote/wrong chain", topicVote, encodeVote(vote(keys[0], "other-chain", H, R)), false, reject},
		{"vote/bad signature", topicVote, encodeVote(badSig(vote(keys[0], testChainID, H, R))), false, reject},
		{"vote/non-validator", topicVote, encodeVote(vote(stranger, testChainID, H, R)), false, reject},
		{"vote/stale height", topicVote, encodeVote(vote(keys[0], testChainID, H-2, 0)), false, ignore},
		{"vote/stale height, bad signature", topicVote, encodeVote(badSig(vote(keys[0], testChainID, H-2, 0))), false, reject},
		{"vote/far-future height", topicVote, encodeVote(vote(keys[0], testChainID, H+2, 0)), false, ignore},
		{"vote/far-future round", topicVote, encodeVote(vote(keys[0], testChainID, H, R+MaxRoundsAhead+1)), false, reject},
		{"vote/next height, round in window", topicVote, encodeVote(vote(keys[0], testChainID, H+1, MaxRoundsAhead)), false, accept},
		{"vote/next height, far-future round", topicVote, encodeVote(vote(keys[0], testChainID, H+1, MaxRoundsAhead+1)), false, reject},
		{"vote/next height, round 2^20", topicVote, encodeVote(vote(keys[0], testChainID, H+1, 1<<20)), false, reject},
		{"vote/previous height, far-future round", topicVote, encodeVote(vote(keys[0], testChainID, H-1, R+MaxRoundsAhead+1)), false, reject},
		{"vote/far-future height, far round", topicVote, encodeVote(vote(keys[0], testChainID, H+2, 1<<20)), false, ignore},
		{"vote/round above MaxRound", topicVote, encodeVote(vote(keys[0], testChainID, H, ledger.MaxRound+1)), false, reject},
		{"vote/local stale", topicVote, encodeVote(vote(keys[0], testChainID, H-2, 0)), true, accept},
		{"vote/proposal on vote topic", topicVote, encodeProposal(goodProp), false, reject},

		{"proposal/good", topicProposal, encodeProposal(goodProp), false, accept},
		{"proposal/garbage", topicProposal, []byte{envelopeVersion, byte(kindProposal)}, false, reject},
		{"proposal/wrong chain", topicProposal, encodeProposal(wrongChainProp), false, reject},
		{"proposal/bad signature", topicProposal, encodeProposal(&badSigProp), false, reject},
		{"proposal/non-validator", topicProposal, encodeProposal(strangerProp), false, reject},
		{"proposal/stale height", topicProposal, encodeProposal(staleProp), false, ignore},
		{"proposal/far-future height", topicProposal, encodeProposal(futureProp), false, ignore},
		{"proposal/next height, far-future round", topicProposal, encodeProposal(nextFarProp), false, reject},
		{"proposal/far-future round", topicProposal, encodeProposal(farRoundProp), false, reject},
		{"proposal/tx on proposal topic", topicProposal, encodeTx(goodTx), false, reject},

		{"part/good", topicProposal, encodePart(goodProp, goodParts[0]), false, accept},
		{"part/tampered bytes", topicProposal, encodePart(goodProp, &tamperedPart), false, reject},
		{"part/index out of range", topicProposal, encodePart(goodProp, &outOfRangePart), false, reject},
		{"part/of a wrong-chain proposal", topicProposal, encodePart(wrongChainProp, goodParts[0]), false, reject},
		{"part/of a bad-signature proposal", topicProposal, encodePart(&badSigProp, goodParts[0]), false, reject},
		{"part/of a non-validator proposal", topicProposal, encodePart(strangerProp, goodParts[0]), false, reject},
		{"part/of a stale proposal", topicProposal, encodePart(staleProp, staleParts[0]), false, ignore},
		{"part/garbage", topicProposal, append([]byte{envelopeVersion, byte(kindPart)}, 3, 1, 2, 3), false, reject},

		{"evidence/good", topicEvidence, encodeEvidence(goodEv), false, accept},
		{"evidence/garbage", topicEvidence, []byte{envelopeVersion, byte(kindEvidence), 0}, false, reject},
		{"evidence/wrong chain", topicEvidence, encodeEvidence(equivocate(keys[1], "other-chain", H, "a", "b")), false, reject},
		{"evidence/bad signature", topicEvidence, encodeEvidence(badSigEv), false, reject},
		{"evidence/non-validator", topicEvidence, encodeEvidence(equivocate(stranger, testChainID, H, "a", "b")), false, reject},
		{"evidence/same block twice", topicEvidence, encodeEvidence(equivocate(keys[1], testChainID, H, "a", "a")), false, reject},
		{"evidence/far-future height", topicEvidence, encodeEvidence(equivocate(keys[1], testChainID, H+2, "a", "b")), false, ignore},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got, m, err := c.check(topicSpecs[tt.topic].kinds, tt.data, tt.local)
			if got != tt.want {
				t.Fatalf("verdict %s (%v), want %s", got, err, tt.want)
			}
			if (got == accept) != (m != nil) {
				t.Fatalf("verdict %s with message %v", got, m)
			}
			if got == accept && !bytes.Equal(m.encode(), tt.data) {
				t.Fatal("accepted message does not re-encode to its input")
			}
		})
	}
}

func TestHashCacheIsBounded(t *testing.T) {
	c := newHashCache(4)
	for i := range 100 {
		c.add(hashOf(string(rune('a' + i))))
	}
	if n := len(c.young) + len(c.old); n > 8 {
		t.Fatalf("cache holds %d entries, bound is 8", n)
	}
	if !c.has(hashOf(string(rune('a' + 99)))) {
		t.Fatal("most recent entry forgotten")
	}
}

func TestRejectCounterWindow(t *testing.T) {
	c := newRejectCounter(3, 1<<62)
	p := genPeerID(t)
	if c.add(p) || c.add(p) {
		t.Fatal("limit reached early")
	}
	if !c.add(p) {
		t.Fatal("limit not reached at 3 rejects")
	}
	c.forget(p)
	if c.add(p) {
		t.Fatal("count survived forget")
	}
}
