package p2p

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrConflictingLightBlocks is what a LightBlockConflict matches: two peers
// served different light blocks of one height, each self-consistent.
var ErrConflictingLightBlocks = errors.New("peers serve conflicting light blocks")

// LightBlockConflict reports two self-consistent light blocks of one
// height with different headers. At most one is the chain's; the light
// client tells which by verifying both from what it trusts, and the peers
// that served the other are lying (or the chain forked).
type LightBlockConflict struct {
	Height uint64
	Blocks [2]*LightBlock
}

func (c *LightBlockConflict) Error() string {
	return fmt.Sprintf("light block %d: %v: %s from %v, %s from %v", c.Height, ErrConflictingLightBlocks,
		c.Blocks[0].Header.Hash(), c.Blocks[0].Peers, c.Blocks[1].Header.Hash(), c.Blocks[1].Peers)
}

// Is makes errors.Is(err, ErrConflictingLightBlocks) hold.
func (c *LightBlockConflict) Is(target error) bool { return target == ErrConflictingLightBlocks }

// PeerLightBlocks is a LightBlockProvider over a node's connected peers.
// It asks Witnesses peers for each light block and returns it once that
// many served the same one, so a single lying peer cannot feed the light
// client a fork unnoticed.
type PeerLightBlocks struct {
	n *Node
	// Witnesses is how many peers must serve the same light block (at
	// least 1). With fewer peers able to serve it, what all of them
	// served is returned.
	Witnesses int
}

// LightBlocks returns a LightBlockProvider that asks this node's peers,
// with witnesses peers agreeing on every light block (2 if witnesses is
// below 1).
func (n *Node) LightBlocks(witnesses int) *PeerLightBlocks {
	if witnesses < 1 {
		witnesses = defaultLightQuorum
	}
	return &PeerLightBlocks{n: n, Witnesses: witnesses}
}

// lightCandidates orders the peers to ask for height: those whose stated
// range covers it first, then those whose range is unknown, each group in
// random order. Peers known not to serve it, and banned ones, are left
// out.
func (n *Node) lightCandidates(height uint64) []peer.ID {
	ranges := n.heights.ranges()
	var covers, unknown []peer.ID
	for _, p := range n.admittedPeers() {
		if n.IsBanned(p) {
			continue
		}
		switch r, ok := ranges[p]; {
		case !ok:
			unknown = append(unknown, p)
		case r.covers(height):
			covers = append(covers, p)
		}
	}
	for _, g := range [][]peer.ID{covers, unknown} {
		slices.Sort(g)
		rand.Shuffle(len(g), func(i, j int) { g[i], g[j] = g[j], g[i] })
	}
	return append(covers, unknown...)
}

// LightBlock returns the light block of height once Witnesses peers served
// it (or every peer that could, if fewer did), asking Witnesses peers at a
// time and another whenever one fails. A peer whose answer breaks the
// protocol or is not self-consistent is banned; one that answers "not
// found" for a height its stated range covers is charged
// PenaltyUnbackedClaim. Two different self-consistent light blocks are
// returned as a *LightBlockConflict. It fails when no peer served it.
func (pl *PeerLightBlocks) LightBlock(ctx context.Context, height uint64) (*LightBlock, error) {
	n := pl.n
	cands := n.lightCandidates(height)
	if len(cands) == 0 {
		return nil, fmt.Errorf("light block %d: no peer serves it", height)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		p   peer.ID
		lb  *LightBlock
		err error
	}
	results := make(chan answer, len(cands))
	running := 0
	launch := func() {
		p := cands[0]
		cands = cands[1:]
		running++
		go func() {
			lb, err := n.FetchLightBlock(ctx, p, height)
			results <- answer{p, lb, err}
		}()
	}
	defer func() {
		cancel()
		for ; running > 0; running-- {
			<-results
		}
	}()
	for running < pl.Witnesses && len(cands) > 0 {
		launch()
	}
	var (
		got  *LightBlock
		id   crypto.Hash
		errs []error
	)
	for running > 0 {
		a := <-results
		running--
		switch {
		case a.err != nil:
			if errors.Is(a.err, ErrNotFound) {
				if r, ok := n.heights.ranges()[a.p]; ok && r.covers(height) {
					n.Penalize(a.p, PenaltyUnbackedClaim, fmt.Sprintf("has no light block %d, which its stated range [%d, %d] covers", height, r.base, r.height))
				}
			}
			errs = append(errs, a.err)
			if len(cands) > 0 {
				launch()
			}
		case got == nil:
			got, id = a.lb, a.lb.Header.Hash()
		case a.lb.Header.Hash() != id:
			return nil, &LightBlockConflict{Height: height, Blocks: [2]*LightBlock{got, a.lb}}
		default:
			got.Peers = append(got.Peers, a.p)
		}
		if got != nil && len(got.Peers) >= pl.Witnesses {
			return got, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if got != nil {
		return got, nil // every peer that could serve it agrees
	}
	return nil, fmt.Errorf("light block %d: no peer served it: %w", height, errors.Join(errs...))
}
