package p2p

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/libp2p/go-libp2p/core/peer"
)

// verdict is a validator's answer, mapped onto pubsub's ValidationResult.
type verdict int

const (
	accept verdict = iota
	// reject: the message is invalid whoever sent it; the sender is penalised.
	reject
	// ignore: the message may be honest but is of no use now; dropped quietly.
	ignore
)

func (v verdict) String() string {
	switch v {
	case accept:
		return "accept"
	case reject:
		return "reject"
	case ignore:
		return "ignore"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// Height and round windows for consensus messages. Relative to the
// consensus position (h, r), a vote is useful from height h-1 (late
// precommits for the last commit) to h+1 (peers that already moved on), a
// proposal or part from h to h+1. A height outside that window is ignored:
// an honest peer may be there, and when it is ahead this node is behind and
// block sync, not gossip, brings it forward.
//
// Rounds are bounded at every height the window admits: at most
// MaxRoundsAhead rounds above r at height h, and at most MaxRoundsAhead at
// h-1 and h+1 (a height is decided, or started, at round 0 and honest rounds
// advance only by timeouts, so no honest validator reaches round 100 of a
// neighbouring height while this node follows). Beyond that the message is
// rejected and its sender penalised: it can only be a flood.
const (
	MaxHeightsAhead = 1
	MaxRoundsAhead  = 100
)

var (
	errTxRate      = errors.New("peer exceeds its transaction rate")
	errStale       = errors.New("height below the consensus window")
	errFuture      = errors.New("height above the consensus window")
	errRoundWindow = errors.New("round above the consensus window")
)

// checker holds what the validators need; it is safe for concurrent use.
type checker struct {
	chainID  string
	vals     ValidatorSets
	position func() (uint64, uint32)
	// For transactions from a known peer (checkFrom): txRate bounds how
	// many one peer may send, txs (optional) checks them against the
	// node's state, and penalize charges the peer for those that can never
	// execute. Nil fields skip their check.
	txRate   *peerBuckets
	txs      TxChecker
	penalize func(p peer.ID, weight float64, reason string)
	// behind reports that peers are ahead of this node: its state is old,
	// and what looks like junk to it may not be, so nobody is charged.
	behind func() bool
	// proposals remembers proposals whose signature verified, so the
	// parts of one proposal cost one signature check, not one each.
	proposals *hashCache
}

// ValidatorSets gives the validator set of a height, or an error for a
// height whose set the node does not know (yet).
type ValidatorSets interface {
	ValidatorsAt(h uint64) (*ledger.ValidatorSet, error)
}

// errUnknownSet is a message of a height whose validator set this node
// does not know yet: it cannot be judged, so it is ignored, not charged.
var errUnknownSet = errors.New("validator set of that height not known here")

// setOf returns the validator set of height h, or errUnknownSet.
func (c *checker) setOf(h uint64) (*ledger.ValidatorSet, error) {
	vals, err := c.vals.ValidatorsAt(h)
	if err != nil || vals == nil {
		return nil, fmt.Errorf("height %d: %w", h, errUnknownSet)
	}
	return vals, nil
}

func newChecker(chainID string, vals ValidatorSets, position func() (uint64, uint32)) *checker {
	return &checker{chainID: chainID, vals: vals, position: position, proposals: newHashCache(256)}
}

// check decodes data, which arrived on a topic or stream carrying allowed,
// and returns the verdict, the decoded message when it is accepted, and the
// reason otherwise. Signatures are verified before the height window is
// consulted, so a forged message is rejected (and its sender penalised)
// whatever height it claims. local skips the window: the node's own messages
// are always current.
func (c *checker) check(allowed kindSet, data []byte, local bool) (verdict, *message, error) {
	return c.checkFrom(allowed, data, "", "", local)
}

// checkFrom is check for a message that peer from relayed and peer author
// signed (either empty when unknown). Transactions also pass from's rate
// limit, before their signatures are checked, and the state admission
// check (TxChecker) after: a message over the limit, or carrying a
// transaction that can never execute, is ignored (not relayed), and the
// latter costs its author PenaltyJunkTx per such transaction. Whether a
// transfer can execute depends on this node's state, which an honest
// relay's may trail or lead by a block, so it is not a reject (which would
// cost the relay); the author is who chose to publish it.
func (c *checker) checkFrom(allowed kindSet, data []byte, from, author peer.ID, local bool) (verdict, *message, error) {
	m, err := decodeMessage(data)
	if err != nil {
		return reject, nil, err
	}
	if !allowed.has(m.kind) {
		return reject, nil, fmt.Errorf("%s: %w", m.kind, errWrongKind)
	}
	switch m.kind {
	case kindTx:
		for _, tx := range m.txs {
			if err := tx.ValidateBasic(c.chainID); err != nil {
				return reject, nil, err
			}
		}
		// The node's own batches come from its mempool, which verified them.
		if local {
			return accept, m, nil
		}
		if from != "" && c.txRate != nil && !c.txRate.allow(from, len(m.txs)) {
			return ignore, nil, fmt.Errorf("%d transactions: %w", len(m.txs), errTxRate)
		}
		if err := verifyTxBatch(m.txs); err != nil {
			return reject, nil, err
		}
		if c.txs != nil {
			if err := c.admitTxs(author, m.txs); err != nil {
				return ignore, nil, err
			}
		}
		return accept, m, nil
	case kindVote:
		vals, err := c.setOf(m.vote.Height)
		if err != nil {
			return ignore, nil, err
		}
		if _, err := m.vote.Verify(c.chainID, vals); err != nil {
			return reject, nil, err
		}
		if !local {
			if err := c.window(m.vote.Height, m.vote.Round, 1); err != nil {
				return windowVerdict(err), nil, fmt.Errorf("vote %d/%d: %w", m.vote.Height, m.vote.Round, err)
			}
		}
		return accept, m, nil
	case kindProposal, kindPart:
		if err := c.verifyProposal(m.proposal); errors.Is(err, errUnknownSet) {
			return ignore, nil, err
		} else if err != nil {
			return reject, nil, err
		}
		if m.kind == kindPart {
			if err := checkPart(m.proposal, m.part); err != nil {
				return reject, nil, err
			}
		}
		if !local {
			if err := c.window(m.proposal.Height, m.proposal.Round, 0); err != nil {
				return windowVerdict(err), nil, fmt.Errorf("%s %d/%d: %w", m.kind, m.proposal.Height, m.proposal.Round, err)
			}
		}
		return accept, m, nil
	case kindEvidence:
		vals, err := c.setOf(m.evidence.VoteA.Height)
		if err != nil {
			return ignore, nil, err
		}
		if err := m.evidence.Verify(c.chainID, vals); err != nil {
			return reject, nil, err
		}
		if h, _ := c.position(); !local && m.evidence.VoteA.Height > h+MaxHeightsAhead {
			return ignore, nil, fmt.Errorf("evidence at height %d: %w", m.evidence.VoteA.Height, errFuture)
		}
		return accept, m, nil
	}
	return reject, nil, fmt.Errorf("%s: %w", m.kind, errWrongKind)
}

// admitTxs checks txs against the node's state. It returns an error when
// any of them can never execute (and charges author for each) or when all
// are stale.
func (c *checker) admitTxs(author peer.ID, txs []*ledger.Tx) error {
	var junk, stale int
	var first error
	for _, tx := range txs {
		err := c.txs.CheckTx(tx)
		switch {
		case err == nil:
		case errors.Is(err, ErrTxStale):
			stale++
		default:
			if junk++; first == nil {
				first = err
			}
		}
	}
	switch {
	case junk > 0:
		err := fmt.Errorf("%d of %d transactions can never execute: %w", junk, len(txs), first)
		if author != "" && c.penalize != nil && (c.behind == nil || !c.behind()) {
			c.penalize(author, float64(junk)*PenaltyJunkTx, err.Error())
		}
		return err
	case stale == len(txs):
		return fmt.Errorf("all %d transactions: %w", len(txs), ErrTxStale)
	}
	return nil
}

// verifyTxBatch batch-verifies the signatures of txs.
func verifyTxBatch(txs []*ledger.Tx) error {
	if len(txs) == 1 {
		if err := txs[0].VerifySig(); err != nil {
			return fmt.Errorf("tx: %w", err)
		}
		return nil
	}
	bv := crypto.NewBatchVerifier(len(txs))
	for _, tx := range txs {
		bv.Add(tx.From, tx.SignBytes(), tx.Sig)
	}
	if ok, _ := bv.Verify(); !ok {
		return fmt.Errorf("tx batch: %w", ledger.ErrBadSignature)
	}
	return nil
}

// window checks (height, round) against the consensus position; below
// allows that many heights below the current one. It returns errStale or
// errFuture for a height outside the window and errRoundWindow for a round
// beyond the window at a height inside it.
func (c *checker) window(height uint64, round uint32, below uint64) error {
	h, r := c.position()
	switch {
	case height+below < h:
		return errStale
	case height > h+MaxHeightsAhead:
		return errFuture
	case height == h && round > r && round-r > MaxRoundsAhead:
		return errRoundWindow
	case height != h && round > MaxRoundsAhead:
		return errRoundWindow
	}
	return nil
}

// windowVerdict maps a window error onto a verdict: a height outside the
// window may be honest (ignore), a round beyond it may not (reject).
func windowVerdict(err error) verdict {
	if errors.Is(err, errRoundWindow) {
		return reject
	}
	return ignore
}

func (c *checker) verifyProposal(p *ledger.Proposal) error {
	key := crypto.Sum(p.Encode())
	if c.proposals.has(key) {
		return nil
	}
	vals, err := c.setOf(p.Height)
	if err != nil {
		return err
	}
	if err := p.Verify(c.chainID, vals); err != nil {
		return err
	}
	c.proposals.add(key)
	return nil
}

// checkPart checks part against the signed proposal's part-set header with
// the same rules as ledger.PartSet.Add.
func checkPart(p *ledger.Proposal, part *ledger.Part) error {
	total := p.Parts.Total
	if part.Index >= total || uint64(part.Index) != part.Proof.Index || part.Proof.Total != uint64(total) {
		return fmt.Errorf("part %d: index or total does not match the proposal's %d parts", part.Index, total)
	}
	if part.Index+1 < total && len(part.Bytes) != ledger.BlockPartSize {
		return fmt.Errorf("part %d: %d bytes, every part but the last has %d", part.Index, len(part.Bytes), ledger.BlockPartSize)
	}
	if err := part.Proof.Verify(p.Parts.Root, part.Bytes); err != nil {
		return fmt.Errorf("part %d: %w", part.Index, err)
	}
	return nil
}

// hashCache is a bounded set of hashes: two generations of at most size
// entries each; when the young one fills, the old one is dropped.
type hashCache struct {
	mu         sync.Mutex
	size       int
	young, old map[crypto.Hash]struct{}
}

func newHashCache(size int) *hashCache {
	return &hashCache{size: size, young: make(map[crypto.Hash]struct{}, size)}
}

func (c *hashCache) has(h crypto.Hash) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.young[h]
	if !ok {
		_, ok = c.old[h]
	}
	return ok
}

// add inserts h and reports whether it was absent.
func (c *hashCache) add(h crypto.Hash) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.young[h]; ok {
		return false
	}
	if _, ok := c.old[h]; ok {
		return false
	}
	if len(c.young) >= c.size {
		c.old, c.young = c.young, make(map[crypto.Hash]struct{}, c.size)
	}
	c.young[h] = struct{}{}
	return true
}

// Per-peer transaction rate. Honest load is hundreds of transfers a second
// for the whole network, and a peer relays each at most once; the limit
// leaves an order of magnitude of room.
const (
	txRatePerPeer  = 4096.0 // transactions per second
	txBurstPerPeer = 8 * MaxTxsPerMessage
	maxRatePeers   = 4096
)
