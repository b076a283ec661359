package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The double-sign check and the store check: what the node verifies
// before it lets the core sign (the core's Gate).

// ErrOwnSignatureAhead is wrapped by the error that stops a validator whose
// signature the double-sign check found above its signing state.
var ErrOwnSignatureAhead = errors.New("this validator's signature is in a commit newer than its signing state")

// checkDoubleSign is the double-sign check (consensus.double_sign_check_height):
// it runs before the machine starts, so before anything is signed, at start
// and after every block sync, over the latest stored heights, including the
// ones block sync just fetched from peers. It looks in each height's stored
// commit and in the last commit carried by the block above it. A signature
// of this validator at a height its signing state does not cover (above its
// last signed height) means that state is not the whole truth: it was
// deleted or restored from an old copy, or another process signs with the
// key. Signing could then contradict a vote already cast, so the node stops.
// Heights at or below the last signed one are covered by the signer's own
// guard, so an ordinary restart never trips the check.
func (d *driver) checkDoubleSign() error {
	n := d.n
	depth := n.cfg.Consensus.DoubleSignCheckHeight
	if n.signer == nil || depth == 0 {
		return nil
	}
	signed := n.signer.LastSigned().Height
	top := n.store.Height()
	// found reports whether c carries our signature, at our index in the
	// set of c's height (sets change).
	found := func(c *ledger.Commit) bool {
		if c == nil || c.Height <= signed {
			return false
		}
		vals, err := n.store.ValidatorsAt(c.Height)
		if err != nil {
			return false
		}
		idx, ok := vals.ByAddress(n.self)
		if !ok {
			return false
		}
		for _, s := range c.Sigs {
			if s.ValidatorIndex == uint32(idx) {
				return true
			}
		}
		return false
	}
	for h := top; h >= 1 && top-h < depth && h > signed; h-- {
		c, err := n.store.Commit(h)
		if err != nil {
			return fmt.Errorf("double-sign check: commit %d: %w", h, err)
		}
		at := h
		if !found(c) {
			b, err := n.store.Block(h)
			if err != nil {
				return fmt.Errorf("double-sign check: block %d: %w", h, err)
			}
			if !found(b.LastCommit) {
				continue
			}
			at = h - 1
		}
		return fmt.Errorf("%w: it signed the commit of height %d, but its signing state %s says it last signed at height %d. "+
			"The state was deleted or restored from an old copy, or another node signs with this key; signing now could "+
			"double-sign. Make sure no other node uses the key, restore the newest signing state if you have it, or wait "+
			"until the chain is more than %d heights past %d and start again (consensus.double_sign_check_height = 0 skips "+
			"the check; only for a key you know signs nowhere else)",
			ErrOwnSignatureAhead, at, n.cfg.ValidatorStateFile(), signed, depth, at)
	}
	return nil
}

// peerWait bounds how long a validator that runs the double-sign check
// waits, after it starts, to hear its peers' heights before it signs.
const peerWait = 5 * time.Second

// MaySign implements the core's Gate: whether the node may sign a message
// of height h now. With
// the double-sign check on, it must not sign before the check has run over
// every height it has learned of: not while its peers report a committed
// height above both the stored one (checked) and the last signed one plus
// one (block sync fetches and checks it first). A height counts once two
// peers reach it (or the only peer does), so one lying peer cannot hold the
// validator's votes back; and, just after start, not
// before it has heard from a peer (or peerWait has passed, or it has none).
func (d *driver) MaySign(h uint64) bool {
	n := d.n
	if n.cfg.Consensus.DoubleSignCheckHeight == 0 {
		return true
	}
	heights := n.net.PeerHeights()
	if len(heights) == 0 {
		if len(n.cfg.P2P.PersistentPeers)+len(n.cfg.P2P.BootstrapPeers) > 0 && n.clock.Now().Before(d.started.Add(peerWait)) {
			n.log.Debug("not signing before hearing the peers' heights", "height", h)
			return false
		}
		return true
	}
	learned := agreedHeight(heights)
	if known := max(n.store.Height(), n.signer.LastSigned().Height) + 1; learned > known {
		n.log.Debug("not signing: peers hold heights not yet fetched and checked", "height", h, "peer_height", learned)
		return false
	}
	return true
}

// agreedHeight is the highest height that at least two of the peers reach
// (the only peer's height when there is one).
func agreedHeight(heights map[peer.ID]uint64) uint64 {
	var first, second uint64
	for _, h := range heights {
		switch {
		case h > first:
			first, second = h, first
		case h > second:
			second = h
		}
	}
	if len(heights) == 1 {
		return first
	}
	return second
}

// checkStore compares the store with the signing state after the WAL
// replay. A validator signs at height h only once it has decided h-1, so a
// last signature above the stored height plus one means committed blocks
// are missing from the store: its database lost synced writes (a disk that
// lies about fsync, a bad sector) and the WAL did not hold them. The
// signer refuses to sign at those heights again, as it must, so only the
// blocks with their commits can bring the node back: it fetches them from
// peers by block sync (Status reports the loss until then), and without
// peers to fetch from it stops with an error saying what to do.
func (d *driver) checkStore() error {
	n := d.n
	if n.signer == nil {
		return nil
	}
	ls := n.signer.LastSigned()
	stored := n.store.Height()
	if ls.Height <= stored+1 {
		return nil
	}
	first, last := stored+1, ls.Height-1
	lost := fmt.Sprintf("blocks %d to %d were", first, last)
	if first == last {
		lost = fmt.Sprintf("block %d was", first)
	}
	if len(n.cfg.P2P.PersistentPeers)+len(n.cfg.P2P.BootstrapPeers) == 0 {
		return fmt.Errorf("the ledger store %s is at height %d, but this validator signed at height %d: "+
			"%s committed and then lost from the store (its disk lost synced writes), "+
			"and the write-ahead log does not hold them; the signer will not sign at those heights again, so the node "+
			"cannot go on. Restore %s from a backup or copy it from a node of this chain, or configure peers that "+
			"hold those blocks (p2p.persistent_peers) so the node fetches them; do not delete the signing state %s",
			n.cfg.LedgerDBDir(), stored, ls.Height, lost, n.cfg.LedgerDBDir(), n.cfg.ValidatorStateFile())
	}
	d.lostUntil = last
	msg := fmt.Sprintf("%s committed but missing from the store (this validator signed at height %d): "+
		"waiting to fetch from peers", lost, ls.Height)
	n.lostBlocks.Store(&msg)
	n.log.Error("committed blocks missing from the store; fetching them from peers", "store_height", stored,
		"signed_height", ls.Height, "first", first, "last", last)
	return nil
}
