package p2p

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/wire"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The snapshot protocol, /ledgerd/<chain>/snapshots/1, serves the state
// snapshots a node keeps to peers that join by state sync. The requester
// writes one request frame and closes its side:
//
//	version (1) | kind 1 (1)                                  list the offers
//	version (1) | kind 2 (1) | height (8)                     the manifest of height
//	version (1) | kind 3 (1) | height (8) | index (4)         chunk index of height
//	version (1) | kind 4 (1) | height (8)                     the priorities of height
//
// and the responder answers with one frame and closes:
//
//	version (1) | kind 1 (1) | status (1) [| count (uvarint) | offers]
//	version (1) | kind 2 (1) | height (8) | status (1) [| manifest (uvarint length + bytes)]
//	version (1) | kind 3 (1) | height (8) | index (4) | status (1) [| chunk (uvarint length + bytes)]
//	version (1) | kind 4 (1) | height (8) | status (1) [| priorities (uvarint length + bytes)]
//
// where status is 0 (found: the body follows), 1 (not found) or 2 (busy:
// this peer's serving budget is spent; ask later). An offer is
//
//	height (8) | format (4) | chunks (4) | manifest hash (32)
//
// and the offers are sorted by height, newest first, then by format, with
// no (height, format) twice. The answer repeats the height and index it
// answers, so a peer cannot pass off one snapshot's chunk as another's.
//
// The priorities of height H are the proposer priorities of height H+1
// that a node recorded when it took the snapshot of H (they are committed
// in no hash, so the manifest cannot carry them): a SnapshotPriorities
// capability serves them, and the joining node checks them against the
// verified headers.
//
// Manifests, chunks and priorities are opaque here: the Handler's SnapshotSource
// serves them and the node verifies them (FetchSpec.Verify); this package
// only bounds their sizes and checks a manifest against the hash its offer
// named.
const (
	snapshotProtocol = "snapshots"
	snapshotVersion  = 1

	snapKindOffers   = 1
	snapKindManifest = 2
	snapKindChunk    = 3
	snapKindPrio     = 4

	snapFound    = 0
	snapNotFound = 1
	snapBusy     = 2

	snapshotRequestBytes = 1 + 1 + 8 + 4
	snapOfferBytes       = 8 + 4 + 4 + 32

	maxOffersFrameBytes   = 1 + 1 + 1 + 1 + MaxSnapshotOffers*snapOfferBytes
	maxManifestFrameBytes = 1 + 1 + 8 + 1 + binary.MaxVarintLen32 + MaxManifestBytes
	maxChunkFrameBytes    = 1 + 1 + 8 + 4 + 1 + binary.MaxVarintLen32 + MaxChunkBytes
	maxPrioFrameBytes     = 1 + 1 + 8 + 1 + binary.MaxVarintLen32 + MaxSnapshotPrioritiesBytes

	// maxSnapshotServers bounds the snapshot streams served at once (2 per
	// peer, half reserved for validators and persistent peers, as for
	// block sync): at most this many chunks are in memory for serving.
	maxSnapshotServers = 8
	// snapshotServeTimeout bounds writing one answer: a full chunk at
	// about 300 KiB/s.
	snapshotServeTimeout = 30 * time.Second
)

// Bounds of the snapshot protocol. The snapshot format (ledger/snapshot)
// must stay within them.
const (
	// MaxSnapshotOffers bounds the offers one peer lists.
	MaxSnapshotOffers = 16
	// MaxManifestBytes bounds a snapshot manifest: a manifest of
	// MaxSnapshotChunks chunks, each with its prefix, counts and SHA-256,
	// is under 5 MB (node's TestSnapshotBoundsFitTheWire checks the format
	// against these bounds).
	MaxManifestBytes = 8 << 20
	// MaxChunkBytes bounds one snapshot chunk.
	MaxChunkBytes = 8 << 20
	// MaxSnapshotChunks bounds the chunks of one snapshot: 512 GiB of
	// chunks at MaxChunkBytes.
	MaxSnapshotChunks = 1 << 16
	// MaxSnapshotPrioritiesBytes bounds the proposer priorities of one
	// snapshot: their encoding (version, set hash, count and 8 bytes per
	// validator) for ledger.MaxValidators validators, with room to spare.
	MaxSnapshotPrioritiesBytes = 64 + ledger.MaxValidators*8
)

// SnapshotOffer describes one snapshot a peer serves.
type SnapshotOffer struct {
	// Height is the height whose state the snapshot holds (the state after
	// block Height, whose app hash header Height+1 carries).
	Height uint64
	// Format is the snapshot format's version; a node restores only the
	// formats it knows.
	Format uint32
	// Chunks is the number of chunks, 1 to MaxSnapshotChunks.
	Chunks uint32
	// ManifestHash is the SHA-256 of the manifest's bytes, as served by
	// SnapshotSource.SnapshotManifest: FetchManifest checks it.
	ManifestHash [32]byte
}

// SnapshotSource is an optional capability of a Handler: a node that keeps
// state snapshots serves them to peers over the snapshot protocol. A
// Handler without it does not speak the protocol (peers asking it get
// "protocol not supported", which costs them nothing). Its methods are
// called from several goroutines at once and must not block for long.
type SnapshotSource interface {
	// Snapshots lists the snapshots this node serves, newest first (at
	// most MaxSnapshotOffers are sent; offers with no chunks or more than
	// MaxSnapshotChunks are left out).
	Snapshots() []SnapshotOffer
	// SnapshotManifest returns the manifest bytes of the snapshot at
	// height (at most MaxManifestBytes), or an error wrapping ErrNotFound.
	SnapshotManifest(height uint64) ([]byte, error)
	// SnapshotChunk returns chunk index of the snapshot at height (at most
	// MaxChunkBytes), or an error wrapping ErrNotFound.
	SnapshotChunk(height uint64, index uint32) ([]byte, error)
}

// SnapshotPriorities is an optional capability of a SnapshotSource: a node
// that recorded the proposer priorities of height H+1 with its snapshot of
// H serves them to joining peers (kind 4). Without it, such requests are
// answered not found. Its method is called from several goroutines at
// once and must not block for long.
type SnapshotPriorities interface {
	// SnapshotPriorities returns the encoded proposer priorities recorded
	// with the snapshot at height (at most MaxSnapshotPrioritiesBytes), or
	// an error wrapping ErrNotFound.
	SnapshotPriorities(height uint64) ([]byte, error)
}

// snapshotRequest is one decoded request.
type snapshotRequest struct {
	kind   uint8
	height uint64 // manifest and chunk
	index  uint32 // chunk
}

func (q snapshotRequest) encode() []byte {
	w := wire.NewWriter(make([]byte, 0, snapshotRequestBytes))
	w.U8(snapshotVersion)
	w.U8(q.kind)
	if q.kind != snapKindOffers {
		w.U64(q.height)
	}
	if q.kind == snapKindChunk {
		w.U32(q.index)
	}
	return w.Bytes()
}

func decodeSnapshotRequest(b []byte) (snapshotRequest, error) {
	r := wire.NewReader(b)
	r.Version("snapshot request", snapshotVersion)
	q := snapshotRequest{kind: r.U8()}
	switch {
	case r.Err() != nil:
	case q.kind == snapKindOffers:
	case q.kind == snapKindManifest, q.kind == snapKindPrio:
		q.height = r.U64()
	case q.kind == snapKindChunk:
		q.height = r.U64()
		q.index = r.U32()
	default:
		r.Fail(fmt.Errorf("unknown kind %d", q.kind))
	}
	if err := r.Finish("snapshot request"); err != nil {
		return snapshotRequest{}, err
	}
	if q.kind != snapKindOffers && q.height == 0 {
		return snapshotRequest{}, errors.New("decode snapshot request: height 0")
	}
	if q.kind == snapKindChunk && q.index >= MaxSnapshotChunks {
		return snapshotRequest{}, fmt.Errorf("decode snapshot request: chunk index %d, at most %d", q.index, MaxSnapshotChunks-1)
	}
	return q, nil
}

// snapshotResponse is one decoded answer.
type snapshotResponse struct {
	kind   uint8
	height uint64 // manifest and chunk: the height answered
	index  uint32 // chunk: the index answered
	status uint8
	offers []SnapshotOffer // offers, when found
	body   []byte          // manifest or chunk when found, aliasing the frame
}

func (a *snapshotResponse) encode() []byte { return append(a.head(), a.body...) }

// head is the answer's encoding up to its body (a manifest's or chunk's
// bytes, written after it as they are, not copied into one buffer).
func (a *snapshotResponse) head() []byte {
	w := wire.NewWriter(make([]byte, 0, 2+8+4+1+binary.MaxVarintLen32+len(a.offers)*snapOfferBytes))
	w.U8(snapshotVersion)
	w.U8(a.kind)
	if a.kind != snapKindOffers {
		w.U64(a.height)
	}
	if a.kind == snapKindChunk {
		w.U32(a.index)
	}
	w.U8(a.status)
	if a.status != snapFound {
		return w.Bytes()
	}
	if a.kind == snapKindOffers {
		w.Uvarint(uint64(len(a.offers)))
		for _, o := range a.offers {
			w.U64(o.Height)
			w.U32(o.Format)
			w.U32(o.Chunks)
			w.Fixed(o.ManifestHash[:])
		}
		return w.Bytes()
	}
	w.Uvarint(uint64(len(a.body)))
	return w.Bytes()
}

// maxSnapshotFrame is the largest answer of kind.
func maxSnapshotFrame(kind uint8) int {
	switch kind {
	case snapKindOffers:
		return maxOffersFrameBytes
	case snapKindManifest:
		return maxManifestFrameBytes
	case snapKindPrio:
		return maxPrioFrameBytes
	default:
		return maxChunkFrameBytes
	}
}

func decodeSnapshotResponse(b []byte) (snapshotResponse, error) {
	if len(b) > maxChunkFrameBytes {
		return snapshotResponse{}, fmt.Errorf("decode snapshot answer: %d bytes, at most %d", len(b), maxChunkFrameBytes)
	}
	r := wire.NewReader(b)
	r.Version("snapshot answer", snapshotVersion)
	a := snapshotResponse{kind: r.U8()}
	switch {
	case r.Err() != nil:
	case a.kind == snapKindOffers:
	case a.kind == snapKindManifest, a.kind == snapKindPrio:
		a.height = r.U64()
	case a.kind == snapKindChunk:
		a.height = r.U64()
		a.index = r.U32()
	default:
		r.Fail(fmt.Errorf("unknown kind %d", a.kind))
	}
	a.status = r.U8()
	switch {
	case r.Err() != nil:
	case a.status == snapNotFound || a.status == snapBusy:
	case a.status != snapFound:
		r.Fail(fmt.Errorf("unknown status %d", a.status))
	case a.kind == snapKindOffers:
		a.offers = decodeOffers(r)
	case a.kind == snapKindManifest:
		a.body = r.Prefixed("manifest", MaxManifestBytes)
	case a.kind == snapKindPrio:
		a.body = r.Prefixed("priorities", MaxSnapshotPrioritiesBytes)
	default:
		a.body = r.Prefixed("chunk", MaxChunkBytes)
	}
	if err := r.Finish("snapshot answer"); err != nil {
		return snapshotResponse{}, err
	}
	if a.kind != snapKindOffers && a.height == 0 {
		return snapshotResponse{}, errors.New("decode snapshot answer: height 0")
	}
	if a.kind == snapKindChunk && a.index >= MaxSnapshotChunks {
		return snapshotResponse{}, fmt.Errorf("decode snapshot answer: chunk index %d, at most %d", a.index, MaxSnapshotChunks-1)
	}
	return a, nil
}

// decodeOffers reads a list of offers and checks each and their order.
func decodeOffers(r *wire.Reader) []SnapshotOffer {
	n := r.Count("snapshot offers", MaxSnapshotOffers, snapOfferBytes)
	if n == 0 {
		return nil
	}
	out := make([]SnapshotOffer, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		var o SnapshotOffer
		o.Height = r.U64()
		o.Format = r.U32()
		o.Chunks = r.U32()
		r.Fixed(o.ManifestHash[:])
		if r.Err() != nil {
			break
		}
		if err := checkOffer(o); err != nil {
			r.Fail(err)
			break
		}
		if i > 0 && compareOffers(out[i-1], o) >= 0 {
			r.Fail(fmt.Errorf("offer %d (height %d format %d) out of order or repeated", i, o.Height, o.Format))
			break
		}
		out = append(out, o)
	}
	return out
}

// checkOffer checks one offer's fields.
func checkOffer(o SnapshotOffer) error {
	if o.Height == 0 || o.Chunks == 0 || o.Chunks > MaxSnapshotChunks {
		return fmt.Errorf("offer of height %d with %d chunks: want height >= 1 and 1 to %d chunks", o.Height, o.Chunks, MaxSnapshotChunks)
	}
	return nil
}

// compareOffers orders offers as they travel: newest first, then by
// format.
func compareOffers(a, b SnapshotOffer) int {
	if c := cmp.Compare(b.Height, a.Height); c != 0 {
		return c
	}
	return cmp.Compare(a.Format, b.Format)
}

// canonicalOffers is what this node sends of its source's list: valid
// offers in wire order, one per (height, format), at most
// MaxSnapshotOffers, newest kept.
func canonicalOffers(in []SnapshotOffer) []SnapshotOffer {
	out := make([]SnapshotOffer, 0, min(len(in), MaxSnapshotOffers))
	for _, o := range in {
		if checkOffer(o) == nil {
			out = append(out, o)
		}
	}
	slices.SortStableFunc(out, compareOffers)
	out = slices.CompactFunc(out, func(a, b SnapshotOffer) bool { return compareOffers(a, b) == 0 })
	return out[:min(len(out), MaxSnapshotOffers)]
}

// serveSnapshots answers one snapshot request from the Handler's
// SnapshotSource, with the read deadline, slot limits, serving budget and
// penalties of block sync.
func (n *Node) serveSnapshots(s network.Stream) {
	serveOne(n, s, n.snapLimit, "snapshot request", snapshotRequestBytes, decodeSnapshotRequest, func(p peer.ID, req snapshotRequest) error {
		a, err := n.answerSnapshot(p, req)
		if err != nil {
			n.log.Warn("snapshot: cannot serve", "peer", p, "height", req.height, "index", req.index, "err", err)
			return err
		}
		_ = s.SetWriteDeadline(time.Now().Add(snapshotServeTimeout))
		bw := bufio.NewWriterSize(s, 64<<10)
		err = writeFrameParts(bw, a.head(), a.body)
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			n.log.Debug("snapshot: serve", "peer", p, "err", err)
		}
		return err
	})
}

// writeFrameParts writes one frame whose body is the parts one after the
// other, as writeFrame(w, concatenation) would, without concatenating.
func writeFrameParts(w io.Writer, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if _, err := w.Write(binary.AppendUvarint(nil, uint64(n))); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// answerSnapshot builds the answer to req. A peer whose serving budget is
// spent is told busy before anything is read from disk; what is sent is
// then charged to it. An error is this node's own fault (a store failure,
// an item over the protocol's bounds).
func (n *Node) answerSnapshot(p peer.ID, req snapshotRequest) (*snapshotResponse, error) {
	a := &snapshotResponse{kind: req.kind, height: req.height, index: req.index}
	if !n.budget.spend(p, 0) {
		a.status = snapBusy
		return a, nil
	}
	var err error
	switch req.kind {
	case snapKindOffers:
		a.offers = canonicalOffers(n.snapshots.Snapshots())
		n.budget.spend(p, len(a.offers)*snapOfferBytes)
		return a, nil
	case snapKindManifest:
		a.body, err = n.snapshots.SnapshotManifest(req.height)
		if err == nil && len(a.body) > MaxManifestBytes {
			err = fmt.Errorf("manifest of height %d is %d bytes, above the protocol's %d", req.height, len(a.body), MaxManifestBytes)
		}
	case snapKindPrio:
		src, ok := n.snapshots.(SnapshotPriorities)
		if !ok {
			err = fmt.Errorf("priorities of height %d: %w", req.height, ErrNotFound)
			break
		}
		a.body, err = src.SnapshotPriorities(req.height)
		if err == nil && len(a.body) > MaxSnapshotPrioritiesBytes {
			err = fmt.Errorf("priorities of height %d are %d bytes, above the protocol's %d", req.height, len(a.body), MaxSnapshotPrioritiesBytes)
		}
	default:
		a.body, err = n.snapshots.SnapshotChunk(req.height, req.index)
		if err == nil && len(a.body) > MaxChunkBytes {
			err = fmt.Errorf("chunk %d of height %d is %d bytes, above the protocol's %d", req.index, req.height, len(a.body), MaxChunkBytes)
		}
	}
	switch {
	case errors.Is(err, ErrNotFound):
		a.status, a.body = snapNotFound, nil
		return a, nil
	case err != nil:
		return nil, err
	}
	n.budget.spend(p, len(a.body))
	return a, nil
}
