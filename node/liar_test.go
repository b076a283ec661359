package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/p2p"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// liarHeight is what the liar claims: far beyond any real chain.
const liarHeight = uint64(1) << 40

// startLiar starts a raw libp2p host that speaks the node's status and
// block-sync protocols on the wire: its status claims liarHeight, and it
// answers block-sync requests either at once with no blocks (an end frame
// that again claims liarHeight) or not at all (stall). It knows nothing
// of ledgerd beyond the frame layout.
func startLiar(t *testing.T, chainID string, stall bool) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		h.Close()
	})
	proto := func(name string) protocol.ID { return protocol.ID("/ledgerd/" + chainID + "/" + name + "/1") }
	frame := func(body []byte) []byte { return append(binary.AppendUvarint(nil, uint64(len(body))), body...) }
	readFrame := func(s network.Stream) error {
		r := bufio.NewReader(s)
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return err
		}
		_, err = io.CopyN(io.Discard, r, int64(n))
		return err
	}
	h.SetStreamHandler(proto("status"), func(s network.Stream) {
		if err := readFrame(s); err != nil {
			s.Reset()
			return
		}
		_, _ = s.Write(frame(binary.BigEndian.AppendUint64([]byte{1}, liarHeight)))
		_ = s.Close()
	})
	h.SetStreamHandler(proto("blocksync"), func(s network.Stream) {
		if err := readFrame(s); err != nil {
			s.Reset()
			return
		}
		if stall {
			<-ctx.Done()
			s.Reset()
			return
		}
		_, _ = s.Write(frame(binary.BigEndian.AppendUint64([]byte{1, 2}, liarHeight)))
		_ = s.Close()
	})
	return h
}

// TestLiarClaimingHeightDoesNotHaltConsensus connects a peer whose status
// claims height 2^40 to every validator of a running four-validator
// network. It answers block-sync requests with no blocks, or stalls them.
// The network must keep committing blocks all the while (no gap of
// maxGap), and every validator must penalise the liar and then disconnect
// and ban it.
func TestLiarClaimingHeightDoesNotHaltConsensus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	for _, tc := range []struct {
		name  string
		stall bool
	}{{"serves no blocks", false}, {"stalls", true}} {
		t.Run(tc.name, func(t *testing.T) { testLiar(t, tc.stall) })
	}
}

func testLiar(t *testing.T, stall bool) {
	const maxGap = 20 * time.Second // baseline: well under a second per block
	w := startTestnet(t, 4, func(c *Config) { c.Consensus.CreateEmptyBlocks = true })
	w.waitHeight(2, 60*time.Second)
	liar := startLiar(t, "node-test", stall)
	sub := w.nodes[0].Subscribe(256)
	defer sub.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	for _, nd := range w.nodes {
		if err := liar.Connect(ctx, peer.AddrInfo{ID: nd.net.ID(), Addrs: nd.net.Addrs()}); err != nil {
			t.Fatal(err)
		}
		if err := p2p.Handshake(ctx, liar, nd.net.ID(), nd.Genesis().ChainID, nd.Genesis().Hash()); err != nil {
			t.Fatal(err)
		}
	}
	start := w.nodes[0].Store().Height()
	lastBlock := time.Now()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		banned := 0
		for _, nd := range w.nodes {
			if nd.net.IsBanned(liar.ID()) && liar.Network().Connectedness(nd.net.ID()) != network.Connected {
				banned++
			}
		}
		committed := w.nodes[0].Store().Height() - start
		if banned == len(w.nodes) && committed >= 3 {
			break
		}
		select {
		case _, ok := <-sub.C():
			if !ok {
				t.Fatal("block subscription closed")
			}
			lastBlock = time.Now()
		case <-poll.C:
			if gap := time.Since(lastBlock); gap > maxGap {
				t.Fatalf("no block for %s while the liar is connected (height %d, %d blocks since it connected, %d of %d nodes banned it): consensus halted",
					gap.Round(time.Second), w.nodes[0].Store().Height(), committed, banned, len(w.nodes))
			}
		case <-ctx.Done():
			t.Fatalf("after %s: %d of %d nodes banned and disconnected the liar; %d blocks committed", 150*time.Second, banned, len(w.nodes), committed)
		}
	}
	for i, nd := range w.nodes {
		if s := nd.Status(); s.CatchingUp {
			t.Errorf("node %d reports catching up at height %d", i, s.Height)
		}
	}
	w.waitHeight(w.nodes[0].Store().Height()+2, 60*time.Second)
	w.checkSameChain()
}
