package p2p

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/wire"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The light-block protocol, /ledgerd/<chain>/lightblock/1, serves what a
// light client needs to verify a height from the genesis with peers'
// commits alone: the header of the block (not its transactions), the
// commit stored with it and the validator set that decides it. The
// requester writes
//
//	version (1) | height (8)
//
// and closes its side; the responder answers with one frame and closes:
//
//	version (1) | height (8) | status (1) [| header | commit | validator set]
//
// status as in the snapshot protocol (0 found, 1 not found, 2 busy); the
// three items are each a uvarint length and the canonical encoding
// (ledger.Header.Encode, ledger.Commit.Encode, ledger.ValidatorSet.Encode).
const (
	lightBlockProtocol     = "lightblock"
	lightBlockVersion      = 1
	lightBlockRequestBytes = 1 + 8

	// maxHeaderBytes bounds a canonical header: version, chain ID, height,
	// time, seven hashes and the proposer's address.
	maxHeaderBytes = 1 + binary.MaxVarintLen16 + crypto.MaxChainIDLen + 8 + 8 + 7*crypto.HashSize + crypto.AddressSize
	// maxValidatorSetBytes bounds a canonical validator set: MaxValidators
	// members with the longest names.
	maxValidatorSetBytes = 1 + binary.MaxVarintLen16 +
		ledger.MaxValidators*(crypto.PubKeySize+8+1+ledger.MaxValidatorNameLen+crypto.AddressSize)
	maxLightBlockFrameBytes = 1 + 8 + 1 + 3*binary.MaxVarintLen32 + maxHeaderBytes + maxCommitBytes + maxValidatorSetBytes

	maxLightServers    = 8
	lightServeTimeout  = 10 * time.Second
	lightCallTimeout   = 10 * time.Second
	lightFirstByte     = 5 * time.Second
	defaultLightQuorum = 2
)

// LightBlock is a block's header with the commit that decided it and the
// validator set of its height: what a light client checks a height with.
// A LightBlock from FetchLightBlock is self-consistent (the set hashes to
// the header's ValidatorsHash and +2/3 of it signed the commit for exactly
// this header), not trusted: whether that set is the chain's is for the
// light client to verify.
type LightBlock struct {
	Header     *ledger.Header
	Commit     *ledger.Commit
	Validators *ledger.ValidatorSet
	// Peers are the peers that served it (set by the fetching side; a
	// LightBlockSource leaves it empty): the ones to blame if the light
	// client finds it is not the chain's.
	Peers []peer.ID
}

// Height is the header's height.
func (lb *LightBlock) Height() uint64 { return lb.Header.Height }

// LightBlockSource is an optional capability of a Handler: a node that
// keeps blocks serves light blocks of the heights it holds (from its base
// up). A Handler without it does not speak the light-block protocol.
type LightBlockSource interface {
	// LightBlock returns the header of the block at height, the commit
	// stored with it and the validator set of that height, or an error
	// wrapping ErrNotFound. It is called from several goroutines at once
	// and must not block for long.
	LightBlock(height uint64) (*LightBlock, error)
}

// LightBlockProvider is what a light client verifying headers over the
// peer network needs: the light block of a height, self-consistent but
// not trusted. Node.LightBlocks returns one that asks the node's peers; a
// light client adapted to it (rpc/client's skipping and sequential
// verification) takes the header and commit of a height, and the set of
// height h+1 from the light block of h+1.
type LightBlockProvider interface {
	LightBlock(ctx context.Context, height uint64) (*LightBlock, error)
}

func encodeLightBlockRequest(height uint64) []byte {
	w := wire.NewWriter(make([]byte, 0, lightBlockRequestBytes))
	w.U8(lightBlockVersion)
	w.U64(height)
	return w.Bytes()
}

func decodeLightBlockRequest(b []byte) (uint64, error) {
	r := wire.NewReader(b)
	r.Version("light block request", lightBlockVersion)
	h := r.U64()
	if err := r.Finish("light block request"); err != nil {
		return 0, err
	}
	if h == 0 {
		return 0, errors.New("decode light block request: height 0")
	}
	return h, nil
}

// lightBlockAnswer is one decoded answer; the items alias the frame.
type lightBlockAnswer struct {
	height                     uint64
	status                     uint8
	header, commit, validators []byte
}

func (a *lightBlockAnswer) encode() []byte {
	w := wire.NewWriter(make([]byte, 0, 1+8+1+3*binary.MaxVarintLen32+len(a.header)+len(a.commit)+len(a.validators)))
	w.U8(lightBlockVersion)
	w.U64(a.height)
	w.U8(a.status)
	if a.status == snapFound {
		w.Prefixed(a.header)
		w.Prefixed(a.commit)
		w.Prefixed(a.validators)
	}
	return w.Bytes()
}

func decodeLightBlockAnswer(b []byte) (lightBlockAnswer, error) {
	if len(b) > maxLightBlockFrameBytes {
		return lightBlockAnswer{}, fmt.Errorf("decode light block: %d bytes, at most %d", len(b), maxLightBlockFrameBytes)
	}
	r := wire.NewReader(b)
	r.Version("light block", lightBlockVersion)
	a := lightBlockAnswer{height: r.U64(), status: r.U8()}
	switch {
	case r.Err() != nil:
	case a.status == snapNotFound || a.status == snapBusy:
	case a.status != snapFound:
		r.Fail(fmt.Errorf("unknown status %d", a.status))
	default:
		a.header = r.Prefixed("header", maxHeaderBytes)
		a.commit = r.Prefixed("commit", maxCommitBytes)
		a.validators = r.Prefixed("validator set", maxValidatorSetBytes)
	}
	if err := r.Finish("light block"); err != nil {
		return lightBlockAnswer{}, err
	}
	if a.height == 0 {
		return lightBlockAnswer{}, errors.New("decode light block: height 0")
	}
	return a, nil
}

// parse decodes the three items and checks that they make a light block
// of height on chainID, served by p: the header is of that chain and height, the set
// hashes to its ValidatorsHash, and the commit carries +2/3 of that set's
// signatures for exactly that header at that height.
func (a *lightBlockAnswer) parse(chainID string, height uint64, p peer.ID) (*LightBlock, error) {
	hdr, err := ledger.DecodeHeader(a.header)
	if err != nil {
		return nil, err
	}
	c, err := ledger.DecodeCommit(a.commit)
	if err != nil {
		return nil, err
	}
	vals, err := ledger.DecodeValidatorSet(a.validators)
	if err != nil {
		return nil, err
	}
	switch {
	case hdr.ChainID != chainID:
		return nil, fmt.Errorf("header: %w: %q", ledger.ErrWrongChain, hdr.ChainID)
	case hdr.Height != height:
		return nil, fmt.Errorf("asked for height %d, the header is of %d", height, hdr.Height)
	case vals.Hash() != hdr.ValidatorsHash:
		return nil, fmt.Errorf("validator set hashes to %s, header %d names %s", vals.Hash(), height, hdr.ValidatorsHash)
	}
	if err := c.Verify(chainID, vals, height, hdr.Hash()); err != nil {
		return nil, fmt.Errorf("commit of height %d under the set its header names: %w", height, err)
	}
	return &LightBlock{Header: hdr, Commit: c, Validators: vals, Peers: []peer.ID{p}}, nil
}

// serveLightBlock answers one light-block request from the Handler's
// LightBlockSource, with the read deadline, slot limits, serving budget and
// penalties of block sync.
func (n *Node) serveLightBlock(s network.Stream) {
	serveOne(n, s, n.lightLimit, "light block request", lightBlockRequestBytes, decodeLightBlockRequest, func(p peer.ID, height uint64) error {
		a := &lightBlockAnswer{height: height, status: snapBusy}
		if n.budget.spend(p, 0) {
			lb, err := n.lights.LightBlock(height)
			switch {
			case errors.Is(err, ErrNotFound):
				a.status = snapNotFound
			case err != nil:
				n.log.Warn("light block: cannot serve", "peer", p, "height", height, "err", err)
				return err
			case lb == nil || lb.Header == nil || lb.Commit == nil || lb.Validators == nil:
				n.log.Warn("light block: the handler returned an incomplete light block", "height", height)
				return errors.New("incomplete light block")
			default:
				a.status = snapFound
				a.header, a.commit, a.validators = lb.Header.Encode(), lb.Commit.Encode(), lb.Validators.Encode()
				n.budget.spend(p, len(a.header)+len(a.commit)+len(a.validators))
			}
		}
		_ = s.SetWriteDeadline(time.Now().Add(lightServeTimeout))
		bw := bufio.NewWriterSize(s, 64<<10)
		if err := writeFrame(bw, a.encode()); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// FetchLightBlock asks p for the light block of height and returns it
// once it is self-consistent (see LightBlock). A peer whose answer breaks
// the protocol or is not self-consistent is banned. An answer of "not
// found" comes back as an error wrapping ErrNotFound (blaming p for it, if
// it should have had the height, is for the caller: LightBlocks does).
func (n *Node) FetchLightBlock(ctx context.Context, p peer.ID, height uint64) (*LightBlock, error) {
	lb, err := n.fetchLightBlock(ctx, p, height)
	if isPeerFault(err) {
		n.Ban(p, fmt.Sprintf("light block %d: %v", height, err))
	}
	return lb, err
}

func (n *Node) fetchLightBlock(ctx context.Context, p peer.ID, height uint64) (*LightBlock, error) {
	if height == 0 {
		return nil, errors.New("light block: there is no height 0")
	}
	ctx, cancel := context.WithTimeout(ctx, lightCallTimeout)
	defer cancel()
	s, err := n.host.NewStream(ctx, p, n.protocol(lightBlockProtocol))
	if err != nil {
		return nil, fmt.Errorf("light block %d from %s: %w", height, p, err)
	}
	// A stream does not watch ctx: reset it when ctx ends, so a caller
	// that gives up (or has what it needs) is not kept waiting.
	defer context.AfterFunc(ctx, func() { s.Reset() })()
	deadline, _ := ctx.Deadline()
	_ = s.SetDeadline(earliest(deadline, time.Now().Add(lightFirstByte)))
	a, err := func() (lightBlockAnswer, error) {
		if err := writeFrame(s, encodeLightBlockRequest(height)); err != nil {
			return lightBlockAnswer{}, err
		}
		if err := s.CloseWrite(); err != nil {
			return lightBlockAnswer{}, err
		}
		br := bufio.NewReaderSize(s, 64<<10)
		if _, err := br.Peek(1); err != nil {
			return lightBlockAnswer{}, err
		}
		_ = s.SetDeadline(deadline)
		frame, err := readFrame(br, maxLightBlockFrameBytes)
		if err != nil {
			return lightBlockAnswer{}, n.streamFault(p, err)
		}
		a, err := decodeLightBlockAnswer(frame)
		if err != nil {
			return lightBlockAnswer{}, peerFault{err}
		}
		if a.height != height {
			return lightBlockAnswer{}, peerFault{fmt.Errorf("asked for light block %d, answered %d", height, a.height)}
		}
		return a, nil
	}()
	if err != nil {
		s.Reset()
		return nil, fmt.Errorf("light block %d from %s: %w", height, p, err)
	}
	_ = s.Close()
	switch a.status {
	case snapBusy:
		return nil, fmt.Errorf("light block %d from %s: %w", height, p, errSnapBusy)
	case snapNotFound:
		return nil, fmt.Errorf("light block %d from %s: %w", height, p, ErrNotFound)
	}
	lb, err := a.parse(n.cfg.ChainID, height, p)
	if err != nil {
		return nil, fmt.Errorf("light block %d from %s: %w", height, p, peerFault{err})
	}
	return lb, nil
}
