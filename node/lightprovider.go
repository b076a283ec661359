package node

import (
	"context"
	"fmt"
	"sync"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/light"
	"github.com/ledgerd/ledgerd/p2p"
	"github.com/libp2p/go-libp2p/core/peer"
)

// peerLightProvider is a light.Provider over the node's libp2p peers, for
// state sync: it adapts p2p's LightBlockProvider (each light block served
// alike by several peers, self-consistent) to the light client's two
// calls. The light client asks for the header and commit of a height and
// for the set of that height or the next; one light block answers both,
// so the light blocks fetched are cached (at most lightCacheSize of them,
// the oldest height dropped first). It also remembers which peers served
// each height, to be blamed when the light client finds what they served
// is not the chain's.
type peerLightProvider struct {
	src p2p.LightBlockProvider

	mu    sync.Mutex
	cache map[uint64]*p2p.LightBlock
}

var _ light.Provider = (*peerLightProvider)(nil)

// lightCacheSize bounds the light blocks a peerLightProvider keeps: a
// verification from the genesis skips through a few dozen at most, and
// state sync then reads back the three around the snapshot height.
const lightCacheSize = 256

func newPeerLightProvider(src p2p.LightBlockProvider) *peerLightProvider {
	return &peerLightProvider{src: src, cache: make(map[uint64]*p2p.LightBlock)}
}

// lightBlock returns the light block of height h, from the cache or the
// peers.
func (p *peerLightProvider) lightBlock(ctx context.Context, h uint64) (*p2p.LightBlock, error) {
	p.mu.Lock()
	lb, ok := p.cache[h]
	p.mu.Unlock()
	if ok {
		return lb, nil
	}
	lb, err := p.src.LightBlock(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("light block %d from the peers: %w", h, err)
	}
	if lb == nil || lb.Header == nil || lb.Commit == nil || lb.Validators == nil || lb.Header.Height != h {
		return nil, light.Errorf("light block %d from the peers: incomplete or of another height", h)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.cache) >= lightCacheSize {
		oldest := h
		for k := range p.cache {
			oldest = min(oldest, k)
		}
		delete(p.cache, oldest)
	}
	p.cache[h] = lb
	return lb, nil
}

// SignedHeader returns the header of height h and the commit that
// decided it, as the peers serve them (light.Provider).
func (p *peerLightProvider) SignedHeader(ctx context.Context, h uint64) (*ledger.Header, *ledger.Commit, error) {
	lb, err := p.lightBlock(ctx, h)
	if err != nil {
		return nil, nil, err
	}
	return lb.Header, lb.Commit, nil
}

// ValidatorSet returns the validator set of height h as the peers serve
// it (light.Provider); the light client checks it against the hash a
// header it trusts names.
func (p *peerLightProvider) ValidatorSet(ctx context.Context, h uint64) (*ledger.ValidatorSet, error) {
	lb, err := p.lightBlock(ctx, h)
	if err != nil {
		return nil, err
	}
	return lb.Validators, nil
}

// servedBy returns the peers that served the light block of height h,
// if it was fetched.
func (p *peerLightProvider) servedBy(h uint64) []peer.ID {
	p.mu.Lock()
	defer p.mu.Unlock()
	if lb, ok := p.cache[h]; ok {
		return lb.Peers
	}
	return nil
}
