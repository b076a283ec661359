package p2p

import (
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
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

func envelope(k msgKind, sizeHint int) wireWriter {
	w := wireWriter{buf: make([]byte, 0, envelopeHeaderBytes+sizeHint)}
	w.u8(envelopeVersion)
	w.u8(uint8(k))
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
	w.u32(uint32(len(txs)))
	for _, tx := range txs {
		w.bytes(tx.Encode())
	}
	return w.buf
}

func encodeTx(tx *ledger.Tx) []byte { return encodeTxs([]*ledger.Tx{tx}) }

func encodeProposal(p *ledger.Proposal) []byte {
	w := envelope(kindProposal, proposalBytes)
	w.raw(p.Encode())
	return w.buf
}

func encodePart(p *ledger.Proposal, part *ledger.Part) []byte {
	enc := part.Encode()
	w := envelope(kindPart, 2+proposalBytes+len(enc))
	w.bytes(p.Encode())
	w.raw(enc)
	return w.buf
}

func encodeVote(v *ledger.Vote) []byte {
	w := envelope(kindVote, voteBytes)
	w.raw(v.Encode())
	return w.buf
}

func encodeEvidence(ev *ledger.Evidence) []byte {
	w := envelope(kindEvidence, evidenceBytes)
	w.raw(ev.Encode())
	return w.buf
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
	r := wireReader{b: b}
	if v := r.u8(); r.err == nil && v != envelopeVersion {
		return nil, fmt.Errorf("decode message: unknown version %d", v)
	}
	m := &message{kind: msgKind(r.u8())}
	if r.err != nil {
		return nil, fmt.Errorf("decode message: %w", r.err)
	}
	var err error
	switch m.kind {
	case kindTx:
		n := r.u32()
		if r.err == nil && (n == 0 || n > MaxTxsPerMessage) {
			return nil, fmt.Errorf("decode tx message: %d transactions, want 1 to %d", n, MaxTxsPerMessage)
		}
		for i := uint32(0); i < n && r.err == nil && err == nil; i++ {
			var tx *ledger.Tx
			if tx, err = ledger.DecodeTx(r.bytes("tx", ledger.MaxTxBytes)); err == nil {
				m.txs = append(m.txs, tx)
			}
		}
		if r.err == nil && err == nil && len(r.rest()) != 0 {
			err = errors.New("trailing bytes after the transactions")
		}
		if r.err != nil && err == nil {
			err = r.err
		}
	case kindProposal:
		m.proposal, err = ledger.DecodeProposal(r.rest())
	case kindPart:
		prop := r.bytes("part proposal", proposalBytes)
		if r.err != nil {
			return nil, fmt.Errorf("decode message: %w", r.err)
		}
		if m.proposal, err = ledger.DecodeProposal(prop); err == nil {
			m.part, err = ledger.DecodePart(r.rest())
		}
	case kindVote:
		m.vote, err = ledger.DecodeVote(r.rest())
	case kindEvidence:
		m.evidence, err = ledger.DecodeEvidence(r.rest())
	default:
		return nil, fmt.Errorf("decode message: unknown kind %d", uint8(m.kind))
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s message: %w", m.kind, err)
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
