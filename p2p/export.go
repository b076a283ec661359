package p2p

import (
	"bufio"
	"io"

	"github.com/ledgerd/ledgerd/ledger"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Wire encodings and protocol IDs for peers not built on this package (the
// adversarial peer of internal/harness/adversary speaks the protocols directly).
// Nothing here is used by Node itself; each is the exact encoding the node
// sends, so a peer using them is indistinguishable from a ledgerd node.

// Stream protocol names, as passed to ProtocolID.
const (
	StatusProtocol     = statusProtocol
	SyncProtocol       = syncProtocol
	CatchupProtocol    = catchupProtocol
	SnapshotsProtocol  = snapshotProtocol
	LightBlockProtocol = lightBlockProtocol
)

// ProtocolID is the stream protocol ID of name (StatusProtocol,
// SyncProtocol, CatchupProtocol, SnapshotsProtocol or LightBlockProtocol)
// on chainID.
func ProtocolID(chainID, name string) protocol.ID {
	return protocol.ID("/ledgerd/" + chainID + "/" + name + "/1")
}

// EncodePartMessage is the proposal-topic message carrying part of the
// block proposed by p.
func EncodePartMessage(p *ledger.Proposal, part *ledger.Part) []byte { return encodePart(p, part) }

// EncodeStatus is the status frame body announcing latest, with base 1 (a
// node that serves every height).
func EncodeStatus(latest uint64) []byte { return encodeStatus(latest, 1) }

// EncodeStatusBase is the status frame body announcing latest and the
// lowest height served, base (1 for a full node). It does not check the
// pair: a peer may send what the node must refuse.
func EncodeStatusBase(latest, base uint64) []byte { return encodeStatus(latest, base) }

// DecodeStatus decodes a status frame body, returning the latest height
// it announces (DecodeStatusBase also returns the base).
func DecodeStatus(b []byte) (uint64, error) {
	h, _, err := decodeStatus(b)
	return h, err
}

// DecodeStatusBase decodes a status frame body: the latest height and
// the base it announces.
func DecodeStatusBase(b []byte) (latest, base uint64, err error) { return decodeStatus(b) }

// EncodeSyncRequest is the block-sync request frame body for count heights
// from from. It does not check the range: a peer may send what the node
// must refuse.
func EncodeSyncRequest(from uint64, count uint32) []byte {
	return syncRequest{from: from, count: count}.encode()
}

// DecodeSyncRequest decodes and range-checks a block-sync request frame
// body, returning the first height and the count asked for.
func DecodeSyncRequest(b []byte) (from uint64, count uint32, err error) {
	req, err := decodeSyncRequest(b)
	return req.from, req.count, err
}

// EncodeSyncEnd is the frame that ends a block-sync answer, announcing the
// responder's latest height (and base 1).
func EncodeSyncEnd(latest uint64) []byte { return encodeSyncEnd(latest, 1) }

// EncodeSyncEndBase is the frame that ends a block-sync answer, announcing
// the responder's latest height and base.
func EncodeSyncEndBase(latest, base uint64) []byte { return encodeSyncEnd(latest, base) }

// EncodeCatchupRequest is the catch-up request frame body for (height,
// round).
func EncodeCatchupRequest(height uint64, round uint32) []byte {
	return encodeCatchupRequest(height, round)
}

// Size bounds of the stream requests, for readers of them.
const (
	StatusBytes         = statusBytes
	SyncRequestBytes    = syncRequestBytes
	CatchupRequestBytes = catchupRequestBytes
)

// MessageID is the gossipsub message ID function the node uses (the hash
// of the message data), for a peer whose pubsub must agree with it on
// which messages are duplicates.
func MessageID(m *pb.Message) string { return messageID(m) }

// WriteFrame writes body as one length-prefixed stream frame.
func WriteFrame(w io.Writer, body []byte) error { return writeFrame(w, body) }

// ReadFrame reads one length-prefixed stream frame of at most max bytes;
// it allocates only as bytes arrive.
func ReadFrame(r *bufio.Reader, max int) ([]byte, error) { return readFrame(r, max) }
