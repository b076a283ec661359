package ledgertest

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// Golden values: one of every encoded ledger type, built from fixed byte
// patterns (no randomness, no keys, signatures that verify nothing), for
// tests that pin encodings byte for byte. Changing any of them changes
// every golden digest built on them.

// GoldenChainID is the chain ID of the golden values.
const GoldenChainID = "golden-chain"

// Pattern returns n bytes counting up from start, wrapping at 255.
func Pattern(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// GoldenHash is the hash whose bytes count up from start.
func GoldenHash(start byte) (h crypto.Hash) { copy(h[:], Pattern(start, len(h))); return h }

// GoldenAddr is the address whose bytes count up from start.
func GoldenAddr(start byte) (a crypto.Address) { copy(a[:], Pattern(start, len(a))); return a }

// GoldenPub is the public key whose bytes count up from start.
func GoldenPub(start byte) (p crypto.PubKey) { copy(p[:], Pattern(start, len(p))); return p }

// GoldenSig is the signature whose bytes count up from start.
func GoldenSig(start byte) (s crypto.Signature) { copy(s[:], Pattern(start, len(s))); return s }

// GoldenTx is transfer number n of the golden values.
func GoldenTx(n byte) *ledger.Tx {
	return &ledger.Tx{
		ChainID: GoldenChainID,
		From:    GoldenPub(0x10 + n),
		To:      GoldenAddr(0x30 + n),
		Amount:  1000 + uint64(n),
		Fee:     7,
		Nonce:   uint64(n),
		Sig:     GoldenSig(0x80 + n),
	}
}

// GoldenStakingTx is the golden transaction of kind k, one of the staking
// kinds, with only the fields its kind uses set.
func GoldenStakingTx(k ledger.TxKind) *ledger.Tx {
	tx := &ledger.Tx{
		ChainID: GoldenChainID,
		Kind:    k,
		From:    GoldenPub(0x18 + byte(k)),
		Fee:     9,
		Nonce:   300 + uint64(k),
		Sig:     GoldenSig(0x88 + byte(k)),
	}
	switch k {
	case ledger.TxCreateValidator:
		tx.ConsKey = GoldenPub(0xc0)
		tx.Moniker = "golden validator \u00e9"
		tx.Amount = 1 << 40
	case ledger.TxDelegate, ledger.TxUndelegate:
		tx.To = GoldenAddr(0x38 + byte(k))
		tx.Amount = 5000 + uint64(k)
	}
	return tx
}

// GoldenVote is a vote of type t for block id at height 2^33, round 2.
func GoldenVote(t ledger.VoteType, id crypto.Hash) *ledger.Vote {
	return &ledger.Vote{Type: t, Height: 1 << 33, Round: 2, BlockID: id, Validator: GoldenAddr(0x50), Sig: GoldenSig(0x90)}
}

// GoldenEvidence is two golden precommits for different blocks.
func GoldenEvidence() *ledger.Evidence {
	return ledger.NewEvidence(GoldenVote(ledger.Precommit, GoldenHash(0x40)), GoldenVote(ledger.Precommit, GoldenHash(0x41)))
}

// GoldenCommit is a commit at height 41 with n signatures.
func GoldenCommit(n int) *ledger.Commit {
	c := &ledger.Commit{Height: 41, Round: 1, BlockID: GoldenHash(0x60)}
	for i := range n {
		c.Sigs = append(c.Sigs, ledger.CommitSig{ValidatorIndex: uint32(3 * i), Sig: GoldenSig(0xa0 + byte(i))})
	}
	return c
}

// GoldenHeader is the header of the golden block at height 42.
func GoldenHeader() ledger.Header {
	return ledger.Header{
		ChainID:            GoldenChainID,
		Height:             42,
		Time:               ledger.Timestamp(1_700_000_000_123_456_789),
		LastBlockHash:      GoldenHash(0x01),
		TxRoot:             GoldenHash(0x02),
		AppHash:            GoldenHash(0x03),
		ValidatorsHash:     GoldenHash(0x04),
		NextValidatorsHash: GoldenHash(0x08),
		LastCommitHash:     GoldenHash(0x05),
		EvidenceHash:       GoldenHash(0x06),
		Proposer:           GoldenAddr(0x07),
	}
}

// GoldenBlock is the golden header with two transfers, one piece of
// evidence and a last commit of two signatures.
func GoldenBlock() *ledger.Block {
	return &ledger.Block{
		Header:     GoldenHeader(),
		Txs:        []*ledger.Tx{GoldenTx(0), GoldenTx(1)},
		Evidence:   []*ledger.Evidence{GoldenEvidence()},
		LastCommit: GoldenCommit(2),
	}
}

// GoldenProposal is a proposal at height 42, round 3, of two parts.
func GoldenProposal() *ledger.Proposal {
	return &ledger.Proposal{
		Height:   42,
		Round:    3,
		POLRound: -1,
		BlockID:  GoldenHash(0x70),
		Parts:    ledger.PartSetHeader{Total: 2, Root: GoldenHash(0x71)},
		Proposer: GoldenAddr(0x72),
		Sig:      GoldenSig(0x73),
	}
}

// GoldenPart is part i of chunks with its Merkle proof.
func GoldenPart(chunks [][]byte, i int) *ledger.Part {
	_, proofs := crypto.MerkleProofs(chunks)
	return &ledger.Part{Index: uint32(i), Bytes: chunks[i], Proof: proofs[i]}
}

// GoldenEncoding is one pinned encoding: its length and SHA-256 in hex.
// Decode, when set, must accept the bytes and give back what re-encodes
// to them.
type GoldenEncoding struct {
	Name   string
	Got    []byte
	Size   int
	SHA256 string
	Decode func([]byte) ([]byte, error)
}

// CheckGolden fails t for every case whose bytes differ from the pinned
// ones, printing the full encoding to compare by hand.
func CheckGolden(t testing.TB, cases []GoldenEncoding) {
	t.Helper()
	for _, c := range cases {
		sum := sha256.Sum256(c.Got)
		if len(c.Got) != c.Size || hex.EncodeToString(sum[:]) != c.SHA256 {
			t.Errorf("%s: encoding changed: %d bytes, sha256 %x, want %d bytes, sha256 %s\nencoding: %x",
				c.Name, len(c.Got), sum, c.Size, c.SHA256, c.Got)
			continue
		}
		if c.Decode == nil {
			continue
		}
		again, err := c.Decode(c.Got)
		if err != nil {
			t.Errorf("%s: golden encoding does not decode: %v", c.Name, err)
			continue
		}
		if string(again) != string(c.Got) {
			t.Errorf("%s: golden encoding decodes to a value encoding as %x", c.Name, again)
		}
	}
}
