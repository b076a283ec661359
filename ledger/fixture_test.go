package ledger_test

import (
	"math/rand/v2"
	"testing"

	"github.com/ledgerd/ledgerd/internal/testkit/testseed"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// testRand returns a seeded generator; the seed is printed and replays
// with -seed (see internal/testkit/testseed).
func testRand(t testing.TB) (*rand.Rand, uint64) { return testseed.Rand(t) }

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randHash(r *rand.Rand) (h crypto.Hash) {
	copy(h[:], randBytes(r, len(h)))
	return h
}

func randAddr(r *rand.Rand) (a crypto.Address) {
	copy(a[:], randBytes(r, len(a)))
	return a
}

func randSig(r *rand.Rand) (s crypto.Signature) {
	copy(s[:], randBytes(r, len(s)))
	return s
}

func randPub(r *rand.Rand) (p crypto.PubKey) {
	copy(p[:], randBytes(r, len(p)))
	return p
}

// randTx is a transaction with arbitrary field values (not a valid
// signature): the codec must carry any value.
func randTx(r *rand.Rand) *ledger.Tx {
	return &ledger.Tx{
		ChainID: string(randBytes(r, r.IntN(crypto.MaxChainIDLen+1))),
		From:    randPub(r),
		To:      randAddr(r),
		Amount:  r.Uint64(),
		Fee:     r.Uint64() >> r.IntN(64),
		Nonce:   r.Uint64() >> r.IntN(64),
		Sig:     randSig(r),
	}
}

// randKindTx is a transaction of kind k with arbitrary values in the
// fields k uses and zero in the others (which its encoding does not hold).
func randKindTx(r *rand.Rand, k ledger.TxKind) *ledger.Tx {
	tx := randTx(r)
	tx.Kind = k
	switch k {
	case ledger.TxCreateValidator:
		tx.To = crypto.Address{}
		tx.ConsKey = randPub(r)
		tx.Moniker = string(randBytes(r, r.IntN(ledger.MaxValidatorNameLen+1)))
	case ledger.TxUnjail:
		tx.To, tx.Amount = crypto.Address{}, 0
	}
	return tx
}

// stakingKinds are every kind but the transfer.
var stakingKinds = []ledger.TxKind{ledger.TxCreateValidator, ledger.TxDelegate, ledger.TxUndelegate, ledger.TxUnjail}

// randMixedBlock is randBlock with one transaction of every kind after its
// transfers, the smallest (an unjail with an empty chain ID) among them.
func randMixedBlock(r *rand.Rand) *ledger.Block {
	b := randBlock(r, 1, 1, true, 2)
	for _, k := range stakingKinds {
		b.Txs = append(b.Txs, randKindTx(r, k))
	}
	smallest := randKindTx(r, ledger.TxUnjail)
	smallest.ChainID = ""
	b.Txs = append(b.Txs, smallest)
	return b
}

func randHeader(r *rand.Rand) ledger.Header {
	return ledger.Header{
		ChainID:        string(randBytes(r, 1+r.IntN(crypto.MaxChainIDLen))),
		Height:         r.Uint64(),
		Time:           ledger.Timestamp(r.Int64() - r.Int64()),
		LastBlockHash:  randHash(r),
		TxRoot:         randHash(r),
		AppHash:        randHash(r),
		ValidatorsHash: randHash(r),
		LastCommitHash: randHash(r),
		EvidenceHash:   randHash(r),
		Proposer:       randAddr(r),
	}
}

// randVote is a vote that passes ValidateBasic (DecodeVote checks it).
func randVote(r *rand.Rand) *ledger.Vote {
	v := &ledger.Vote{
		Type:      ledger.Prevote + ledger.VoteType(r.IntN(2)),
		Height:    1 + r.Uint64N(1<<40),
		Round:     r.Uint32N(ledger.MaxRound + 1),
		Validator: randAddr(r),
		Sig:       randSig(r),
	}
	if r.IntN(4) != 0 {
		v.BlockID = randHash(r)
	}
	return v
}

func randEvidence(r *rand.Rand) *ledger.Evidence {
	a, b := randVote(r), randVote(r)
	b.Type, b.Height, b.Round, b.Validator = a.Type, a.Height, a.Round, a.Validator
	return ledger.NewEvidence(a, b)
}

func randCommit(r *rand.Rand, nSigs int) *ledger.Commit {
	c := &ledger.Commit{Height: 1 + r.Uint64N(1<<40), Round: r.Uint32N(100), BlockID: randHash(r)}
	idx := uint32(0)
	for range nSigs {
		idx += 1 + r.Uint32N(3)
		c.Sigs = append(c.Sigs, ledger.CommitSig{ValidatorIndex: idx, Sig: randSig(r)})
	}
	return c
}

func randProposal(r *rand.Rand) *ledger.Proposal {
	p := &ledger.Proposal{
		Height:   1 + r.Uint64N(1<<40),
		Round:    r.Uint32N(ledger.MaxRound + 1),
		BlockID:  randHash(r),
		Parts:    ledger.PartSetHeader{Total: 1 + r.Uint32N(ledger.MaxBlockParts), Root: randHash(r)},
		Proposer: randAddr(r),
		Sig:      randSig(r),
	}
	p.POLRound = -1
	if p.Round > 0 && r.IntN(2) == 0 {
		p.POLRound = int32(r.Uint32N(p.Round))
	}
	return p
}

// randBlock is a block with nTxs transactions, nEv pieces of evidence and,
// when withCommit, a last commit of nSigs signatures.
func randBlock(r *rand.Rand, nTxs, nEv int, withCommit bool, nSigs int) *ledger.Block {
	b := &ledger.Block{Header: randHeader(r)}
	for range nTxs {
		b.Txs = append(b.Txs, randTx(r))
	}
	for range nEv {
		b.Evidence = append(b.Evidence, randEvidence(r))
	}
	if withCommit {
		b.LastCommit = randCommit(r, nSigs)
	}
	return b
}

// chainAt is a test chain advanced past block 1, ready to validate block 2:
// st1 is the state after block 1, b1 the block itself.
type chainAt struct {
	c   *ledgertest.Chain
	st0 *ledger.State // genesis
	b1  *ledger.Block
	st1 *ledger.State // after b1
}

// newChainAt builds a 4-validator chain with nAccts funded accounts and
// commits an empty block 1.
func newChainAt(t testing.TB, nAccts int, balance uint64) *chainAt {
	t.Helper()
	c := ledgertest.NewChain(4, nAccts, balance)
	st0 := c.Genesis.Copy()
	b1 := c.NextBlock(st0, nil, nil, 0)
	if _, err := ledger.Execute(st0, c.NewMapState(), b1); err != nil {
		t.Fatalf("block 1 of the fixture chain: %v", err)
	}
	st1 := st0.Copy()
	st1.Height = 1
	st1.LastBlockHash = b1.Hash()
	st1.LastBlockTime = b1.Header.Time
	st1.AppHash = crypto.Sum([]byte("app hash after block 1"))
	return &chainAt{c: c, st0: st0, b1: b1, st1: st1}
}

// block2 builds block 2 on the fixture with txs and a full last commit.
func (f *chainAt) block2(txs []*ledger.Tx, evs []*ledger.Evidence) *ledger.Block {
	b := f.c.NextBlock(f.st1, txs, f.c.Commit(f.b1), 1)
	b.Evidence = evs
	b.FillHeader()
	return b
}

// equivocation returns two conflicting precommits by validator val at
// height h, canonically ordered into evidence.
func (f *chainAt) equivocation(val int, h uint64) *ledger.Evidence {
	return equivocationBy(f.c.ValKeys[val], h, crypto.Sum([]byte("block x")), crypto.Sum([]byte("block y")))
}

func equivocationBy(k crypto.PrivKey, h uint64, idA, idB crypto.Hash) *ledger.Evidence {
	a := &ledger.Vote{Type: ledger.Precommit, Height: h, Round: 0, BlockID: idA}
	b := &ledger.Vote{Type: ledger.Precommit, Height: h, Round: 0, BlockID: idB}
	a.Sign(ledgertest.ChainID, k)
	b.Sign(ledgertest.ChainID, k)
	return ledger.NewEvidence(a, b)
}
