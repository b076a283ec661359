package p2p

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/wire"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The block-sync protocol. The requester writes one frame
//
//	version (1) | from height (8) | count (4, 1..MaxSyncBatch)
//
// and closes its side. The responder writes, in height order from `from`,
// one block frame per height it holds,
//
//	version (1) | kind 1 (1) | height (8) | block (uvarint length + canonical block) | commit (uvarint length + canonical commit)
//
// stopping early at its latest height or once it has sent
// syncResponseSoftBytes, and then one end frame,
//
//	version (1) | kind 2 (1) | latest height (8)              base 1
//	version (1) | kind 3 (1) | latest height (8) | base (8)   base in [2, latest+1]
//
// so every answer also tells the requester how far the responder is, and
// from which height it serves (the status protocol's base; kind 3 only for
// a base above 1, so a full node's answers are what they always were). A
// request that starts below the responder's base is answered with the end
// frame alone.
const (
	syncProtocol = "blocksync"
	syncVersion  = 1

	syncKindBlock   = 1
	syncKindEnd     = 2
	syncKindEndBase = 3

	// MaxSyncBatch bounds the heights one request may ask for.
	MaxSyncBatch = 64

	syncRequestBytes = 1 + 8 + 4
	syncEndBytes     = 1 + 1 + 8 // with base 1; kind 3 adds 8
	// syncResponseSoftBytes: a responder stops adding blocks to an answer
	// once it has written this much (it always sends at least one).
	syncResponseSoftBytes = 8 << 20
	maxSyncServers        = 8
	// syncServeTimeout bounds writing one answer (the requester's own
	// default RequestTimeout is 20s too).
	syncServeTimeout = 20 * time.Second
	// requestReadTimeout bounds the wait for the request frame of any
	// serving stream (block sync, catch-up): requesters write it at once.
	requestReadTimeout = 3 * time.Second
)

// maxCommitBytes is the largest canonical commit: every validator signing.
const maxCommitBytes = 1 + 8 + 4 + crypto.HashSize + 3 + ledger.MaxValidators*(4+crypto.SignatureSize)

// maxSyncFrameBytes bounds one block frame: the largest block the ledger
// decodes plus the largest commit. This is the deliberate cap of the
// stream protocol; block frames are read incrementally, so a peer that
// announces a large frame and stalls costs no memory.
const maxSyncFrameBytes = 2 + 8 + 5 + ledger.MaxBlockDecodeBytes + 3 + maxCommitBytes

type syncRequest struct {
	from  uint64
	count uint32
}

func (r syncRequest) encode() []byte {
	w := wire.NewWriter(make([]byte, 0, syncRequestBytes))
	w.U8(syncVersion)
	w.U64(r.from)
	w.U32(r.count)
	return w.Bytes()
}

func decodeSyncRequest(b []byte) (syncRequest, error) {
	r := wire.NewReader(b)
	r.Version("sync request", syncVersion)
	req := syncRequest{from: r.U64(), count: r.U32()}
	if err := r.Finish("sync request"); err != nil {
		return syncRequest{}, err
	}
	if req.from == 0 || req.count == 0 || req.count > MaxSyncBatch || req.from+uint64(req.count) < req.from {
		return syncRequest{}, fmt.Errorf("decode sync request: from %d count %d out of range", req.from, req.count)
	}
	return req, nil
}

// syncFrame is one decoded response frame: a block (end false) or the end.
type syncFrame struct {
	end    bool
	height uint64 // block height, or the responder's latest height at the end
	base   uint64 // the responder's base at the end (1 for kind 2)
	block  []byte // canonical block, aliasing the frame
	commit []byte // canonical commit, aliasing the frame
}

func encodeSyncBlock(height uint64, block, commit []byte) []byte {
	w := wire.NewWriter(make([]byte, 0, 2+8+10+len(block)+len(commit)))
	w.U8(syncVersion)
	w.U8(syncKindBlock)
	w.U64(height)
	w.Prefixed(block)
	w.Prefixed(commit)
	return w.Bytes()
}

func encodeSyncEnd(latest, base uint64) []byte {
	w := wire.NewWriter(make([]byte, 0, syncEndBytes+8))
	w.U8(syncVersion)
	if base <= 1 {
		w.U8(syncKindEnd)
		w.U64(latest)
		return w.Bytes()
	}
	w.U8(syncKindEndBase)
	w.U64(latest)
	w.U64(base)
	return w.Bytes()
}

func decodeSyncFrame(b []byte) (syncFrame, error) {
	if len(b) > maxSyncFrameBytes {
		return syncFrame{}, fmt.Errorf("decode sync frame: %d bytes, at most %d", len(b), maxSyncFrameBytes)
	}
	r := wire.NewReader(b)
	r.Version("sync frame", syncVersion)
	var f syncFrame
	switch k := r.U8(); {
	case r.Err() != nil:
	case k == syncKindBlock:
		f.height = r.U64()
		f.block = r.Prefixed("block", ledger.MaxBlockDecodeBytes)
		f.commit = r.Prefixed("commit", maxCommitBytes)
	case k == syncKindEnd:
		f.end, f.base = true, 1
		f.height = r.U64()
	case k == syncKindEndBase:
		f.end = true
		f.height = r.U64()
		f.base = r.U64()
		if r.Err() == nil && !validBase(f.height, f.base) {
			r.Fail(fmt.Errorf("base %d with latest height %d: want 2 <= base <= latest+1", f.base, f.height))
		}
	default:
		r.Fail(fmt.Errorf("unknown kind %d", k))
	}
	if err := r.Finish("sync frame"); err != nil {
		return syncFrame{}, err
	}
	return f, nil
}

// serveSync answers a block-sync request from the Handler's block store.
// The slot it takes is held for at most requestReadTimeout until the
// request is in, then syncServeTimeout to write the answer; a peer that
// sends no request in time or a malformed one is penalised.
func (n *Node) serveSync(s network.Stream) {
	serveOne(n, s, n.syncLimit, "block-sync request", syncRequestBytes, decodeSyncRequest, func(p peer.ID, req syncRequest) error {
		_ = s.SetWriteDeadline(time.Now().Add(syncServeTimeout))
		if err := n.writeBlocks(s, p, req); err != nil {
			n.log.Debug("block sync: serve", "peer", p, "err", err)
			return err
		}
		return nil
	})
}

// serveOne is what every request/response protocol's server shares: it
// counts the stream among the node's goroutines, takes one of lim's
// serving slots (a busy node resets the stream; the requester asks
// another peer or later), reads and decodes the one request frame within
// requestReadTimeout (a malformed or missing one is the peer's fault,
// named what), and calls answer to write the response. An error from
// answer resets the stream; otherwise it is closed.
func serveOne[T any](n *Node, s network.Stream, lim *streamLimiter, what string, max int, decode func([]byte) (T, error), answer func(p peer.ID, req T) error) {
	if !n.track() {
		s.Reset()
		return
	}
	defer n.wg.Done()
	p := s.Conn().RemotePeer()
	priv := n.privileged(p)
	if !lim.acquire(p, priv) {
		s.Reset()
		return
	}
	defer lim.release(p, priv)
	req, err := readRequest(s, max, decode)
	if err != nil {
		n.requestFault(p, what, err)
		s.Reset()
		return
	}
	if err := answer(p, req); err != nil {
		s.Reset()
		return
	}
	_ = s.Close()
}

// readRequest reads and decodes the one request frame of a serving
// stream within requestReadTimeout. Decoding errors come back malformed.
func readRequest[T any](s network.Stream, max int, decode func([]byte) (T, error)) (T, error) {
	_ = s.SetReadDeadline(time.Now().Add(requestReadTimeout))
	var zero T
	frame, err := readFrame(bufio.NewReaderSize(s, 32), max)
	if err != nil {
		return zero, err
	}
	req, err := decode(frame)
	if err != nil {
		return zero, malformed(err)
	}
	return req, nil
}

// requestFault penalises a peer whose request stream failed by its fault:
// a malformed request, or none before the read deadline.
func (n *Node) requestFault(p peer.ID, what string, err error) {
	switch {
	case isMalformed(err):
		n.penalise(p, "malformed "+what+": "+err.Error(), malformedWeight)
	case isTimeout(err):
		n.penalise(p, fmt.Sprintf("no %s within %s", what, requestReadTimeout), idleWeight)
	default:
		n.log.Debug("serve: read request", "peer", p, "what", what, "err", err)
	}
}

// isTimeout reports whether err is a deadline passing (yamux and QUIC
// streams report it as a net.Error that times out).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// writeBlocks answers req, drawing every block frame from p's serving
// budget: when it runs out the answer ends early (possibly with no block),
// and the requester asks again later or elsewhere. A request from below
// this node's base gets the end frame alone, which names the base.
func (n *Node) writeBlocks(s network.Stream, p peer.ID, req syncRequest) error {
	latest, base := n.servingRange()
	bw := bufio.NewWriterSize(s, 64<<10)
	sent := 0
	for h := req.from; req.from >= base && h < req.from+uint64(req.count) && h <= latest && sent < syncResponseSoftBytes; h++ {
		block, err := n.handler.Block(h)
		if err != nil {
			n.log.Debug("block sync: no block", "height", h, "err", err)
			break
		}
		commit, err := n.handler.Commit(h)
		if err != nil || commit == nil {
			n.log.Debug("block sync: no commit", "height", h, "err", err)
			break
		}
		f := encodeSyncBlock(h, block, commit.Encode())
		if !n.budget.spend(p, len(f)) {
			n.log.Debug("block sync: peer's serving budget spent", "peer", p, "height", h)
			break
		}
		if err := writeFrame(bw, f); err != nil {
			return err
		}
		sent += len(f)
	}
	if err := writeFrame(bw, encodeSyncEnd(latest, base)); err != nil {
		return err
	}
	return bw.Flush()
}
