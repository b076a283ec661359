package ledger_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// decodeFunc decodes one type's canonical encoding into a value that
// encodeAny writes back.
type decodeFunc func([]byte) (any, error)

// The decoders under test, by type name.
var (
	decodeTx           decodeFunc = func(b []byte) (any, error) { return ledger.DecodeTx(b) }
	decodeHeader       decodeFunc = func(b []byte) (any, error) { return ledger.DecodeHeader(b) }
	decodeBlock        decodeFunc = func(b []byte) (any, error) { return ledger.DecodeBlock(b) }
	decodeVote         decodeFunc = func(b []byte) (any, error) { return ledger.DecodeVote(b) }
	decodeProposal     decodeFunc = func(b []byte) (any, error) { return ledger.DecodeProposal(b) }
	decodeCommit       decodeFunc = func(b []byte) (any, error) { return ledger.DecodeCommit(b) }
	decodeEvidence     decodeFunc = func(b []byte) (any, error) { return ledger.DecodeEvidence(b) }
	decodeAccount      decodeFunc = func(b []byte) (any, error) { return ledger.DecodeAccount(b) }
	decodePart         decodeFunc = func(b []byte) (any, error) { return ledger.DecodePart(b) }
	decodeValidatorSet decodeFunc = func(b []byte) (any, error) { return ledger.DecodeValidatorSet(b) }
)

// encodeAny is the encoder matching every decodeFunc.
func encodeAny(v any) []byte {
	switch v := v.(type) {
	case *ledger.Tx:
		return v.Encode()
	case *ledger.Header:
		return v.Encode()
	case *ledger.Block:
		return v.Encode()
	case *ledger.Vote:
		return v.Encode()
	case *ledger.Proposal:
		return v.Encode()
	case *ledger.Commit:
		return v.Encode()
	case *ledger.Evidence:
		return v.Encode()
	case ledger.Account:
		return v.Encode()
	case *ledger.Part:
		return v.Encode()
	case *ledger.ValidatorSet:
		return v.Encode()
	case *ledger.ProposerPriorities:
		return v.Encode()
	}
	panic(fmt.Sprintf("encodeAny: unexpected %T", v))
}

// codecCase is one value, its canonical encoding, and its decoder.
type codecCase struct {
	name   string
	value  any
	decode decodeFunc
}

func (c codecCase) enc() []byte { return encodeAny(c.value) }

// randPart is part index of a list of nParts random chunks, with its proof.
func randPart(r *rand.Rand, nParts, index, size int) *ledger.Part {
	chunks := make([][]byte, nParts)
	for i := range chunks {
		chunks[i] = randBytes(r, size)
	}
	_, proofs := crypto.MerkleProofs(chunks)
	return &ledger.Part{Index: uint32(index), Bytes: chunks[index], Proof: proofs[index]}
}

// codecCases returns one value of every encoded type, in several shapes.
func codecCases(r *rand.Rand) []codecCase {
	h := randHeader(r)
	emptyChain := randTx(r)
	emptyChain.ChainID = ""
	_, parts := ledger.SplitBlock(randBlock(r, 1, 0, false, 0).Encode())
	smallPart := parts[0]
	emptyUnjail := randKindTx(r, ledger.TxUnjail)
	emptyUnjail.ChainID = ""
	return []codecCase{
		{"tx", randTx(r), decodeTx},
		{"tx with empty chain ID", emptyChain, decodeTx},
		{"tx with all-ones fields", &ledger.Tx{ChainID: strings.Repeat("~", crypto.MaxChainIDLen), Amount: ^uint64(0), Fee: ^uint64(0), Nonce: ^uint64(0)}, decodeTx},
		{"create_validator tx", randKindTx(r, ledger.TxCreateValidator), decodeTx},
		{"delegate tx", randKindTx(r, ledger.TxDelegate), decodeTx},
		{"undelegate tx", randKindTx(r, ledger.TxUndelegate), decodeTx},
		{"unjail tx", randKindTx(r, ledger.TxUnjail), decodeTx},
		{"unjail tx with empty chain ID (the smallest tx)", emptyUnjail, decodeTx},
		{"create_validator tx with the longest chain ID and moniker", &ledger.Tx{Kind: ledger.TxCreateValidator, ChainID: strings.Repeat("~", crypto.MaxChainIDLen),
			ConsKey: randPub(r), Moniker: strings.Repeat("m", ledger.MaxValidatorNameLen), Amount: ^uint64(0), Fee: ^uint64(0), Nonce: ^uint64(0)}, decodeTx},
		{"block with every kind of tx", randMixedBlock(r), decodeBlock},
		{"header", &h, decodeHeader},
		{"block with txs, evidence and last commit", randBlock(r, 3, 2, true, 4), decodeBlock},
		{"empty block at height 1", randBlock(r, 0, 0, false, 0), decodeBlock},
		{"block with a commit of no signatures", randBlock(r, 1, 0, true, 0), decodeBlock},
		{"vote", randVote(r), decodeVote},
		{"nil vote", &ledger.Vote{Type: ledger.Prevote, Height: 1, Round: ledger.MaxRound}, decodeVote},
		{"proposal", randProposal(r), decodeProposal},
		{"proposal with max parts", &ledger.Proposal{Height: 1, Round: 3, POLRound: 2, BlockID: randHash(r),
			Parts: ledger.PartSetHeader{Total: ledger.MaxBlockParts, Root: randHash(r)}}, decodeProposal},
		{"commit", randCommit(r, 5), decodeCommit},
		{"commit of one signature", randCommit(r, 1), decodeCommit},
		{"evidence", randEvidence(r), decodeEvidence},
		{"account", ledger.Account{Balance: r.Uint64(), Nonce: r.Uint64()}, decodeAccount},
		{"zero account", ledger.Account{}, decodeAccount},
		{"middle part", randPart(r, 5, 3, 100), decodePart},
		{"only part", smallPart, decodePart},
	}
}

// withNilEmpties returns v with an empty proof's aunts as nil, since the
// encoding cannot (and need not) tell nil from empty.
func withNilEmpties(v any) any {
	if p, ok := v.(*ledger.Part); ok && len(p.Proof.Aunts) == 0 {
		c := *p
		c.Proof.Aunts = nil
		return &c
	}
	return v
}

func TestEncodingsRoundTrip(t *testing.T) {
	r, seed := testRand(t)
	for round := range 20 {
		for _, tc := range codecCases(r) {
			enc := tc.enc()
			got, err := tc.decode(enc)
			if err != nil {
				t.Fatalf("seed %d round %d: %s: decode: %v", seed, round, tc.name, err)
			}
			if !reflect.DeepEqual(withNilEmpties(got), withNilEmpties(tc.value)) {
				t.Fatalf("seed %d round %d: %s: decoded\n%+v\nwant\n%+v", seed, round, tc.name, got, tc.value)
			}
			if again := encodeAny(got); !bytes.Equal(again, enc) {
				t.Fatalf("seed %d round %d: %s: re-encoding differs:\n%x\n%x", seed, round, tc.name, again, enc)
			}
		}
	}
}

// Hashes are over the canonical encodings, so equal values hash equal and
// any field change changes the hash.
func TestHashesAreOverTheCanonicalEncoding(t *testing.T) {
	r, seed := testRand(t)
	tx := randTx(r)
	h := randHeader(r)
	ev := randEvidence(r)
	c := randCommit(r, 3)
	cases := []struct {
		name string
		enc  []byte
		hash crypto.Hash
	}{
		{"tx", tx.Encode(), tx.Hash()},
		{"header", h.Encode(), h.Hash()},
		{"block", (&ledger.Block{Header: h}).Encode(), (&ledger.Block{Header: h}).Hash()},
		{"evidence", ev.Encode(), ev.Hash()},
		{"commit", c.Encode(), c.Hash()},
	}
	for _, tc := range cases {
		want := crypto.Sum(tc.enc)
		if tc.name == "block" {
			want = h.Hash() // a block is identified by its header
		}
		if tc.hash != want {
			t.Errorf("seed %d: %s hash %s, want %s", seed, tc.name, tc.hash, want)
		}
	}
	if (*ledger.Commit)(nil).Hash() != (crypto.Hash{}) {
		t.Error("the hash of a nil commit is not the zero hash")
	}
	tx2 := *tx
	tx2.Sig[0] ^= 1
	if tx2.Hash() == tx.Hash() {
		t.Errorf("seed %d: changing the signature does not change the tx hash", seed)
	}
}

func TestDecodersRejectTrailingBytes(t *testing.T) {
	r, seed := testRand(t)
	for _, tc := range codecCases(r) {
		enc := tc.enc()
		for _, extra := range [][]byte{{0}, {1}, enc} {
			in := append(append([]byte(nil), enc...), extra...)
			if _, err := tc.decode(in); !errors.Is(err, ledger.ErrTrailingBytes) {
				t.Errorf("seed %d: %s followed by %x: err = %v, want ErrTrailingBytes", seed, tc.name, extra[:min(len(extra), 4)], err)
			}
		}
	}
}

func TestDecodersRejectTruncationAtEveryOffset(t *testing.T) {
	r, seed := testRand(t)
	for _, tc := range codecCases(r) {
		enc := tc.enc()
		for n := range len(enc) {
			if v, err := tc.decode(enc[:n:n]); err == nil {
				t.Fatalf("seed %d: %s cut to %d of %d bytes decoded as %+v", seed, tc.name, n, len(enc), v)
			}
		}
	}
}

// versionOffsets lists where the version bytes of enc are: every top-level
// type starts with one, and a block, evidence or part nests more.
func versionOffsets(t *testing.T, v any) []int {
	t.Helper()
	switch v := v.(type) {
	case *ledger.Block:
		return blockLayout(t, v).versions
	case *ledger.Evidence:
		return []int{0, len(v.VoteA.Encode())}
	case *ledger.Part:
		n := 1 + 4 + uvarintLen(len(v.Bytes)) + len(v.Bytes)
		proof, _ := v.Proof.MarshalBinary()
		return []int{0, n + uvarintLen(len(proof))}
	}
	return []int{0}
}

func uvarintLen(n int) int { return len(binary.AppendUvarint(nil, uint64(n))) }

type layout struct {
	versions   []int // offsets of version bytes
	txVersions []int // offsets of the transactions' version bytes
	txCount    int   // offset of the tx count
	evCount    int   // offset of the evidence count
	flag       int   // offset of the last-commit presence flag
	sigCount   int   // offset of the commit's signature count (0 if absent)
}

// blockLayout rebuilds a block's encoding from its parts' encodings,
// checks it matches Block.Encode, and returns where each field sits.
func blockLayout(t *testing.T, b *ledger.Block) layout {
	t.Helper()
	var l layout
	buf := []byte{1}
	l.versions = append(l.versions, 0, len(buf))
	buf = append(buf, b.Header.Encode()...)
	l.txCount = len(buf)
	buf = binary.AppendUvarint(buf, uint64(len(b.Txs)))
	for _, tx := range b.Txs {
		l.versions = append(l.versions, len(buf))
		l.txVersions = append(l.txVersions, len(buf))
		buf = append(buf, tx.Encode()...)
	}
	l.evCount = len(buf)
	buf = binary.AppendUvarint(buf, uint64(len(b.Evidence)))
	for _, ev := range b.Evidence {
		l.versions = append(l.versions, len(buf), len(buf)+len(ev.VoteA.Encode()))
		buf = append(buf, ev.Encode()...)
	}
	l.flag = len(buf)
	if b.LastCommit == nil {
		buf = append(buf, 0)
	} else {
		buf = append(buf, 1)
		l.versions = append(l.versions, len(buf))
		l.sigCount = len(buf) + 1 + 8 + 4 + crypto.HashSize
		buf = append(buf, b.LastCommit.Encode()...)
	}
	if !bytes.Equal(buf, b.Encode()) {
		t.Fatalf("block encoding is not version, header, txs, evidence, commit:\n%x\n%x", b.Encode(), buf)
	}
	return l
}

func TestDecodersRejectUnknownVersions(t *testing.T) {
	r, seed := testRand(t)
	for _, tc := range codecCases(r) {
		enc := tc.enc()
		txVersions := txVersionOffsets(t, tc.value)
		for _, off := range versionOffsets(t, tc.value) {
			// A transaction is version 1 (a transfer) or 2 (any other
			// kind); a version byte changed from one to the other may by
			// chance read as a valid transaction of the other version (a
			// different one, with its own encoding), so only versions
			// that are never valid are tried there. Headers are version 2,
			// everything else version 1.
			want := enc[off]
			var bad []byte
			switch {
			case txVersions[off] && (want == 1 || want == 2):
				bad = []byte{0, 3, 0xff}
			case want == 1 || want == 2:
				bad = []byte{0, want ^ 3, want + 2, 0xff} // 1 <-> 2
			default:
				t.Fatalf("%s: byte %d is %d, not a version (1 or 2); the layout changed", tc.name, off, want)
			}
			for _, v := range bad {
				in := bytes.Clone(enc)
				in[off] = v
				if _, err := tc.decode(in); err == nil {
					t.Errorf("seed %d: %s with version byte %d at offset %d set to %d decoded", seed, tc.name, want, off, v)
				}
			}
		}
	}
}

// txVersionOffsets is the set of the version offsets of versionOffsets
// that are transactions' version bytes.
func txVersionOffsets(t *testing.T, v any) map[int]bool {
	t.Helper()
	switch v := v.(type) {
	case *ledger.Tx:
		return map[int]bool{0: true}
	case *ledger.Block:
		m := map[int]bool{}
		for _, off := range blockLayout(t, v).txVersions {
			m[off] = true
		}
		return m
	}
	return nil
}

// withNonMinimal replaces the one-byte uvarint at off with its two-byte form.
func withNonMinimal(enc []byte, off int) []byte {
	if enc[off] >= 0x80 {
		panic("not a one-byte varint")
	}
	out := append([]byte(nil), enc[:off]...)
	out = append(out, enc[off]|0x80, 0)
	return append(out, enc[off+1:]...)
}

func TestDecodersRejectNonMinimalVarints(t *testing.T) {
	r, _ := testRand(t)
	tx := randTx(r).Encode()
	h := randHeader(r)
	b := randBlock(r, 2, 1, true, 2)
	l := blockLayout(t, b)
	c := randCommit(r, 2)
	part := randPart(r, 3, 1, 50)
	cases := []struct {
		name   string
		in     []byte
		decode decodeFunc
	}{
		{"tx chain ID length", withNonMinimal(tx, 1), decodeTx},
		{"version 2 tx chain ID length", withNonMinimal(randKindTx(r, ledger.TxDelegate).Encode(), 2), decodeTx},
		{"create_validator moniker length", func() []byte {
			cv := randKindTx(r, ledger.TxCreateValidator)
			cv.Moniker = "m"
			enc, off := cv.Encode(), 2+1+len(cv.ChainID)+2*crypto.PubKeySize
			if enc[off] != 1 || enc[off+1] != 'm' {
				t.Fatalf("create_validator layout: no moniker at offset %d of %x", off, enc)
			}
			return withNonMinimal(enc, off)
		}(), decodeTx},
		{"header chain ID length", withNonMinimal(h.Encode(), 1), decodeHeader},
		{"block tx count", withNonMinimal(b.Encode(), l.txCount), decodeBlock},
		{"block evidence count", withNonMinimal(b.Encode(), l.evCount), decodeBlock},
		{"block commit signature count", withNonMinimal(b.Encode(), l.sigCount), decodeBlock},
		{"commit signature count", withNonMinimal(c.Encode(), 1+8+4+crypto.HashSize), decodeCommit},
		{"part bytes length", withNonMinimal(part.Encode(), 1+4), decodePart},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if v, err := tc.decode(tc.in); err == nil {
				t.Fatalf("decoded %+v", v)
			}
		})
	}
}

func TestDecodersRejectOverLimitLengthsAndCounts(t *testing.T) {
	r, _ := testRand(t)
	longChain := randTx(r)
	longChain.ChainID = strings.Repeat("c", crypto.MaxChainIDLen+1)
	longHeader := randHeader(r)
	longHeader.ChainID = longChain.ChainID

	b := randBlock(r, 1, 1, true, 1)
	l := blockLayout(t, b)
	enc := b.Encode()
	withCount := func(prefixEnd int, n uint64) []byte {
		return binary.AppendUvarint(bytes.Clone(enc[:prefixEnd]), n)
	}
	commitHead := randCommit(r, 0).Encode()
	commitHead = commitHead[:len(commitHead)-1]

	partHead := []byte{1, 0, 0, 0, 0}
	proofLimit := 1 + 3*10 + crypto.MaxMerkleProofDepth*crypto.HashSize

	cases := []struct {
		name   string
		in     []byte
		decode decodeFunc
	}{
		{"tx chain ID over MaxChainIDLen", longChain.Encode(), decodeTx},
		{"tx input over MaxTxBytes", append(randTx(r).Encode(), make([]byte, ledger.MaxTxBytes)...), decodeTx},
		{"version 2 tx chain ID over MaxChainIDLen", func() []byte {
			tx := randKindTx(r, ledger.TxUnjail)
			tx.ChainID = longChain.ChainID
			return tx.Encode()
		}(), decodeTx},
		{"create_validator moniker over MaxValidatorNameLen", func() []byte {
			tx := randKindTx(r, ledger.TxCreateValidator)
			tx.Moniker = strings.Repeat("m", ledger.MaxValidatorNameLen+1)
			return tx.Encode()
		}(), decodeTx},
		{"header chain ID over MaxChainIDLen", longHeader.Encode(), decodeHeader},
		{"block tx count over MaxBlockTxsLimit", withCount(l.txCount, ledger.MaxBlockTxsLimit+1), decodeBlock},
		{"block evidence count over MaxEvidenceLimit", withCount(l.evCount, ledger.MaxEvidenceLimit+1), decodeBlock},
		{"block commit signatures over MaxValidators", withCount(l.sigCount, ledger.MaxValidators+1), decodeBlock},
		{"block count over 64 bits", append(bytes.Clone(enc[:l.txCount]), bytes.Repeat([]byte{0xff}, 10)...), decodeBlock},
		{"block input over MaxBlockDecodeBytes", make([]byte, ledger.MaxBlockDecodeBytes+1), decodeBlock},
		{"commit signatures over MaxValidators", binary.AppendUvarint(bytes.Clone(commitHead), ledger.MaxValidators+1), decodeCommit},
		{"part bytes over BlockPartSize", binary.AppendUvarint(bytes.Clone(partHead), ledger.BlockPartSize+1), decodePart},
		{"part proof over its limit", binary.AppendUvarint(append(bytes.Clone(partHead), 0), uint64(proofLimit+1)), decodePart},
		{"part proof with too many aunts", (&ledger.Part{Proof: crypto.MerkleProof{Aunts: make([]crypto.Hash, crypto.MaxMerkleProofDepth+1)}}).Encode(), decodePart},
		{"last commit presence flag 2", func() []byte {
			in := bytes.Clone(enc)
			in[l.flag] = 2
			return in
		}(), decodeBlock},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if v, err := tc.decode(tc.in); err == nil {
				t.Fatalf("decoded %.200v", v)
			}
		})
	}
	// The limits themselves are accepted.
	full := randCommit(r, ledger.MaxValidators)
	for i := range full.Sigs {
		full.Sigs[i].ValidatorIndex = uint32(i)
	}
	if _, err := ledger.DecodeCommit(full.Encode()); err != nil {
		t.Errorf("a commit of MaxValidators signatures: %v", err)
	}
	fullPart := &ledger.Part{Bytes: make([]byte, ledger.BlockPartSize), Proof: crypto.MerkleProof{Total: 1, Aunts: make([]crypto.Hash, crypto.MaxMerkleProofDepth)}}
	if _, err := ledger.DecodePart(fullPart.Encode()); err != nil {
		t.Errorf("a part of BlockPartSize bytes and a proof of MaxMerkleProofDepth aunts: %v", err)
	}
}

// allocatedPerCall is the heap allocated by one call of f, averaged.
func allocatedPerCall(f func()) uint64 {
	const n = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / n
}

// A count within its limit but larger than the rest of the input could
// hold must fail as truncated before anything is allocated for it.
func TestDecodersRefuseForgedCountsWithoutAllocating(t *testing.T) {
	r, _ := testRand(t)
	b := randBlock(r, 1, 1, true, 1)
	l := blockLayout(t, b)
	enc := b.Encode()
	withCount := func(prefixEnd int, n uint64) []byte {
		in := binary.AppendUvarint(bytes.Clone(enc[:prefixEnd]), n)
		return append(in, make([]byte, 200)...) // room for one element, not n
	}
	commitHead := randCommit(r, 0).Encode()
	commitHead = commitHead[:len(commitHead)-1]
	cases := []struct {
		name   string
		in     []byte
		decode decodeFunc
	}{
		{"block tx count", withCount(l.txCount, ledger.MaxBlockTxsLimit), decodeBlock},
		{"block evidence count", withCount(l.evCount, ledger.MaxEvidenceLimit), decodeBlock},
		{"block commit signatures", withCount(l.sigCount, ledger.MaxValidators), decodeBlock},
		{"commit signatures", append(binary.AppendUvarint(bytes.Clone(commitHead), ledger.MaxValidators), make([]byte, 100)...), decodeCommit},
		{"part bytes", append(binary.AppendUvarint([]byte{1, 0, 0, 0, 0}, ledger.BlockPartSize), make([]byte, 100)...), decodePart},
	}
	const budget = 16 << 10 // far below what any of the counts would take
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.decode(tc.in)
			if !errors.Is(err, ledger.ErrTruncated) {
				t.Fatalf("err = %v, want ErrTruncated", err)
			}
			got := allocatedPerCall(func() { _, _ = tc.decode(tc.in) })
			if got > budget {
				t.Fatalf("decoding a %d-byte input allocated %d bytes", len(tc.in), got)
			}
			t.Logf("%d bytes allocated", got)
		})
	}
}

// DecodeVote and DecodeProposal check basic validity, so an encoding that
// is canonical but meaningless is still refused.
func TestDecodeVoteAndProposalCheckBasicFields(t *testing.T) {
	r, seed := testRand(t)
	votes := []struct {
		name string
		mut  func(v *ledger.Vote)
	}{
		{"type 0", func(v *ledger.Vote) { v.Type = 0 }},
		{"type 3", func(v *ledger.Vote) { v.Type = 3 }},
		{"height 0", func(v *ledger.Vote) { v.Height = 0 }},
		{"round over max", func(v *ledger.Vote) { v.Round = ledger.MaxRound + 1 }},
		{"round 2^31", func(v *ledger.Vote) { v.Round = 1 << 31 }},
	}
	for _, tc := range votes {
		v := randVote(r)
		tc.mut(v)
		if _, err := ledger.DecodeVote(v.Encode()); err == nil {
			t.Errorf("seed %d: vote with %s decoded", seed, tc.name)
		}
	}
	proposals := []struct {
		name string
		mut  func(p *ledger.Proposal)
	}{
		{"height 0", func(p *ledger.Proposal) { p.Height = 0 }},
		{"round over max", func(p *ledger.Proposal) { p.Round = ledger.MaxRound + 1 }},
		{"POL round -2", func(p *ledger.Proposal) { p.POLRound = -2 }},
		{"POL round equal round", func(p *ledger.Proposal) { p.Round, p.POLRound = 4, 4 }},
		{"POL round above round", func(p *ledger.Proposal) { p.Round, p.POLRound = 4, 9 }},
		{"POL round 0 in round 0", func(p *ledger.Proposal) { p.Round, p.POLRound = 0, 0 }},
		{"nil block", func(p *ledger.Proposal) { p.BlockID = crypto.Hash{} }},
		{"zero parts", func(p *ledger.Proposal) { p.Parts.Total = 0 }},
		{"too many parts", func(p *ledger.Proposal) { p.Parts.Total = ledger.MaxBlockParts + 1 }},
	}
	for _, tc := range proposals {
		p := randProposal(r)
		tc.mut(p)
		if _, err := ledger.DecodeProposal(p.Encode()); err == nil {
			t.Errorf("seed %d: proposal with %s decoded", seed, tc.name)
		}
	}
}
