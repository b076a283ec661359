package node

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
	"github.com/ledgerd/ledgerd/ledger/snapshot"
	"github.com/ledgerd/ledgerd/ledger/store"
	"github.com/ledgerd/ledgerd/light"
	"github.com/ledgerd/ledgerd/p2p"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestPickOffer(t *testing.T) {
	a, b, c := peer.ID("a"), peer.ID("b"), peer.ID("c")
	off := func(h uint64, format uint32, hash byte, peers ...peer.ID) p2p.PeerOffers {
		return p2p.PeerOffers{Offer: p2p.SnapshotOffer{Height: h, Format: format, Chunks: 1, ManifestHash: [32]byte{hash}}, Peers: peers}
	}
	offers := []p2p.PeerOffers{
		off(30, snapshot.Format+1, 1, a, b, c), // a format this node does not restore
		off(20, snapshot.Format, 2, a),
		off(20, snapshot.Format, 3, b, c),
		off(10, snapshot.Format, 4, a, b, c),
	}
	got, ok := pickOffer(offers, nil)
	if !ok || got.Offer.Height != 20 || got.Offer.ManifestHash[0] != 3 {
		t.Fatalf("picked %+v, want height 20 offered by two peers", got)
	}
	rejected := func(o p2p.SnapshotOffer) bool { return o.Height == 20 }
	if got, ok = pickOffer(offers, rejected); !ok || got.Offer.Height != 10 {
		t.Fatalf("with height 20 refused, picked %+v", got)
	}
	if _, ok = pickOffer(offers[:1], nil); ok {
		t.Fatal("picked an offer of an unknown format")
	}
}

// TestStateSyncerRestoresFromPeers runs three validators taking snapshots
// every 5 heights; node 1 serves corrupted chunks. Node 2's state syncer
// discovers both other nodes' offers, verifies header H+1 from the
// genesis over the peers, and fetches the chunks: fetched from node 1
// alone, the corrupted chunk gets node 1 banned and the restore fails;
// fetched from node 0, the restore into an empty store ends at the app
// hash of header H+1, which is node 0's state root at H.
func TestStateSyncerRestoresFromPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes")
	}
	w := startTestnetHooked(t, 3, func(c *Config) {
		c.StateSync.SnapshotInterval, c.StateSync.SnapshotKeepRecent = 5, 2
	}, func(i int, nd *Node) {
		if i == 1 {
			nd.corruptChunk = func(_ uint64, _ uint32, b []byte) []byte {
				b = slices.Clone(b)
				b[len(b)-1] ^= 1
				return b
			}
		}
	})
	w.waitHeight(12, time.Minute)
	n0, n1, n2 := w.nodes[0], w.nodes[1], w.nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	trust, err := light.NewTrust(n2.doc)
	if err != nil {
		t.Fatal(err)
	}
	s := newStateSyncer(n2.net, trust, n2.doc.Hash(), n2.log)
	offers, err := s.discover(ctx, 2, time.Minute, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	offer, ok := pickOffer(offers, nil)
	if !ok || !slices.Contains(offer.Peers, n0.net.ID()) || !slices.Contains(offer.Peers, n1.net.ID()) {
		t.Fatalf("picked %+v from %+v; want one both peers offer", offer, offers)
	}
	h := offer.Offer.Height
	w.waitHeight(h+2, time.Minute, 0, 1)
	vs, err := s.verify(ctx, offer)
	if err != nil {
		t.Fatalf("verify the snapshot of height %d: %v", h, err)
	}
	want, _ := n0.Store().Block(h + 1)
	if vs.next.Hash() != want.Header.Hash() {
		t.Fatalf("verified header %d %s, node 0 has %s", h+1, vs.next.Hash(), want.Header.Hash())
	}

	restore := func(peers ...peer.ID) (*store.Store, error) {
		dst := store.Open(kv.NewMem())
		rest, err := dst.BeginRestore(h, crypto.Hash(vs.next.AppHash), n2.doc.Hash())
		if err != nil {
			t.Fatal(err)
		}
		r, err := snapshot.NewRestorer(vs.manifest, vs.next.AppHash, rest)
		if err != nil {
			t.Fatal(err)
		}
		one := *vs
		one.offer.Peers = peers
		return dst, s.fetchChunks(ctx, &one, r)
	}
	if _, err := restore(n1.net.ID()); err == nil {
		t.Fatal("a restore from the peer serving corrupted chunks succeeded")
	}
	if !n2.net.IsBanned(n1.net.ID()) {
		t.Fatal("the peer serving corrupted chunks is not banned")
	}
	if _, err := restore(n0.net.ID()); err != nil {
		t.Fatalf("restore from node 0: %v", err)
	}
	if fp, ok := s.fetchProgress(); !ok || fp.Done != fp.Total {
		t.Fatalf("progress after the restore: %+v", fp)
	}

	// Step 4: the state at H from the genesis, the verified headers and
	// the sets they name, the priorities node 0 recorded with its snapshot
	// (cross-checked against header H+1's proposer), and block H fetched
	// from a peer; FinishRestore accepts it and the store is at H with
	// node 0's app hash.
	dst, err := restore(n0.net.ID())
	if err != nil {
		t.Fatal(err)
	}
	var sets [3]*ledger.ValidatorSet
	for i := range sets {
		// The peers' stated heights reach node 2 with their status
		// updates: a height just committed may not be asked for yet.
		for try := 0; ; try++ {
			if sets[i], err = s.prov.ValidatorSet(ctx, h+uint64(i)); err == nil {
				break
			}
			if try == 20 {
				t.Fatal(err)
			}
			w.waitHeight(n0.Store().Height()+1, time.Minute, 0)
		}
	}
	_, commitNext, err := s.prov.SignedHeader(ctx, h+1)
	if err != nil {
		t.Fatal(err)
	}
	// The priorities travel from the peers that offered the snapshot,
	// which agree (both are honest about them), and equal node 0's.
	prio, err := s.fetchPriorities(ctx, vs, sets[1])
	if err != nil {
		t.Fatal(err)
	}
	if own, ok := n0.snapshots.priorities(h); !ok || !own.Equal(prio) {
		t.Fatalf("fetched priorities of height %d differ from node 0's (recorded: %v)", h+1, ok)
	}
	if _, err := restoredState(n2.doc, vs, sets, prio.Next(sets[2]), commitNext); err == nil {
		t.Fatal("priorities of the wrong height passed the proposer cross-check")
	}
	st, err := restoredState(n2.doc, vs, sets, prio, commitNext)
	if err != nil {
		t.Fatal(err)
	}
	b, c, err := s.fetchBlock(ctx, n2.doc.ChainID, vs.header, sets[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.FinishRestore(st, b, c); err != nil {
		t.Fatalf("finish restore: %v", err)
	}
	wantApp, _ := n0.Store().AppHash(h)
	if dst.Height() != h || dst.Base() != h || dst.State().AppHash != wantApp {
		t.Fatalf("restored store at height %d base %d app hash %s; want height %d, app hash %s",
			dst.Height(), dst.Base(), dst.State().AppHash, h, wantApp)
	}
}

// TestAgreePriorities: the peers' answers are accepted only when every
// one that decodes against the verified set agrees; an answer that does
// not decode gets its peer penalised and is left out; none left fails.
func TestAgreePriorities(t *testing.T) {
	var vals []ledger.Validator
	for i := range 3 {
		vals = append(vals, ledger.Validator{PubKey: ledgertest.GoldenPub(byte(i * 40)), Power: uint64(10 + i)})
	}
	set, err := ledger.NewValidatorSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	p1 := ledger.GenesisPriorities(set).Next(set)
	p2 := p1.Next(set)
	a, b, c := peer.ID("a"), peer.ID("b"), peer.ID("c")
	var penalised []peer.ID
	penalize := func(p peer.ID, _ string) { penalised = append(penalised, p) }
	ans := func(p peer.ID, pr []byte) p2p.PeerPriorities { return p2p.PeerPriorities{Peer: p, Priorities: pr} }

	got, err := agreePriorities(10, []p2p.PeerPriorities{ans(a, p1.Encode()), ans(b, []byte{1, 2, 3}), ans(c, p1.Encode())}, set, penalize)
	if err != nil || !got.Equal(p1) {
		t.Fatalf("agreeing peers and one garbled answer: %v", err)
	}
	if !slices.Equal(penalised, []peer.ID{b}) {
		t.Fatalf("penalised %v, want the garbled answer's peer only", penalised)
	}
	if _, err := agreePriorities(10, []p2p.PeerPriorities{ans(a, p1.Encode()), ans(c, p2.Encode())}, set, penalize); !errors.Is(err, errPrioritiesDisagree) {
		t.Fatalf("peers that disagree: %v", err)
	}
	penalised = nil
	if _, err := agreePriorities(10, []p2p.PeerPriorities{ans(b, nil)}, set, penalize); err == nil || len(penalised) != 1 {
		t.Fatalf("no answer decodes: err %v, penalised %v", err, penalised)
	}
	if _, err := agreePriorities(10, nil, set, penalize); err == nil {
		t.Fatal("no answers accepted")
	}
}
