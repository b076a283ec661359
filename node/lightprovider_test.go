package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/light"
	"github.com/ledgerd/ledgerd/p2p"
)

// tamperedLights serves its source's light blocks with the header of one
// height altered (its app hash), as a lying peer would.
type tamperedLights struct {
	src    p2p.LightBlockProvider
	height uint64
}

func (t tamperedLights) LightBlock(ctx context.Context, h uint64) (*p2p.LightBlock, error) {
	lb, err := t.src.LightBlock(ctx, h)
	if err != nil || h != t.height {
		return lb, err
	}
	hdr := *lb.Header
	hdr.AppHash[0] ^= 1
	return &p2p.LightBlock{Header: &hdr, Commit: lb.Commit, Validators: lb.Validators, Peers: lb.Peers}, nil
}

// TestLightClientOverPeers verifies a header from the genesis with
// nothing but the light blocks a node's peers serve over libp2p, through
// the peerLightProvider; a header altered in transit is refused as a
// verification failure.
func TestLightClientOverPeers(t *testing.T) {
	w := startTestnet(t, 2, nil)
	w.waitHeight(12, time.Minute)
	n0, n1 := w.nodes[0], w.nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	trust, err := light.NewTrust(n1.doc)
	if err != nil {
		t.Fatal(err)
	}
	prov := newPeerLightProvider(n1.net.LightBlocks(1))
	hdr, fetched, err := trust.VerifyHeader(ctx, prov, 10)
	if err != nil {
		t.Fatalf("verify header 10 over the peers: %v", err)
	}
	want, err := n0.Store().Block(10)
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Hash() != want.Header.Hash() || fetched == 0 {
		t.Fatalf("verified header %s after %d fetches, node 0 stores %s", hdr.Hash(), fetched, want.Header.Hash())
	}
	if len(prov.servedBy(10)) == 0 {
		t.Fatal("no peer recorded for light block 10")
	}
	vs, err := prov.ValidatorSet(ctx, 11)
	if err != nil || vs.Hash() != want.Header.NextValidatorsHash {
		t.Fatalf("set of height 11: %v", err)
	}

	trust, _ = light.NewTrust(n1.doc)
	bad := newPeerLightProvider(tamperedLights{src: n1.net.LightBlocks(1), height: 10})
	if _, _, err := trust.VerifyHeader(ctx, bad, 10); !errors.Is(err, light.ErrVerification) {
		t.Fatalf("an altered header 10: %v, want a verification failure", err)
	}
}
