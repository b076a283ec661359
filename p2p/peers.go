package p2p

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// parsePeers parses full multiaddrs (ending in /p2p/<id>), merging
// addresses of the same peer and dropping self.
func parsePeers(addrs []string, self peer.ID) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	index := make(map[peer.ID]int)
	for _, s := range addrs {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w (want /ip4/HOST/tcp/PORT/p2p/ID)", s, err)
		}
		if ai.ID == self {
			continue
		}
		if i, ok := index[ai.ID]; ok {
			out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
			continue
		}
		index[ai.ID] = len(out)
		out = append(out, *ai)
	}
	return out, nil
}

// protocol is the chain's stream protocol ID for name.
func (n *Node) protocol(name string) protocol.ID {
	return protocol.ID("/ledgerd/" + n.cfg.ChainID + "/" + name + "/1")
}

// connected and disconnected are the network's notifications; they run on
// the network's goroutines and must not block.
// A new connection starts the handshake; the status exchange follows
// admission.
func (n *Node) connected(_ network.Network, c network.Conn) { n.onConnected(c) }

func (n *Node) disconnected(net network.Network, c network.Conn) {
	p := c.RemotePeer()
	if net.Connectedness(p) == network.Connected {
		return // another connection remains
	}
	n.heights.remove(p)
	n.admits.remove(p)
	if ch := n.wake[p]; ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// keepConnected keeps one persistent peer connected for the node's
// lifetime: it dials whenever the peer is not connected, backing off
// exponentially (with jitter) between failed dials, and sleeps until the
// peer disconnects.
func (n *Node) keepConnected(ai peer.AddrInfo, wake <-chan struct{}) {
	log := n.log.With("peer", ai.ID)
	backoff := n.cfg.ReconnectBackoffMin
	for {
		if n.host.Network().Connectedness(ai.ID) != network.Connected {
			// Our own backoff governs redials, so skip the swarm's.
			ctx, cancel := context.WithTimeout(network.WithForceDirectDial(n.ctx, "persistent peer"), dialTimeout)
			err := n.host.Connect(ctx, ai)
			cancel()
			if n.ctx.Err() != nil {
				return
			}
			if err != nil {
				wait := backoff/2 + rand.N(backoff/2+1)
				log.Debug("dial persistent peer failed", "err", err, "retry_in", wait)
				backoff = min(2*backoff, n.cfg.ReconnectBackoffMax)
				t := time.NewTimer(wait)
				select {
				case <-n.ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				continue
			}
			log.Info("connected to persistent peer")
			backoff = n.cfg.ReconnectBackoffMin
		}
		select {
		case <-n.ctx.Done():
			return
		case <-wake:
			log.Info("persistent peer disconnected; redialling")
		}
	}
}

// dialOnce dials a bootstrap peer at start.
func (n *Node) dialOnce(ai peer.AddrInfo) {
	ctx, cancel := context.WithTimeout(n.ctx, dialTimeout)
	defer cancel()
	if err := n.host.Connect(ctx, ai); err != nil {
		n.log.Warn("dial bootstrap peer failed", "peer", ai.ID, "err", err)
		return
	}
	n.log.Info("connected to bootstrap peer", "peer", ai.ID)
}

// Connect dials a peer given its full multiaddr (/…/p2p/<id>).
func (n *Node) Connect(ctx context.Context, addr string) error {
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return fmt.Errorf("peer address %q: %w", addr, err)
	}
	return n.host.Connect(ctx, *ai)
}
