package p2p

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"
)

// Gossipsub reads a peer's RPCs in its own stream handler and, on an RPC
// over the size limit or one that is not valid protobuf, resets the stream
// and logs (the second case as "control message is too large"); no hook
// reports it per peer, and the peer's score is untouched. So the node hands
// pubsub a host (pubsubHost) whose stream handlers first wait for the
// peer's admission and then read through an rpcStream: it re-frames the
// RPCs pubsub reads, refuses an oversized one itself, and, when pubsub
// resets the stream right after reading a whole RPC, re-checks that RPC to
// learn whether it was malformed. Either fault is logged with what it was
// and penalised through the reject counter (malformedWeight each).

// pubsubHost is the host pubsub sees: the node's host, with every stream
// handler pubsub registers wrapped by guardRPCs.
type pubsubHost struct {
	host.Host
	n *Node
}

// SetStreamHandler registers pubsub's handler behind the RPC guard.
func (h pubsubHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, h.n.guardRPCs(handler))
}

// SetStreamHandlerMatch registers pubsub's handler behind the RPC guard.
func (h pubsubHost) SetStreamHandlerMatch(pid protocol.ID, m func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, m, h.n.guardRPCs(handler))
}

// guardRPCs wraps pubsub's inbound stream handler: only admitted peers are
// served, and their RPCs are read through an rpcStream.
func (n *Node) guardRPCs(handler network.StreamHandler) network.StreamHandler {
	return n.admittedOnly(func(s network.Stream) {
		handler(newRPCStream(s, n.cfg.MaxMessageBytes, pubsub.DefaultMaxControlMessageSize, func(reason string) {
			n.penalise(s.Conn().RemotePeer(), "gossip RPC: "+reason, malformedWeight)
		}))
	})
}

// rpcStream passes a pubsub stream's varint-framed RPCs through to the
// reader (pubsub) one whole frame at a time, so it knows at every moment
// which RPC the reader last finished.
type rpcStream struct {
	network.Stream
	br         *bufio.Reader
	max        int // largest RPC
	maxControl int // largest control part of an RPC
	fault      func(reason string)

	mu       sync.Mutex
	frame    []byte // the current frame: varint length, then the RPC
	hdr      int    // length of frame's varint prefix
	off      int    // bytes of frame already read
	reported bool
}

func newRPCStream(s network.Stream, max, maxControl int, fault func(string)) *rpcStream {
	return &rpcStream{Stream: s, br: bufio.NewReaderSize(s, 4096), max: max, maxControl: maxControl, fault: fault}
}

// Read serves the current frame, reading the next whole one when it is
// used up. An RPC announced larger than max is reported and refused here,
// before any of it is buffered.
func (r *rpcStream) Read(p []byte) (int, error) {
	r.mu.Lock()
	if r.off < len(r.frame) {
		k := copy(p, r.frame[r.off:])
		r.off += k
		r.mu.Unlock()
		return k, nil
	}
	r.mu.Unlock()

	size, err := binary.ReadUvarint(r.br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, io.EOF
		}
		return 0, err
	}
	if size > uint64(r.max) {
		r.report(fmt.Sprintf("oversized RPC: %d bytes announced, limit %d", size, r.max))
		return 0, fmt.Errorf("rpc of %d bytes exceeds the limit of %d", size, r.max)
	}
	frame := make([]byte, binary.MaxVarintLen64+int(size))
	hdr := binary.PutUvarint(frame, size)
	frame = frame[:hdr+int(size)]
	if _, err := io.ReadFull(r.br, frame[hdr:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	r.mu.Lock()
	r.frame, r.hdr, r.off = frame, hdr, 0
	k := copy(p, frame)
	r.off = k
	r.mu.Unlock()
	return k, nil
}

// Reset is how pubsub ends a stream it refuses. If it had just read a
// whole RPC, that RPC is checked the way pubsub checks it, and a fault is
// reported.
func (r *rpcStream) Reset() error {
	r.mu.Lock()
	var rpc []byte
	if len(r.frame) > 0 && r.off == len(r.frame) {
		rpc = r.frame[r.hdr:]
	}
	r.frame = nil
	r.mu.Unlock()
	if rpc != nil {
		if reason := checkRPC(rpc, r.maxControl); reason != "" {
			r.report(reason)
		}
	}
	return r.Stream.Reset()
}

func (r *rpcStream) report(reason string) {
	r.mu.Lock()
	done := r.reported
	r.reported = true
	r.mu.Unlock()
	if !done {
		r.fault(reason)
	}
}

// checkRPC reports what is wrong with one RPC as pubsub would see it, or
// "" if nothing is.
func checkRPC(rpc []byte, maxControl int) string {
	var m pb.RPC
	if err := proto.Unmarshal(rpc, &m); err != nil {
		return fmt.Sprintf("malformed RPC (%d bytes): not valid protobuf: %v", len(rpc), err)
	}
	if err := pb.ValidateRawRPCControlMessageSize(rpc, maxControl); err != nil {
		return fmt.Sprintf("RPC (%d bytes) refused: %v", len(rpc), err)
	}
	return ""
}
