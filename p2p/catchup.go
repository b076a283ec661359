package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/wire"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The catch-up protocol recovers the messages of the current round that
// gossip failed to deliver. The requester writes
//
//	version (1) | height (8) | round (4)
//
// and closes its side; the responder writes what Handler.RoundMessages
// returns as a sequence of frames, each one gossip envelope (the proposal,
// its parts, then the votes), and closes. Every frame passes the same
// checks as a gossip message; one rejected frame gets the responder banned.
const (
	catchupProtocol     = "catchup"
	catchupVersion      = 1
	catchupRequestBytes = 1 + 8 + 4
	maxCatchupServers   = 4
	catchupTimeout      = 30 * time.Second
	catchupServeTimeout = 10 * time.Second
	catchupPeers        = 2
)

// MaxCatchupVotes bounds the votes in one catch-up answer: both kinds of
// vote from every validator in four rounds.
const MaxCatchupVotes = 8 * ledger.MaxValidators

// maxCatchupFrames and maxCatchupBytes bound one catch-up answer.
var (
	maxCatchupFrames = 1 + ledger.MaxBlockParts + MaxCatchupVotes
	maxCatchupBytes  = int64(envelopeHeaderBytes+proposalBytes+4) +
		int64(ledger.MaxBlockParts)*int64(maxEnvelopeBytes+4) +
		int64(MaxCatchupVotes)*int64(envelopeHeaderBytes+voteBytes+2)
)

var catchupKinds = kinds(kindProposal, kindPart, kindVote)

func encodeCatchupRequest(height uint64, round uint32) []byte {
	w := wire.NewWriter(make([]byte, 0, catchupRequestBytes))
	w.U8(catchupVersion)
	w.U64(height)
	w.U32(round)
	return w.Bytes()
}

func decodeCatchupRequest(b []byte) (height uint64, round uint32, err error) {
	r := wire.NewReader(b)
	r.Version("catch-up request", catchupVersion)
	height = r.U64()
	round = r.U32()
	if err := r.Finish("catch-up request"); err != nil {
		return 0, 0, err
	}
	if height == 0 || round > ledger.MaxRound {
		return 0, 0, fmt.Errorf("decode catch-up request: height %d round %d out of range", height, round)
	}
	return height, round, nil
}

// CatchUp asks up to two peers that have reached height for the proposal,
// block parts and votes they hold for height from round on, and hands what
// passes the gossip checks to the Handler. It returns when the peers have
// answered or ctx ends. The node calls it by itself when the consensus
// position stays put for Config.CatchupInterval; the driver may call it
// too (for example when a propose timeout fires). It fails only when no
// peer answered: one peer's failure (a liar banned meanwhile, a peer gone)
// does not undo what another delivered.
func (n *Node) CatchUp(ctx context.Context, height uint64, round uint32) error {
	peers := n.catchupPeers(height)
	if len(peers) == 0 {
		return errors.New("catch-up: no peers")
	}
	ctx, cancel := context.WithTimeout(ctx, catchupTimeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(peers))
	for i, p := range peers {
		wg.Go(func() { errs[i] = n.fetchRound(ctx, p, height, round) })
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	return errors.Join(errs...)
}

// catchupPeers picks up to catchupPeers connected peers, preferring those
// known to have committed height-1 or more (they have seen this height's
// messages), then those whose height is unknown, then the rest.
func (n *Node) catchupPeers(height uint64) []peer.ID {
	heights := n.PeerHeights()
	var at, unknown, behind []peer.ID
	for _, p := range n.admittedPeers() {
		if n.IsBanned(p) {
			continue
		}
		switch h, ok := heights[p]; {
		case ok && h+1 >= height:
			at = append(at, p)
		case !ok:
			unknown = append(unknown, p)
		default:
			behind = append(behind, p)
		}
	}
	var out []peer.ID
	for _, group := range [][]peer.ID{at, unknown, behind} {
		rand.Shuffle(len(group), func(i, j int) { group[i], group[j] = group[j], group[i] })
		out = append(out, group[:min(len(group), catchupPeers-len(out))]...)
	}
	return out
}

// fetchRound runs one catch-up request to p.
func (n *Node) fetchRound(ctx context.Context, p peer.ID, height uint64, round uint32) error {
	s, err := n.host.NewStream(ctx, p, n.protocol(catchupProtocol))
	if err != nil {
		return fmt.Errorf("catch-up from %s: %w", p, err)
	}
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	err = n.readRound(s, p, height, round)
	if err != nil {
		s.Reset()
		return fmt.Errorf("catch-up from %s: %w", p, err)
	}
	return s.Close()
}

func (n *Node) readRound(s network.Stream, p peer.ID, height uint64, round uint32) error {
	if err := writeFrame(s, encodeCatchupRequest(height, round)); err != nil {
		return err
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	br := bufio.NewReader(io.LimitReader(s, maxCatchupBytes))
	got := 0
	for range maxCatchupFrames {
		frame, err := readFrame(br, maxEnvelopeBytes)
		if errors.Is(err, io.EOF) {
			n.log.Debug("caught up", "peer", p, "height", height, "round", round, "messages", got)
			return nil
		}
		if err != nil {
			return err
		}
		v, m, err := n.check.check(catchupKinds, frame, false)
		switch v {
		case reject:
			n.requestBan(p, "catch-up answer: "+err.Error())
			return err
		case ignore:
			continue
		}
		got++
		n.deliver(p, m, false)
	}
	return fmt.Errorf("more than %d frames", maxCatchupFrames)
}

// serveCatchup answers a catch-up request from Handler.RoundMessages,
// with the same read deadline and penalties as serveSync.
func (n *Node) serveCatchup(s network.Stream) {
	serveOne(n, s, n.catchLimit, "catch-up request", catchupRequestBytes, decodeCatchupRequestFrame, func(p peer.ID, req catchupRequest) error {
		_ = s.SetWriteDeadline(time.Now().Add(catchupServeTimeout))
		if err := n.writeRound(s, p, req.height, req.round); err != nil {
			n.log.Debug("catch-up: serve", "peer", p, "err", err)
			return err
		}
		return nil
	})
}

type catchupRequest struct {
	height uint64
	round  uint32
}

func decodeCatchupRequestFrame(b []byte) (catchupRequest, error) {
	h, r, err := decodeCatchupRequest(b)
	return catchupRequest{h, r}, err
}

// writeRound writes what the node holds of (height, round), drawing every
// frame from p's serving budget; the answer ends early when it runs out.
func (n *Node) writeRound(s network.Stream, p peer.ID, height uint64, round uint32) error {
	rm := n.handler.RoundMessages(height, round)
	bw := bufio.NewWriterSize(s, 64<<10)
	// emit writes one frame; false means stop (budget spent or error).
	var err error
	emit := func(f []byte) bool {
		if !n.budget.spend(p, len(f)) {
			n.log.Debug("catch-up: peer's serving budget spent", "peer", p, "height", height, "round", round)
			return false
		}
		err = writeFrame(bw, f)
		return err == nil
	}
	ok := true
	if rm.Proposal != nil {
		ok = emit(encodeProposal(rm.Proposal))
		for _, part := range rm.Parts[:min(len(rm.Parts), ledger.MaxBlockParts)] {
			if ok = ok && emit(encodePart(rm.Proposal, part)); !ok {
				break
			}
		}
	}
	for _, v := range rm.Votes[:min(len(rm.Votes), MaxCatchupVotes)] {
		if ok = ok && emit(encodeVote(v)); !ok {
			break
		}
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// catchupLoop asks peers for the current round's messages whenever the
// consensus position has not moved for a whole CatchupInterval.
func (n *Node) catchupLoop() {
	t := time.NewTicker(n.cfg.CatchupInterval)
	defer t.Stop()
	var lastH uint64
	var lastR uint32
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		h, r := n.handler.ConsensusPosition()
		if h == lastH && r == lastR && h > 0 && len(n.admittedPeers()) > 0 {
			if err := n.CatchUp(n.ctx, h, r); err != nil && n.ctx.Err() == nil {
				n.log.Debug("catch-up failed", "height", h, "round", r, "err", err)
			}
		}
		lastH, lastR = h, r
	}
}
