package p2p

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
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
// proposal or part from h to h+1, and at height h up to r+MaxRoundsAhead.
// Anything further ahead means this node is behind: block sync, not gossip,
// brings it forward.
const (
	MaxHeightsAhead = 1
	MaxRoundsAhead  = 100
)

var (
	errStale  = errors.New("height below the consensus window")
	errFuture = errors.New("height or round above the consensus window")
)

// checker holds what the validators need; it is safe for concurrent use.
type checker struct {
	chainID  string
	vals     *ledger.ValidatorSet
	position func() (uint64, uint32)
	// proposals remembers proposals whose signature verified, so the
	// parts of one proposal cost one signature check, not one each.
	proposals *hashCache
}

func newChecker(chainID string, vals *ledger.ValidatorSet, position func() (uint64, uint32)) *checker {
	return &checker{chainID: chainID, vals: vals, position: position, proposals: newHashCache(256)}
}

// check decodes data, which arrived on a topic or stream carrying allowed,
// and returns the verdict, the decoded message when it is accepted, and the
// reason otherwise. Signatures are verified before the height window is
// consulted, so a forged message is rejected (and its sender penalised)
// whatever height it claims. local skips the window: the node's own messages
// are always current.
func (c *checker) check(allowed kindSet, data []byte, local bool) (verdict, *message, error) {
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
		if !local {
			if err := verifyTxBatch(m.txs); err != nil {
				return reject, nil, err
			}
		}
		return accept, m, nil
	case kindVote:
		if _, err := m.vote.Verify(c.chainID, c.vals); err != nil {
			return reject, nil, err
		}
		if !local {
			if err := c.window(m.vote.Height, m.vote.Round, 1); err != nil {
				return ignore, nil, fmt.Errorf("vote %d/%d: %w", m.vote.Height, m.vote.Round, err)
			}
		}
		return accept, m, nil
	case kindProposal, kindPart:
		if err := c.verifyProposal(m.proposal); err != nil {
			return reject, nil, err
		}
		if m.kind == kindPart {
			if err := checkPart(m.proposal, m.part); err != nil {
				return reject, nil, err
			}
		}
		if !local {
			if err := c.window(m.proposal.Height, m.proposal.Round, 0); err != nil {
				return ignore, nil, fmt.Errorf("%s %d/%d: %w", m.kind, m.proposal.Height, m.proposal.Round, err)
			}
		}
		return accept, m, nil
	case kindEvidence:
		if err := m.evidence.Verify(c.chainID, c.vals); err != nil {
			return reject, nil, err
		}
		if h, _ := c.position(); !local && m.evidence.VoteA.Height > h+MaxHeightsAhead {
			return ignore, nil, fmt.Errorf("evidence at height %d: %w", m.evidence.VoteA.Height, errFuture)
		}
		return accept, m, nil
	}
	return reject, nil, fmt.Errorf("%s: %w", m.kind, errWrongKind)
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
// allows that many heights below the current one.
func (c *checker) window(height uint64, round uint32, below uint64) error {
	h, r := c.position()
	switch {
	case height+below < h:
		return errStale
	case height > h+MaxHeightsAhead:
		return errFuture
	case height == h && round > r && round-r > MaxRoundsAhead:
		return errFuture
	}
	return nil
}

func (c *checker) verifyProposal(p *ledger.Proposal) error {
	key := crypto.Sum(p.Encode())
	if c.proposals.has(key) {
		return nil
	}
	if err := p.Verify(c.chainID, c.vals); err != nil {
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
