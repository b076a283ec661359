package p2p

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// testSnapshot is a snapshot in the shape the state-sync format has: a
// manifest naming the SHA-256 of every chunk, so each chunk can be checked
// on arrival.
type testSnapshot struct {
	offer    SnapshotOffer
	manifest []byte
	chunks   [][]byte
}

// makeSnapshot builds a snapshot of height with n chunks of size bytes;
// salt makes snapshots of one height differ.
func makeSnapshot(height uint64, format uint32, n, size int, salt uint64) *testSnapshot {
	r := rand.New(rand.NewPCG(height, salt))
	s := &testSnapshot{}
	for range n {
		c := make([]byte, size)
		for i := 0; i < size; i += 8 {
			binary.LittleEndian.PutUint64(c[i:], r.Uint64())
		}
		sum := sha256.Sum256(c)
		s.chunks = append(s.chunks, c)
		s.manifest = append(s.manifest, sum[:]...)
	}
	s.offer = SnapshotOffer{Height: height, Format: format, Chunks: uint32(n), ManifestHash: sha256.Sum256(s.manifest)}
	return s
}

// verifier returns a Verify callback that checks each chunk against the
// manifest and records it, and the record.
func (s *testSnapshot) verifier() (func(uint32, []byte) error, *verified) {
	v := &verified{got: make(map[uint32]int)}
	return func(i uint32, c []byte) error {
		v.mu.Lock()
		defer v.mu.Unlock()
		v.calls++
		if int(i) >= len(s.chunks) {
			return fmt.Errorf("chunk %d of %d", i, len(s.chunks))
		}
		if sum := sha256.Sum256(c); !bytes.Equal(sum[:], s.manifest[32*i:32*i+32]) {
			v.bad++
			return fmt.Errorf("chunk %d does not match the manifest", i)
		}
		v.got[i]++
		return nil
	}, v
}

type verified struct {
	mu    sync.Mutex
	got   map[uint32]int // verified chunks and how often each was
	calls int
	bad   int
}

// snapHandler serves blocks like testHandler and snapshots besides.
type snapHandler struct {
	*testHandler
	snaps []*testSnapshot

	mu      sync.Mutex
	served  map[uint32]int // chunks served, by index
	corrupt func(index uint32, chunk []byte) []byte
	missing bool // answers "not found" for chunks
	onChunk func(n int)
}

func newSnapHandler(snaps ...*testSnapshot) *snapHandler {
	return &snapHandler{testHandler: newTestHandler(1, 0), snaps: snaps, served: make(map[uint32]int)}
}

func (h *snapHandler) Snapshots() []SnapshotOffer {
	var out []SnapshotOffer
	for _, s := range h.snaps {
		out = append(out, s.offer)
	}
	return out
}

func (h *snapHandler) snap(height uint64) *testSnapshot {
	for _, s := range h.snaps {
		if s.offer.Height == height {
			return s
		}
	}
	return nil
}

func (h *snapHandler) SnapshotManifest(height uint64) ([]byte, error) {
	if s := h.snap(height); s != nil {
		return s.manifest, nil
	}
	return nil, fmt.Errorf("manifest %d: %w", height, ErrNotFound)
}

func (h *snapHandler) SnapshotChunk(height uint64, index uint32) ([]byte, error) {
	s := h.snap(height)
	if s == nil || int(index) >= len(s.chunks) || h.missing {
		return nil, fmt.Errorf("chunk %d/%d: %w", height, index, ErrNotFound)
	}
	h.mu.Lock()
	h.served[index]++
	total := 0
	for _, k := range h.served {
		total += k
	}
	corrupt, hook := h.corrupt, h.onChunk
	h.mu.Unlock()
	if hook != nil {
		hook(total)
	}
	c := s.chunks[index]
	if corrupt != nil {
		c = corrupt(index, bytes.Clone(c))
	}
	return c, nil
}

func (h *snapHandler) servedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, k := range h.served {
		n += k
	}
	return n
}

// snapNet is a fresh node connected to serving nodes.
type snapNet struct {
	fresh   *Node
	servers []*Node
}

// startSnapNet starts a node per handler and a fresh node that bootstraps
// to all of them, and waits until it has admitted every one.
func startSnapNet(tb testing.TB, handlers []Handler, mut ...func(*Config)) *snapNet {
	tb.Helper()
	sn := &snapNet{}
	var addrs []string
	for _, h := range handlers {
		s := startNode(tb, h, testConfig(mut...))
		sn.servers = append(sn.servers, s)
		addrs = append(addrs, addrOf(tb, s, false))
	}
	sn.fresh = startNode(tb, newTestHandler(1, 0), testConfig(append(mut, func(c *Config) { c.BootstrapPeers = addrs })...))
	ctx := waitCtx(tb, 30*time.Second)
	for _, s := range sn.servers {
		waitAdmission(tb, ctx, sn.fresh, s.ID(), true)
	}
	return sn
}

func (sn *snapNet) ids(idx ...int) []peer.ID {
	var out []peer.ID
	for _, i := range idx {
		out = append(out, sn.servers[i].ID())
	}
	return out
}

// TestDiscoverSnapshotsGroupsOffers: three peers offer snapshots, a fourth
// serves none; the offers come back grouped by snapshot, each with the
// peers offering it, newest first.
func TestDiscoverSnapshotsGroupsOffers(t *testing.T) {
	a := makeSnapshot(100, 1, 4, 1024, 0)
	b := makeSnapshot(50, 1, 2, 1024, 0)
	d := makeSnapshot(100, 2, 3, 1024, 0)
	other := makeSnapshot(100, 1, 4, 1024, 7) // height and format of a, another manifest
	sn := startSnapNet(t, []Handler{
		newSnapHandler(a, b), newSnapHandler(d, a), newSnapHandler(a), newSnapHandler(other), newTestHandler(1, 0),
	})
	got := sn.fresh.DiscoverSnapshots(waitCtx(t, 30*time.Second), 10*time.Second)
	want := []PeerOffers{
		{a.offer, sn.ids(0, 1, 2)},
		{other.offer, sn.ids(3)},
		{d.offer, sn.ids(1)},
		{b.offer, sn.ids(0)},
	}
	for i := range want {
		slices.Sort(want[i].Peers)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d groups, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Offer != want[i].Offer || fmt.Sprint(got[i].Peers) != fmt.Sprint(want[i].Peers) {
			t.Fatalf("group %d: got %+v from %v, want %+v from %v", i, got[i].Offer, got[i].Peers, want[i].Offer, want[i].Peers)
		}
	}
	for _, s := range sn.servers {
		if sn.fresh.Penalty(s.ID()) != 0 || sn.fresh.IsBanned(s.ID()) {
			t.Fatalf("honest peer %s penalised", s.ID())
		}
	}
}

// TestCanonicalOffers: what a node sends of its source's list is valid,
// in wire order, one per (height, format), the newest MaxSnapshotOffers.
func TestCanonicalOffers(t *testing.T) {
	var in []SnapshotOffer
	for h := uint64(1); h <= 20; h++ {
		in = append(in, SnapshotOffer{Height: h, Format: 1, Chunks: 3})
	}
	in = append(in,
		SnapshotOffer{Height: 20, Format: 1, Chunks: 9},                     // repeated (height, format): the first stays
		SnapshotOffer{Height: 30, Format: 1, Chunks: 0},                     // no chunks
		SnapshotOffer{Height: 31, Format: 1, Chunks: MaxSnapshotChunks + 1}, // too many
		SnapshotOffer{Height: 0, Format: 1, Chunks: 1},                      // height 0
		SnapshotOffer{Height: 19, Format: 0, Chunks: 1},
	)
	got := canonicalOffers(in)
	if len(got) != MaxSnapshotOffers {
		t.Fatalf("%d offers, want %d", len(got), MaxSnapshotOffers)
	}
	if got[0] != (SnapshotOffer{Height: 20, Format: 1, Chunks: 3}) || got[1] != (SnapshotOffer{Height: 19, Format: 0, Chunks: 1}) {
		t.Fatalf("first offers %+v %+v", got[0], got[1])
	}
	a := snapshotResponse{kind: snapKindOffers, offers: got}
	back, err := decodeSnapshotResponse(a.encode())
	if err != nil || len(back.offers) != len(got) {
		t.Fatalf("canonical offers do not decode: %v", err)
	}
}

// fetchAll fetches the manifest and every chunk of s from peers, checking
// each chunk against the manifest.
func fetchAll(t *testing.T, n *Node, s *testSnapshot, peers []peer.ID, mut func(*FetchSpec)) (*verified, []FetchProgress, error) {
	t.Helper()
	ctx := waitCtx(t, 60*time.Second)
	m, err := n.FetchManifest(ctx, s.offer, peers)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m, s.manifest) {
		t.Fatal("fetched manifest differs")
	}
	verify, v := s.verifier()
	var progress []FetchProgress
	spec := FetchSpec{Height: s.offer.Height, Chunks: s.offer.Chunks, Peers: peers, Verify: verify,
		Progress:     func(p FetchProgress) { progress = append(progress, p) },
		RetryBackoff: 20 * time.Millisecond}
	if mut != nil {
		mut(&spec)
	}
	err = n.FetchChunks(ctx, spec)
	return v, progress, err
}

// checkComplete checks that every chunk not in skip verified exactly once.
func checkComplete(t *testing.T, s *testSnapshot, v *verified, skip func(uint32) bool) {
	t.Helper()
	for i := range s.offer.Chunks {
		want := 1
		if skip != nil && skip(i) {
			want = 0
		}
		if v.got[i] != want {
			t.Fatalf("chunk %d verified %d times, want %d", i, v.got[i], want)
		}
	}
}

// TestFetchChunksFromSeveralPeers fetches a snapshot from three peers in
// parallel: every chunk verifies once, every peer served some, and the
// progress reports count up to the total.
func TestFetchChunksFromSeveralPeers(t *testing.T) {
	s := makeSnapshot(100, 1, 48, 64<<10, 0)
	hs := []*snapHandler{newSnapHandler(s), newSnapHandler(s), newSnapHandler(s)}
	sn := startSnapNet(t, []Handler{hs[0], hs[1], hs[2]})
	v, progress, err := fetchAll(t, sn.fresh, s, sn.ids(0, 1, 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, s, v, nil)
	for i, h := range hs {
		if h.servedCount() == 0 {
			t.Fatalf("peer %d served no chunk", i)
		}
		t.Logf("peer %d served %d chunks", i, h.servedCount())
	}
	if len(progress) != 48 {
		t.Fatalf("%d progress reports, want 48", len(progress))
	}
	last := progress[len(progress)-1]
	if last.Done != 48 || last.Total != 48 || last.Fetched != 48 || last.Bytes != 48*64<<10 || last.ETA != 0 {
		t.Fatalf("last progress %+v", last)
	}
	for i, p := range progress {
		if p.Done != uint32(i+1) || p.BytesPerSecond <= 0 {
			t.Fatalf("progress %d: %+v", i, p)
		}
	}
}

// TestFetchChunksBansBadChunkPeer: one of three peers serves chunks that
// fail verification (a flipped byte; a chunk of an older snapshot); it is
// banned, its chunk is fetched again from another, and the fetch
// completes.
func TestFetchChunksBansBadChunkPeer(t *testing.T) {
	s := makeSnapshot(100, 1, 24, 16<<10, 0)
	old := makeSnapshot(90, 1, 24, 16<<10, 0)
	for name, corrupt := range map[string]func(uint32, []byte) []byte{
		"flipped byte": func(_ uint32, c []byte) []byte { c[len(c)/2] ^= 1; return c },
		"stale chunk":  func(i uint32, _ []byte) []byte { return bytes.Clone(old.chunks[i]) },
		"empty chunk":  func(uint32, []byte) []byte { return nil },
	} {
		t.Run(name, func(t *testing.T) {
			bad := newSnapHandler(s)
			bad.corrupt = corrupt
			sn := startSnapNet(t, []Handler{bad, newSnapHandler(s), newSnapHandler(s)})
			v, _, err := fetchAll(t, sn.fresh, s, sn.ids(0, 1, 2), nil)
			if err != nil {
				t.Fatal(err)
			}
			checkComplete(t, s, v, nil)
			if v.bad == 0 {
				t.Fatal("no bad chunk was verified; the test proves nothing")
			}
			if !sn.fresh.IsBanned(sn.servers[0].ID()) {
				t.Fatal("the peer that served a bad chunk is not banned")
			}
		})
	}
}

// TestFetchChunksFailsWhenEveryPeerIsBad: the only peer serves bad chunks:
// it is banned and the fetch fails cleanly, naming why.
func TestFetchChunksFailsWhenEveryPeerIsBad(t *testing.T) {
	s := makeSnapshot(100, 1, 8, 4<<10, 0)
	bad := newSnapHandler(s)
	bad.corrupt = func(_ uint32, c []byte) []byte { c[0] ^= 1; return c }
	sn := startSnapNet(t, []Handler{bad})
	_, _, err := fetchAll(t, sn.fresh, s, sn.ids(0), nil)
	if !errors.Is(err, ErrNoSnapshotPeers) {
		t.Fatalf("fetch from a bad peer only: %v, want ErrNoSnapshotPeers", err)
	}
	if !sn.fresh.IsBanned(sn.servers[0].ID()) {
		t.Fatal("bad peer not banned")
	}
}

// TestFetchChunksPenalisesMissingSnapshot: a peer that offered the
// snapshot answers "not found" for its chunks: it is charged
// PenaltyMissingSnapshot once, left out, and the others serve the rest.
func TestFetchChunksPenalisesMissingSnapshot(t *testing.T) {
	s := makeSnapshot(100, 1, 24, 8<<10, 0)
	liar := newSnapHandler(s)
	liar.missing = true
	sn := startSnapNet(t, []Handler{liar, newSnapHandler(s), newSnapHandler(s)})
	v, _, err := fetchAll(t, sn.fresh, s, sn.ids(0, 1, 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, s, v, nil)
	p := sn.fresh.Penalty(sn.servers[0].ID())
	if p < PenaltyMissingSnapshot*0.9 || p > PenaltyMissingSnapshot*2.1 {
		t.Fatalf("peer that lied about its snapshot has penalty %.0f, want about %.0f", p, PenaltyMissingSnapshot)
	}
}

// TestFetchChunksSkipsDoneChunks plays a restart: half the chunks were
// restored before; only the others are fetched and verified.
func TestFetchChunksSkipsDoneChunks(t *testing.T) {
	s := makeSnapshot(100, 1, 20, 8<<10, 0)
	hs := []*snapHandler{newSnapHandler(s), newSnapHandler(s)}
	sn := startSnapNet(t, []Handler{hs[0], hs[1]})
	even := func(i uint32) bool { return i%2 == 0 }
	v, progress, err := fetchAll(t, sn.fresh, s, sn.ids(0, 1), func(f *FetchSpec) { f.Done = even })
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, s, v, even)
	for _, h := range hs {
		h.mu.Lock()
		for i, k := range h.served {
			if even(i) && k > 0 {
				t.Fatalf("chunk %d, done before the restart, was fetched again", i)
			}
		}
		h.mu.Unlock()
	}
	if last := progress[len(progress)-1]; last.Done != 20 || last.Fetched != 10 {
		t.Fatalf("last progress %+v, want 20 done, 10 fetched", last)
	}
}

// TestFetchChunksPeerVanishes: one of two peers goes away after serving a
// few chunks; the fetch completes from the other.
func TestFetchChunksPeerVanishes(t *testing.T) {
	s := makeSnapshot(100, 1, 40, 16<<10, 0)
	leaving, staying := newSnapHandler(s), newSnapHandler(s)
	sn := startSnapNet(t, []Handler{leaving, staying})
	var once sync.Once
	leaving.onChunk = func(n int) {
		if n == 3 {
			once.Do(func() { go sn.servers[0].Close() })
		}
	}
	v, _, err := fetchAll(t, sn.fresh, s, sn.ids(0, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, s, v, nil)
	if leaving.servedCount() < 3 {
		t.Fatalf("the leaving peer served %d chunks before it went", leaving.servedCount())
	}
	if staying.servedCount() < 40-leaving.servedCount() {
		t.Fatalf("the remaining peer served %d chunks", staying.servedCount())
	}
	if sn.fresh.IsBanned(sn.servers[0].ID()) {
		t.Fatal("a peer that merely left was banned")
	}
}

// TestFetchManifestChecksHash: a peer serving a manifest that is not the
// offer's is banned and the manifest comes from another.
func TestFetchManifestChecksHash(t *testing.T) {
	s := makeSnapshot(100, 1, 4, 1024, 0)
	forged := &testSnapshot{offer: s.offer, manifest: bytes.Repeat([]byte{7}, len(s.manifest)), chunks: s.chunks}
	sn := startSnapNet(t, []Handler{newSnapHandler(forged), newSnapHandler(s)})
	ctx := waitCtx(t, 30*time.Second)
	// Ask the forger first, whatever the shuffle: try until it was asked.
	for !sn.fresh.IsBanned(sn.servers[0].ID()) {
		m, err := sn.fresh.FetchManifest(ctx, s.offer, sn.ids(0, 1))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m, s.manifest) {
			t.Fatal("a manifest that does not hash to the offer's was accepted")
		}
	}
	_, err := sn.fresh.FetchManifest(ctx, s.offer, sn.ids(0))
	if !errors.Is(err, ErrNoSnapshotPeers) {
		t.Fatalf("manifest from a banned peer only: %v", err)
	}
}

// rogueSnapshots makes a raw host admitted by n answer every snapshot
// request with answer(request), and returns it.
func rogueSnapshots(t *testing.T, ctx context.Context, n *Node, answer func(req snapshotRequest, w *bufio.Writer)) peer.ID {
	t.Helper()
	h := attacker(t, ctx, "127.0.0.1", n)
	h.SetStreamHandler(n.protocol(snapshotProtocol), func(s network.Stream) {
		defer s.Close()
		frame, err := readFrame(bufio.NewReaderSize(s, 32), snapshotRequestBytes)
		if err != nil {
			return
		}
		req, err := decodeSnapshotRequest(frame)
		if err != nil {
			return
		}
		w := bufio.NewWriter(s)
		answer(req, w)
		_ = w.Flush()
		_ = s.CloseWrite()
		// Hold the stream until the requester is done with it, so a
		// truncated frame is seen as cut short, not as a reset.
		_, _ = bufio.NewReader(s).ReadByte()
	})
	return h.ID()
}

// TestFetchChunksBansProtocolBreakers: peers that answer chunk requests
// with an oversized frame, a truncated one, another height or index
// (stale), or garbage are banned; the fetch completes from an honest peer.
func TestFetchChunksBansProtocolBreakers(t *testing.T) {
	s := makeSnapshot(100, 1, 16, 8<<10, 0)
	found := func(req snapshotRequest) *snapshotResponse {
		return &snapshotResponse{kind: req.kind, height: req.height, index: req.index, status: snapFound, body: s.chunks[req.index]}
	}
	for name, answer := range map[string]func(snapshotRequest, *bufio.Writer){
		"oversized frame": func(_ snapshotRequest, w *bufio.Writer) {
			_, _ = w.Write(binary.AppendUvarint(nil, maxChunkFrameBytes+1))
			_, _ = w.Write(make([]byte, 1024))
		},
		"truncated frame": func(req snapshotRequest, w *bufio.Writer) {
			f := found(req).encode()
			_, _ = w.Write(binary.AppendUvarint(nil, uint64(len(f))))
			_, _ = w.Write(f[:len(f)/2])
		},
		"stale height": func(req snapshotRequest, w *bufio.Writer) {
			a := found(req)
			a.height--
			_ = writeFrame(w, a.encode())
		},
		"another index": func(req snapshotRequest, w *bufio.Writer) {
			a := found(req)
			a.index = (a.index + 1) % 16
			a.body = s.chunks[a.index]
			_ = writeFrame(w, a.encode())
		},
		"garbage": func(_ snapshotRequest, w *bufio.Writer) {
			_ = writeFrame(w, []byte{snapshotVersion, 9, 9, 9})
		},
	} {
		t.Run(name, func(t *testing.T) {
			honest := newSnapHandler(s)
			sn := startSnapNet(t, []Handler{honest})
			ctx := waitCtx(t, 60*time.Second)
			rogue := rogueSnapshots(t, ctx, sn.fresh, answer)
			verify, v := s.verifier()
			// One request per peer at a time: the first two chunks go one
			// to each, so the rogue is asked at once.
			err := sn.fresh.FetchChunks(ctx, FetchSpec{Height: 100, Chunks: 16, Peers: []peer.ID{rogue, sn.servers[0].ID()},
				Verify: verify, RetryBackoff: 20 * time.Millisecond, PerPeer: 1})
			if err != nil {
				t.Fatal(err)
			}
			checkComplete(t, s, v, nil)
			if !sn.fresh.IsBanned(rogue) {
				t.Fatalf("a peer answering with a %s is not banned", name)
			}
			if v.bad != 0 {
				t.Fatalf("%d bad chunks reached Verify; the protocol checks should have stopped them", v.bad)
			}
		})
	}
}

// TestSnapshotServingIsBudgeted: a peer whose serving budget is spent is
// told busy, and the chunk is not even read.
func TestSnapshotServingIsBudgeted(t *testing.T) {
	s := makeSnapshot(100, 1, 2, 1<<10, 0)
	h := newSnapHandler(s)
	n := startNode(t, h, testConfig(func(c *Config) { c.ServeBytesPerSecond, c.ServeBurstBytes = 1, 3<<10+512 }))
	p := genPeerID(t)
	req := snapshotRequest{kind: snapKindChunk, height: 100, index: 1}
	for i := range 4 {
		a, err := n.answerSnapshot(p, req)
		if err != nil || a.status != snapFound {
			t.Fatalf("answer %d: status %d, %v", i, a.status, err)
		}
	}
	a, err := n.answerSnapshot(p, req)
	if err != nil || a.status != snapBusy {
		t.Fatalf("answer after the budget: status %d, %v; want busy", a.status, err)
	}
	if got := h.servedCount(); got != 4 {
		t.Fatalf("%d chunks read, want 4 (none for the busy answer)", got)
	}
	if a, _ := n.answerSnapshot(genPeerID(t), req); a.status != snapFound {
		t.Fatal("another peer's budget was spent too")
	}
}

// TestFetchChunksRidesOutBusyAnswers: a peer whose serving budget refills
// more slowly than chunks are asked answers busy part of the time; the
// fetch backs off, completes, and does not penalise it.
func TestFetchChunksRidesOutBusyAnswers(t *testing.T) {
	s := makeSnapshot(100, 1, 12, 4<<10, 0)
	sn := startSnapNet(t, []Handler{newSnapHandler(s)}, func(c *Config) { c.ServeBytesPerSecond, c.ServeBurstBytes = 64<<10, 8<<10 })
	v, progress, err := fetchAll(t, sn.fresh, s, sn.ids(0), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, s, v, nil)
	if last := progress[len(progress)-1]; last.Failed == 0 {
		t.Fatal("no request came back busy; the test proves nothing")
	}
	if sn.fresh.Penalty(sn.servers[0].ID()) != 0 || sn.fresh.IsBanned(sn.servers[0].ID()) {
		t.Fatal("a busy peer was penalised")
	}
}

// TestMalformedStateSyncRequestsArePenalised sends malformed snapshot and
// light-block requests; with the reject limit at malformedWeight, one gets
// the sender banned.
func TestMalformedStateSyncRequestsArePenalised(t *testing.T) {
	tc := getChain(t, 4, 1)
	for name, c := range map[string]struct {
		proto string
		req   []byte
	}{
		"snapshot unknown kind":   {snapshotProtocol, []byte{snapshotVersion, 7}},
		"snapshot chunk height 0": {snapshotProtocol, snapshotRequest{kind: snapKindChunk}.encode()},
		"snapshot index too big":  {snapshotProtocol, snapshotRequest{kind: snapKindChunk, height: 1, index: MaxSnapshotChunks}.encode()},
		"light block height 0":    {lightBlockProtocol, encodeLightBlockRequest(0)},
		"light block version":     {lightBlockProtocol, []byte{9, 0, 0, 0, 0, 0, 0, 0, 1}},
	} {
		t.Run(name, func(t *testing.T) {
			h := &lightHandler{snapHandler: newSnapHandler(makeSnapshot(1, 1, 1, 8, 0))}
			h.serving(tc, 4)
			a := startNode(t, h, testConfig(func(c *Config) { c.RejectLimit = malformedWeight }))
			ctx := waitCtx(t, 30*time.Second)
			raw := attacker(t, ctx, "127.0.0.1", a)
			s, err := raw.NewStream(ctx, a.ID(), a.protocol(c.proto))
			if err != nil {
				t.Fatal(err)
			}
			if err := writeFrame(s, c.req); err != nil {
				t.Fatal(err)
			}
			_ = s.CloseWrite()
			waitBanned(t, ctx, a, raw)
		})
	}
}

// BenchmarkFetchChunks measures chunk throughput over loopback: a 64 MiB
// snapshot in 1 MiB chunks from three peers, each chunk hashed and checked
// against the manifest as Verify would.
func BenchmarkFetchChunks(b *testing.B) {
	const chunks, size = 64, 1 << 20
	s := makeSnapshot(100, 1, chunks, size, 0)
	sn := startSnapNet(b, []Handler{newSnapHandler(s), newSnapHandler(s), newSnapHandler(s)}, func(c *Config) {
		c.ServeBytesPerSecond, c.ServeBurstBytes = 1<<30, 1<<30
	})
	peers := sn.ids(0, 1, 2)
	b.SetBytes(chunks * size)
	b.ResetTimer()
	for b.Loop() {
		verify := func(i uint32, c []byte) error {
			if sum := sha256.Sum256(c); !bytes.Equal(sum[:], s.manifest[32*i:32*i+32]) {
				return errors.New("bad chunk")
			}
			return nil
		}
		if err := sn.fresh.FetchChunks(context.Background(), FetchSpec{Height: 100, Chunks: chunks, Peers: peers, Verify: verify}); err != nil {
			b.Fatal(err)
		}
	}
}

// prioHandler serves snapshots and the priorities recorded with them.
type prioHandler struct {
	*snapHandler
	prios map[uint64][]byte
}

func (h *prioHandler) SnapshotPriorities(height uint64) ([]byte, error) {
	if b, ok := h.prios[height]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("priorities %d: %w", height, ErrNotFound)
}

// TestFetchSnapshotPriorities: every peer that has the priorities of a
// snapshot answers with its bytes, as served (one of them with other
// bytes: the caller, not p2p, decides who agrees); a peer without the
// capability, and one asked for a height it lacks, are left out; a peer
// that answers with a frame over the bound is banned.
func TestFetchSnapshotPriorities(t *testing.T) {
	s := makeSnapshot(100, 1, 2, 64, 0)
	good := bytes.Repeat([]byte{1, 2, 3}, 100)
	other := bytes.Repeat([]byte{9}, 300)
	handlers := []Handler{
		&prioHandler{snapHandler: newSnapHandler(s), prios: map[uint64][]byte{100: good}},
		&prioHandler{snapHandler: newSnapHandler(s), prios: map[uint64][]byte{100: good}},
		&prioHandler{snapHandler: newSnapHandler(s), prios: map[uint64][]byte{100: other}},
		newSnapHandler(s), // serves snapshots, not priorities
		&prioHandler{snapHandler: newSnapHandler(s), prios: map[uint64][]byte{90: good}},
	}
	sn := startSnapNet(t, handlers)
	ctx := waitCtx(t, 60*time.Second)
	rogue := rogueSnapshots(t, ctx, sn.fresh, func(req snapshotRequest, w *bufio.Writer) {
		a := &snapshotResponse{kind: req.kind, height: req.height, status: snapFound, body: make([]byte, MaxSnapshotPrioritiesBytes+1)}
		_ = writeFrame(w, a.encode())
	})
	got := sn.fresh.FetchSnapshotPriorities(ctx, 100, append(sn.ids(0, 1, 2, 3, 4), rogue))
	want := map[peer.ID][]byte{sn.servers[0].ID(): good, sn.servers[1].ID(): good, sn.servers[2].ID(): other}
	if len(got) != len(want) {
		t.Fatalf("%d answers, want %d: %v", len(got), len(want), got)
	}
	for i, a := range got {
		if i > 0 && got[i-1].Peer >= a.Peer {
			t.Fatal("answers not sorted by peer")
		}
		if !bytes.Equal(want[a.Peer], a.Priorities) {
			t.Fatalf("peer %s answered %d bytes, it serves %d", a.Peer, len(a.Priorities), len(want[a.Peer]))
		}
	}
	if !sn.fresh.IsBanned(rogue) {
		t.Fatal("a peer answering with priorities over the bound is not banned")
	}
	for _, i := range []int{3, 4} {
		if sn.fresh.IsBanned(sn.servers[i].ID()) {
			t.Fatalf("server %d, which has no priorities of the height, is banned", i)
		}
	}
}
