package node

import (
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/store"
	"github.com/ledgerd/ledgerd/mempool"
	"github.com/ledgerd/ledgerd/p2p"
	"github.com/libp2p/go-libp2p/core/peer"
)

// inbound is a consensus message from the network for the driver.
type inbound struct {
	proposal *ledger.Proposal
	part     *ledger.Part
	height   uint64 // of the part
	round    uint32 // of the part
	vote     *ledger.Vote
	from     peer.ID // the peer that relayed it
}

// handler is the node as the network layer sees it (p2p.Handler). Its
// methods run on the network's goroutines; they only enqueue, or read
// what is safe to read concurrently.
type handler Node

var (
	_ p2p.Handler   = (*handler)(nil)
	_ p2p.TxChecker = (*handler)(nil)
)

func (h *handler) node() *Node { return (*Node)(h) }

// HandleTxs adds relayed transactions to the mempool. Each refusal that
// proves the transaction could never be valid on this chain
// (mempool.Code.PeerFault) is charged to the peer accountable for it;
// refusals that depend on this node's state or pool (duplicates, nonces,
// balances, a full pool) are not: the gossip validator already charged the
// gross cases, and a node that lags by a block must not punish honest
// peers for it.
func (h *handler) HandleTxs(from peer.ID, txs []*ledger.Tx) {
	n := h.node()
	added, junk := false, 0
	var first error
	for _, err := range n.pool.AddVerified(txs) {
		if err == nil {
			added = true
			continue
		}
		if junkTx(err) {
			if junk++; first == nil {
				first = err
			}
		}
	}
	if added {
		n.signalTx()
	}
	if junk > 0 {
		n.net.Penalize(from, float64(junk)*p2p.PenaltyJunkTx,
			fmt.Sprintf("%d of %d relayed transactions refused by the mempool: %v", junk, len(txs), first))
	}
}

// junkTx reports whether a mempool refusal shows the transaction could
// never have executed at this node's state (rather than arriving twice,
// late, or at a full pool).
func junkTx(err error) bool {
	c, ok := mempool.CodeOf(err)
	if !ok {
		return false
	}
	return c.PeerFault()
}

// junkNonceGap is how many nonce windows ahead of the committed nonce a
// transfer must be before the gossip validator calls it junk rather than
// early: a node whose state lags its peers' by a few blocks sees honest
// transfers a little beyond one window.
const junkNonceGap = 4

// CheckTx is the gossip validator's admission check (p2p.TxChecker):
// the checks of the mempool that need only the committed state. A nonce
// already used, or ahead of the window by less than junkNonceGap windows,
// is stale (no use here, no proof of misbehaviour), and so is a staking
// transaction this node does not admit (its sender may run a version that
// executes them); a nonce further ahead, or a cost the sender's committed
// balance cannot pay, is junk.
func (h *handler) CheckTx(tx *ledger.Tx) error {
	n := h.node()
	err := n.pool.Precheck(tx)
	c, ok := mempool.CodeOf(err)
	if !ok {
		return err
	}
	switch c {
	case mempool.NonceTooLow, mempool.StateUnavailable:
		return fmt.Errorf("%w: %v", p2p.ErrTxStale, err)
	case mempool.NonceGap:
		acct, aerr := n.store.Reader().Account(tx.Sender())
		if aerr != nil || tx.Nonce-acct.Nonce < junkNonceGap*n.pool.NonceWindow() {
			return fmt.Errorf("%w: %v", p2p.ErrTxStale, err)
		}
	}
	return err
}

func (h *handler) enqueue(in inbound) {
	select {
	case h.inbox <- in:
	default:
		h.log.Debug("consensus inbox full; dropping a message (catch-up recovers it)")
	}
}

func (h *handler) HandleProposal(from peer.ID, p *ledger.Proposal) {
	h.enqueue(inbound{proposal: p, from: from})
}

func (h *handler) HandleBlockPart(from peer.ID, height uint64, round uint32, part *ledger.Part) {
	h.enqueue(inbound{part: part, height: height, round: round, from: from})
}

func (h *handler) HandleVote(from peer.ID, v *ledger.Vote) { h.enqueue(inbound{vote: v, from: from}) }

func (h *handler) HandleEvidence(_ peer.ID, ev *ledger.Evidence) {
	n := h.node()
	if done, err := n.store.Reader().EvidenceCommitted(ev.Key()); err == nil && !done {
		n.evpool.Add(ev)
	}
}

func (h *handler) ConsensusPosition() (uint64, uint32) {
	return h.posHeight.Load(), h.posRound.Load()
}

func (h *handler) RoundMessages(height uint64, round uint32) p2p.RoundMessages {
	m := h.rounds.Get(height, round)
	return p2p.RoundMessages{Proposal: m.Proposal, Parts: m.Block, Votes: m.Votes}
}

func (h *handler) Block(height uint64) ([]byte, error) {
	b, err := h.store.BlockBytes(height)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("block %d: %w", height, p2p.ErrNotFound)
	}
	return b, err
}

func (h *handler) Commit(height uint64) (*ledger.Commit, error) {
	c, err := h.store.Commit(height)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("commit %d: %w", height, p2p.ErrNotFound)
	}
	return c, err
}

func (h *handler) LatestHeight() uint64 { return h.store.Height() }

var (
	_ p2p.SnapshotSource     = (*handler)(nil)
	_ p2p.SnapshotPriorities = (*handler)(nil)
	_ p2p.LightBlockSource   = (*handler)(nil)
	_ p2p.BlockBase          = (*handler)(nil)
)

// Snapshots lists the state snapshots this node serves, newest first
// (p2p.SnapshotSource).
func (h *handler) Snapshots() []p2p.SnapshotOffer {
	if h.snapshots == nil {
		return nil
	}
	return h.snapshots.offers()
}

// SnapshotManifest returns the encoded manifest of the snapshot at height
// (p2p.SnapshotSource); its SHA-256 is the offer's ManifestHash.
func (h *handler) SnapshotManifest(height uint64) ([]byte, error) {
	if h.snapshots == nil {
		return nil, fmt.Errorf("snapshot %d: %w", height, p2p.ErrNotFound)
	}
	return h.snapshots.manifest(height)
}

// SnapshotChunk returns chunk index of the snapshot at height
// (p2p.SnapshotSource).
func (h *handler) SnapshotChunk(height uint64, index uint32) ([]byte, error) {
	if h.snapshots == nil {
		return nil, fmt.Errorf("snapshot %d: %w", height, p2p.ErrNotFound)
	}
	b, err := h.snapshots.chunk(height, index)
	if err == nil && h.corruptChunk != nil {
		b = h.corruptChunk(height, index, b)
	}
	return b, err
}

// SnapshotPriorities returns the encoded proposer priorities of height
// height+1 this node recorded with its snapshot at height
// (p2p.SnapshotPriorities): a joining node needs them to propose in turn,
// and no header commits to them.
func (h *handler) SnapshotPriorities(height uint64) ([]byte, error) {
	if h.snapshots == nil {
		return nil, fmt.Errorf("snapshot %d: %w", height, p2p.ErrNotFound)
	}
	return h.snapshots.encodedPriorities(height)
}

// LightBlock returns the header of the block at height, the commit stored
// with it and the validator set of that height (p2p.LightBlockSource),
// for heights from the store's base to its latest.
func (h *handler) LightBlock(height uint64) (*p2p.LightBlock, error) {
	st := h.store
	if height == 0 || height < st.Base() || height > st.Height() {
		return nil, fmt.Errorf("light block %d: %w (the node holds heights %d to %d)", height, p2p.ErrNotFound, st.Base(), st.Height())
	}
	b, err := st.Block(height)
	if err != nil {
		return nil, notFound(fmt.Sprintf("light block %d", height), err)
	}
	c, err := st.Commit(height)
	if err != nil {
		return nil, notFound(fmt.Sprintf("light block %d", height), err)
	}
	vals, err := st.ValidatorsAt(height)
	if err != nil {
		return nil, notFound(fmt.Sprintf("light block %d", height), err)
	}
	return &p2p.LightBlock{Header: &b.Header, Commit: c, Validators: vals}, nil
}

// notFound wraps err with what, mapping the store's ErrNotFound to p2p's.
func notFound(what string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s: %w: %w", what, p2p.ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// BaseHeight is the lowest height whose block and commit this node serves
// (p2p.BlockBase): the snapshot height on a node restored by state sync.
func (h *handler) BaseHeight() uint64 { return h.store.Base() }
