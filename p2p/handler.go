package p2p

import (
	"errors"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Handler is what the node driver gives the network layer: where checked
// inbound messages go, where the consensus position is read, and what it
// serves to peers. See the package documentation for the calling contract:
// methods are called concurrently, must return quickly, and may see the same
// value twice.
//
// The from argument of the Handle methods names the peer accountable for
// the message: for gossip its author (the peer whose pubsub signature it
// carries, whoever relayed it), for a catch-up answer the peer that
// answered. What the node finds wrong with a message only after the
// validator passed it is charged to from with Node.Penalize.
//
// A Handler may also implement optional capabilities, each checked once by
// New: TxChecker (judging relayed transactions against state), BlockBase
// (a block store that starts above height 1), SnapshotSource (serving
// state snapshots) and LightBlockSource (serving light blocks).
type Handler interface {
	// HandleTxs receives transactions whose chain ID, basic fields and
	// signature were checked (the mempool need not verify it again; it
	// still checks nonce and balance against its state).
	HandleTxs(from peer.ID, txs []*ledger.Tx)
	// HandleProposal receives a proposal signed by a member of the
	// validator set, within the height and round window. Whether the signer
	// is the round's proposer is for consensus to judge.
	HandleProposal(from peer.ID, p *ledger.Proposal)
	// HandleBlockPart receives a part of the block of a proposal for
	// (height, round) whose Merkle proof verified against that signed
	// proposal's part-set header. The proposal itself is delivered through
	// HandleProposal first, once, even if its own message was lost.
	HandleBlockPart(from peer.ID, height uint64, round uint32, part *ledger.Part)
	// HandleVote receives a vote signed by a member of the validator set,
	// within the height and round window.
	HandleVote(from peer.ID, v *ledger.Vote)
	// HandleEvidence receives evidence that verified against the validator
	// set (two conflicting votes of one validator).
	HandleEvidence(from peer.ID, ev *ledger.Evidence)

	// ConsensusPosition is the height being decided (the latest committed
	// height plus one) and the current round. The validators call it for
	// every consensus message, so it must not block (an atomic load).
	ConsensusPosition() (height uint64, round uint32)
	// RoundMessages returns what the node holds for height from round on,
	// to answer a peer's catch-up request: the proposal of that round with
	// the parts it has, and its votes for height at rounds >= round. For a
	// height it has already committed, the precommits of the stored commit
	// (ledger.Commit.Votes) are the useful answer: they let a peer that
	// missed them decide too. The node sends at most one proposal,
	// ledger.MaxBlockParts parts and MaxCatchupVotes votes of the answer,
	// each checked by the requester like gossip. It must not block for long.
	RoundMessages(height uint64, round uint32) RoundMessages

	// Block returns the canonical encoding of the committed block at
	// height, or an error wrapping ErrNotFound.
	Block(height uint64) ([]byte, error)
	// Commit returns the commit stored with the block at height.
	Commit(height uint64) (*ledger.Commit, error)
	// LatestHeight is the height of the latest committed block (0 before
	// the first). It must not block.
	LatestHeight() uint64
}

// RoundMessages is a node's view of one height from one round on; see
// Handler.RoundMessages. Any field may be empty.
type RoundMessages struct {
	Proposal *ledger.Proposal
	Parts    []*ledger.Part
	Votes    []*ledger.Vote
}

// TxChecker is an optional capability of a Handler: the gossip validator
// of the transaction topic asks it about every relayed transaction, so that
// transfers that can never execute are neither relayed nor rewarded.
type TxChecker interface {
	// CheckTx reports whether tx, whose signature verified, could execute
	// at the handler's latest state: nil if it may; an error wrapping
	// ErrTxStale if it is out of date but no sign of misbehaviour (its
	// nonce is already used); any other error if it can never execute (an
	// unfunded sender, a nonce beyond the admission window). It is called
	// from several goroutines at once and must not block for long.
	CheckTx(tx *ledger.Tx) error
}

// ErrTxStale is what TxChecker.CheckTx wraps for a transaction that is
// merely out of date.
var ErrTxStale = errors.New("transaction is stale")

// ErrNotFound is what Handler.Block and Handler.Commit wrap for a height
// they do not hold, and the state-sync sources for a snapshot, chunk or
// light block they do not hold.
var ErrNotFound = errors.New("not found")
