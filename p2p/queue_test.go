package p2p

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// slowLink is a TCP proxy on loopback that forwards to target, throttling
// the direction towards target to rate bytes per second: a slow peer, as
// seen by the dialler.
type slowLink struct {
	ln     net.Listener
	target string
	rate   int
	wg     sync.WaitGroup
}

func startSlowLink(t *testing.T, target string, rate int) *slowLink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &slowLink{ln: ln, target: target, rate: rate}
	l.wg.Add(1)
	go l.accept()
	t.Cleanup(func() {
		ln.Close()
		l.wg.Wait()
	})
	return l
}

func (l *slowLink) accept() {
	defer l.wg.Done()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for {
		in, err := l.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", l.target)
		if err != nil {
			in.Close()
			continue
		}
		conns = append(conns, in, out)
		l.wg.Add(2)
		go func() { defer l.wg.Done(); l.throttledCopy(out, in); out.Close() }()
		go func() { defer l.wg.Done(); _, _ = io.Copy(in, out); in.Close() }()
	}
}

// throttledCopy copies src to dst at most l.rate bytes a second, in
// slices released by a 10ms ticker.
func (l *slowLink) throttledCopy(dst io.Writer, src io.Reader) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	per := max(1, l.rate/100)
	buf := make([]byte, per)
	for range tick.C {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestTxFloodDoesNotDropConsensusMessages: node a reaches node b over a
// slow link (1 MiB/s) and publishes a flood of full transaction batches
// (far more than the link carries, so a's outbound queue to b overflows)
// with votes among them. Transactions may be dropped; not one vote may be:
// b must receive every vote.
func TestTxFloodDoesNotDropConsensusMessages(t *testing.T) {
	const (
		H, R    = 5, 0
		votes   = 300
		batches = 240
	)
	_, keys := testVals(t)
	tcpOnly := func(c *Config) { c.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"} }
	hb := newTestHandler(H, R)
	b := startNode(t, hb, testConfig(tcpOnly))
	var target string
	for _, a := range b.Addrs() {
		if ip, err := a.ValueForProtocol(4); err == nil { // P_IP4
			port, _ := a.ValueForProtocol(6) // P_TCP
			target = net.JoinHostPort(ip, port)
		}
	}
	link := startSlowLink(t, target, 1<<20)
	via := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", link.ln.Addr().(*net.TCPAddr).Port, b.ID())
	a := startNode(t, newTestHandler(H, R), testConfig(tcpOnly, func(c *Config) { c.PersistentPeers = []string{via} }))
	ctx := waitCtx(t, 60*time.Second)
	if err := a.WaitMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}

	// Distinct full batches cut from one pool of signed transfers.
	acct := getChain(t, 0, 0).c.Accounts
	pool := make([]*ledger.Tx, MaxTxsPerMessage+batches)
	for i := range pool {
		pool[i] = ledgertest.Transfer(acct[0], acct[1].PubKey().Address(), 1, 1, uint64(i))
	}
	sent := make(map[crypto.Hash]bool, votes)
	for i := range batches {
		if err := a.PublishTxs(ctx, pool[i:i+MaxTxsPerMessage]); err != nil {
			t.Fatal(err)
		}
		for j := range votes / batches * 2 {
			k := i*(votes/batches*2) + j
			if k >= votes {
				break
			}
			v := signedVote(keys, k%4, ledger.Prevote, H, uint32(k/4)%MaxRoundsAhead, hashOf(fmt.Sprint("vote", k)))
			sent[crypto.Sum(v.Encode())] = true
			if err := a.PublishVote(ctx, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	for len(sent) < votes {
		k := len(sent)
		v := signedVote(keys, k%4, ledger.Prevote, H, uint32(k/4)%MaxRoundsAhead, hashOf(fmt.Sprint("vote", k)))
		sent[crypto.Sum(v.Encode())] = true
		if err := a.PublishVote(ctx, v); err != nil {
			t.Fatal(err)
		}
	}

	got := 0
	for got < votes {
		select {
		case v := <-hb.votes:
			if sent[crypto.Sum(v.Encode())] {
				delete(sent, crypto.Sum(v.Encode()))
				got++
			}
		case <-ctx.Done():
			t.Fatalf("b received %d of %d votes sent during the transaction flood (a dropped %d RPCs to slow peers)",
				got, votes, droppedRPCs(a))
		}
	}
	t.Logf("all %d votes arrived; %d RPCs (transactions) dropped on the way", votes, droppedRPCs(a))
}

// droppedRPCs is how many RPCs n's routers dropped because a peer's
// outbound queue was full.
func droppedRPCs(n *Node) int64 {
	var total int64
	for _, m := range n.mesh {
		total += m.droppedRPCs.Load()
	}
	return total
}
