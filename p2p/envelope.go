package p2p

import (
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/wire"
)

// A gossip message (also a catch-up response frame) is an envelope:
//
//	version (1 byte, envelopeVersion) | kind (1 byte) | body
//
// and the body, by kind:
//
//	kindTx        ledger Tx encoding
//	kindProposal  ledger Proposal encoding
//	kindPart      uvarint length + ledger Proposal encoding, then ledger Part encoding
//	kindVote      ledger Vote encoding
//	kindEvidence  ledger Evidence encoding
//
// A part carries the signed proposal it belongs to, so a receiver can check
// its Merkle proof against a signed root without having seen the proposal
// message, and a node that missed that message still learns the proposal.

const envelopeVersion = 1

// msgKind is the kind byte of an envelope.
type msgKind uint8

const (
	kindTx       msgKind = 1
	kindProposal msgKind = 2
	kindPart     msgKind = 3
	kindVote     msgKind = 4
	kindEvidence msgKind = 5
)

func (k msgKind) String() string {
	switch k {
	case kindTx:
		return "tx"
	case kindProposal:
		return "proposal"
	case kindPart:
		return "part"
	case kindVote:
		return "vote"
	case kindEvidence:
		return "evidence"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// kindSet is a bit set of kinds, the kinds a topic or stream may carry.
type kindSet uint8

func kinds(ks ...msgKind) kindSet {
	var s kindSet
	for _, k := range ks {
		s |= 1 << k
	}
	return s
}

func (s kindSet) has(k msgKind) bool { return k < 8 && s&(1<<k) != 0 }

// Sizes of the fixed-size ledger encodings and the bounds derived from them.
var (
	proposalBytes = len(new(ledger.Proposal).Encode())
	voteBytes     = len(new(ledger.Vote).Encode())
	evidenceBytes = 2 * voteBytes
)

const (
	envelopeHeaderBytes = 2
	// maxProofBytes is the largest encoded Merkle proof a part may carry.
	maxProofBytes = 1 + 3*10 + crypto.MaxMerkleProofDepth*crypto.HashSize
	// maxPartBytes is the largest encoded ledger.Part.
	maxPartBytes = 1 + 4 + 3 + ledger.BlockPartSize + 2 + maxProofBytes
)

// maxEnvelopeBytes bounds every envelope; the part envelope is the largest.
var maxEnvelopeBytes = envelopeHeaderBytes + 2 + proposalBytes + maxPartBytes

// minMessageBytes is the smallest usable pubsub message limit: one part
// envelope plus generous room for pubsub's protobuf framing, signature,
// key and topic.
var minMessageBytes = maxEnvelopeBytes + 2<<10

// message is a decoded envelope. kind says which fields are set; a part
// message sets both proposal and part.
type message struct {
	kind     msgKind
	txs      []*ledger.Tx
	proposal *ledger.Proposal
	part     *ledger.Part
	vote     *ledger.Vote
	evidence *ledger.Evidence
}

func envelope(k msgKind, sizeHint int) *wire.Writer {
	w := wire.NewWriter(make([]byte, 0, envelopeHeaderBytes+sizeHint))
	w.U8(envelopeVersion)
	w.U8(uint8(k))
	return w
}

// MaxTxsPerMessage bounds the transactions gossiped in one message.
// Batching amortises the pubsub message signature and lets receivers
// batch-verify the transactions' signatures.
const MaxTxsPerMessage = 256

// encodeTxs encodes a batch of 1 to MaxTxsPerMessage transactions: a count,
// then each transaction's canonical encoding, length-prefixed.
func encodeTxs(txs []*ledger.Tx) []byte {
	w := envelope(kindTx, 4+len(txs)*(ledger.MaxTxBytes/4))
	w.U32(uint32(len(txs)))
	for _, tx := range txs {
		w.Prefixed(tx.Encode())
	}
	return w.Bytes()
}

func encodeTx(tx *ledger.Tx) []byte { return encodeTxs([]*ledger.Tx{tx}) }

func encodeProposal(p *ledger.Proposal) []byte {
	w := envelope(kindProposal, proposalBytes)
	w.Fixed(p.Encode())
	return w.Bytes()
}

func encodePart(p *ledger.Proposal, part *ledger.Part) []byte {
	enc := part.Encode()
	w := envelope(kindPart, 2+proposalBytes+len(enc))
	w.Prefixed(p.Encode())
	w.Fixed(enc)
	return w.Bytes()
}

func encodeVote(v *ledger.Vote) []byte {
	w := envelope(kindVote, voteBytes)
	w.Fixed(v.Encode())
	return w.Bytes()
}

func encodeEvidence(ev *ledger.Evidence) []byte {
	w := envelope(kindEvidence, evidenceBytes)
	w.Fixed(ev.Encode())
	return w.Bytes()
}

// encode re-encodes a decoded message.
func (m *message) encode() []byte {
	switch m.kind {
	case kindTx:
		return encodeTxs(m.txs)
	case kindProposal:
		return encodeProposal(m.proposal)
	case kindPart:
		return encodePart(m.proposal, m.part)
	case kindVote:
		return encodeVote(m.vote)
	case kindEvidence:
		return encodeEvidence(m.evidence)
	}
	return nil
}

// decodeMessage decodes an envelope. It bounds the input first, checks the
// version and kind, and relies on the ledger's canonical decoders (which
// also run the basic checks of votes and proposals) for the body. It never
// panics on any input.
func decodeMessage(b []byte) (*message, error) {
	if len(b) > maxEnvelopeBytes {
		return nil, fmt.Errorf("decode message: %d bytes, at most %d", len(b), maxEnvelopeBytes)
	}
	r := wire.NewReader(b)
	r.Version("envelope", envelopeVersion)
	m := &message{kind: msgKind(r.U8())}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("decode message: %w", err)
	}
	var err error
	switch m.kind {
	case kindTx:
		n := r.U32()
		if r.Err() == nil && (n == 0 || n > MaxTxsPerMessage) {
			r.Fail(fmt.Errorf("%d transactions, want 1 to %d", n, MaxTxsPerMessage))
		}
		for i := uint32(0); i < n && r.Err() == nil; i++ {
			if tb := r.Prefixed("tx", ledger.MaxTxBytes); r.Err() == nil {
				tx, err := ledger.DecodeTx(tb)
				r.Fail(err)
				m.txs = append(m.txs, tx)
			}
		}
	case kindProposal:
		m.proposal, err = ledger.DecodeProposal(r.Rest())
	case kindPart:
		if prop := r.Prefixed("part proposal", proposalBytes); r.Err() == nil {
			if m.proposal, err = ledger.DecodeProposal(prop); err == nil {
				m.part, err = ledger.DecodePart(r.Rest())
			}
		}
	case kindVote:
		m.vote, err = ledger.DecodeVote(r.Rest())
	case kindEvidence:
		m.evidence, err = ledger.DecodeEvidence(r.Rest())
	default:
		return nil, fmt.Errorf("decode message: unknown kind %d", uint8(m.kind))
	}
	r.Fail(err)
	if err := r.Finish(m.kind.String() + " message"); err != nil {
		return nil, err
	}
	return m, nil
}

// errWrongKind is returned for a message of a kind its topic does not carry.
var errWrongKind = errors.New("message kind not carried on this topic")

// Wire encodings of gossip messages, for tools and tests that speak the
// protocol directly (a peer not built on this package).

// EncodeTxsMessage is the tx-topic message carrying txs.
func EncodeTxsMessage(txs []*ledger.Tx) []byte { return encodeTxs(txs) }

// EncodeVoteMessage is the vote-topic message carrying v.
func EncodeVoteMessage(v *ledger.Vote) []byte { return encodeVote(v) }

// EncodeProposalMessage is the proposal-topic message carrying p.
func EncodeProposalMessage(p *ledger.Proposal) []byte { return encodeProposal(p) }

// EncodeEvidenceMessage is the evidence-topic message carrying ev.
func EncodeEvidenceMessage(ev *ledger.Evidence) []byte { return encodeEvidence(ev) }

// TopicNames are the gossipsub topics of chainID, by kind.
func TopicNames(chainID string) map[string]string {
	out := make(map[string]string, len(topicSpecs))
	for _, spec := range topicSpecs {
		out[spec.name] = topicName(chainID, spec.name)
	}
	return out
}
