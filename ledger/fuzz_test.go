package ledger_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/ledgerd/ledgerd/crypto"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// Every decoder is canonical: it never panics, and whatever it accepts
// re-encodes to exactly the bytes it was given, so one value has one
// encoding and one hash. Each target's seed corpus holds valid encodings
// of the shapes in codecCases plus a few of a fixture chain's real blocks.

// fuzzCanonical seeds f with the valid encodings that decode accepts and
// runs the never-panic, re-encodes-exactly property.
func fuzzCanonical(f *testing.F, decode decodeFunc, extra ...[]byte) {
	fuzzCanonicalAnd(f, decode, nil, extra...)
}

// fuzzCanonicalAnd is fuzzCanonical that also runs check (when set) on
// every accepted input and the value it decoded to.
func fuzzCanonicalAnd(f *testing.F, decode decodeFunc, check func(t *testing.T, in []byte, v any), extra ...[]byte) {
	r := ledgertest.Seed(1)
	seeds := extra
	for range 3 {
		for _, tc := range codecCases(r) {
			if enc := tc.enc(); func() bool { _, err := decode(enc); return err == nil }() {
				seeds = append(seeds, enc)
			}
		}
	}
	if len(seeds) == 0 {
		f.Fatal("no valid encoding in the seed corpus")
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := decode(in)
		if err != nil {
			return
		}
		if out := encodeAny(v); !bytes.Equal(out, in) {
			t.Fatalf("accepted %x\nwhich re-encodes as %x", in, out)
		}
		if check != nil {
			check(t, in, v)
		}
	})
}

// chainBlocks returns the encodings of a fixture chain's first two blocks,
// with real signatures, transfers and evidence.
func chainBlocks(f *testing.F) (blocks, txs, votes, commits, evidence [][]byte) {
	fx := newChainAt(f, 2, 1000)
	tx := ledgertest.Transfer(fx.c.Accounts[0], fx.c.Accounts[1].PubKey().Address(), 5, 1, 0)
	ev := fx.equivocation(0, 1)
	b2 := fx.block2([]*ledger.Tx{tx}, []*ledger.Evidence{ev})
	return [][]byte{fx.b1.Encode(), b2.Encode()}, [][]byte{tx.Encode()},
		[][]byte{ev.VoteA.Encode(), ev.VoteB.Encode()}, [][]byte{b2.LastCommit.Encode()}, [][]byte{ev.Encode()}
}

// FuzzDecodeTx adds to the canonical property, for every kind: what it
// accepts has a known kind whose unused fields are zero, hashes its bytes,
// signs the bytes before its signature, and (when its strings are UTF-8,
// as JSON requires) survives a JSON round trip unchanged.
func FuzzDecodeTx(f *testing.F) {
	_, txs, _, _, _ := chainBlocks(f)
	fx := newChainAt(f, 2, 1000)
	for _, k := range stakingKinds {
		txs = append(txs, stakingTx(fx, k, 3).Encode())
	}
	fuzzCanonicalAnd(f, decodeTx, func(t *testing.T, in []byte, v any) {
		tx := v.(*ledger.Tx)
		if !tx.Kind.Known() {
			t.Fatalf("accepted %x of unknown kind %d", in, uint8(tx.Kind))
		}
		if tx.Kind != ledger.TxCreateValidator && (!tx.ConsKey.IsZero() || tx.Moniker != "") ||
			(tx.Kind == ledger.TxCreateValidator || tx.Kind == ledger.TxUnjail) && !tx.To.IsZero() ||
			tx.Kind == ledger.TxUnjail && tx.Amount != 0 {
			t.Fatalf("accepted %x as a %s with a field it does not use: %+v", in, tx.Kind, tx)
		}
		if tx.Hash() != crypto.Sum(in) {
			t.Fatalf("hash of %x is not its SHA-256", in)
		}
		body := in[:len(in)-crypto.SignatureSize]
		if !bytes.Equal(tx.SignBytes(), crypto.SignBytes(crypto.DomainTx, tx.ChainID, body)) {
			t.Fatalf("sign bytes of %x are not its encoding without the signature", in)
		}
		if !utf8.ValidString(tx.ChainID) || !utf8.ValidString(tx.Moniker) {
			return
		}
		j, err := json.Marshal(tx)
		if err != nil {
			t.Fatalf("JSON of %+v: %v", tx, err)
		}
		var back ledger.Tx
		if err := json.Unmarshal(j, &back); err != nil {
			t.Fatalf("JSON %s does not read back: %v", j, err)
		}
		if !bytes.Equal(back.Encode(), in) {
			t.Fatalf("%x through JSON %s encodes as %x", in, j, back.Encode())
		}
	}, txs...)
}

func FuzzDecodeBlock(f *testing.F) {
	blocks, _, _, _, _ := chainBlocks(f)
	fuzzCanonical(f, decodeBlock, blocks...)
}

func FuzzDecodeHeader(f *testing.F) {
	fx := newChainAt(f, 1, 1)
	fuzzCanonical(f, decodeHeader, fx.b1.Header.Encode())
}

func FuzzDecodeVote(f *testing.F) {
	_, _, votes, _, _ := chainBlocks(f)
	fuzzCanonical(f, decodeVote, votes...)
}

func FuzzDecodeProposal(f *testing.F) {
	fx := newChainAt(f, 1, 1)
	psh, _ := ledger.SplitBlock(fx.b1.Encode())
	p := &ledger.Proposal{Height: 1, Round: 2, POLRound: 1, BlockID: fx.b1.Hash(), Parts: psh}
	p.Sign(ledgertest.ChainID, fx.c.ValKeys[0])
	fuzzCanonical(f, decodeProposal, p.Encode())
}

func FuzzDecodeCommit(f *testing.F) {
	_, _, _, commits, _ := chainBlocks(f)
	fuzzCanonical(f, decodeCommit, commits...)
}

func FuzzDecodeEvidence(f *testing.F) {
	_, _, _, _, evidence := chainBlocks(f)
	fuzzCanonical(f, decodeEvidence, evidence...)
}

func FuzzDecodeAccount(f *testing.F) {
	fuzzCanonical(f, decodeAccount, ledger.Account{Balance: 1000, Nonce: 3}.Encode())
}

func FuzzDecodePart(f *testing.F) {
	r := ledgertest.Seed(2)
	_, parts := ledger.SplitBlock(randBlock(r, 500, 0, false, 0).Encode()) // two parts
	var seeds [][]byte
	for _, p := range parts {
		seeds = append(seeds, p.Encode())
	}
	fuzzCanonical(f, decodePart, seeds...)
}

func FuzzDecodeValidatorSet(f *testing.F) {
	c := ledgertest.NewChain(4, 0, 0)
	fuzzCanonical(f, decodeValidatorSet, c.Genesis.Validators.Encode())
}

// FuzzDecodeProposerPriorities decodes against a fixed set of four: what
// it accepts names that set, holds four priorities within ±2T, and
// re-encodes exactly; the seeds are the genesis priorities and a few
// heights on.
func FuzzDecodeProposerPriorities(f *testing.F) {
	vs := ledgertest.NewChain(4, 0, 0).Genesis.Validators
	p := ledger.GenesisPriorities(vs)
	var seeds [][]byte
	for range 5 {
		seeds = append(seeds, p.Encode())
		p = p.Next(vs)
	}
	decode := func(b []byte) (any, error) { return ledger.DecodeProposerPriorities(vs, b) }
	fuzzCanonicalAnd(f, decode, func(t *testing.T, _ []byte, v any) {
		got := v.(*ledger.ProposerPriorities)
		bound := 2 * int64(vs.TotalPower())
		for i := range vs.Size() {
			if q := got.Priority(i); q > bound || q < -bound {
				t.Fatalf("accepted priority %d outside ±%d", q, bound)
			}
		}
	}, seeds...)
}
