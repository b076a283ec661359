package node

import (
	"fmt"
	"log/slog"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/consensus/catchup"
	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/libp2p/go-libp2p/core/peer"
)

// assembler puts proposals' blocks together from the parts gossip brings,
// and hands each complete proposal with its block to the machine. Which
// proposals get one of its bounded slots is decided in proposals.go.
type assembler struct {
	machine  func() *consensus.Machine // read-only: position, proposers, votes held
	rounds   *catchup.Cache[[]*ledger.Part]
	log      *slog.Logger
	deliver  func(ev consensus.Event, from peer.ID)
	penalize func(from peer.ID, reason string)
	parts    map[partsKey]*partsEntry
}

type partsKey struct {
	height uint64
	round  uint32
	id     crypto.Hash
}

type partsEntry struct {
	proposal *ledger.Proposal
	set      *ledger.PartSet
	parts    []*ledger.Part
	done     bool
}

// maxPartsEntries bounds proposals being assembled at once (see
// admitProposal for who gets a slot).
const maxPartsEntries = 64

func newAssembler(machine func() *consensus.Machine, rounds *catchup.Cache[[]*ledger.Part], log *slog.Logger,
	deliver func(consensus.Event, peer.ID), penalize func(peer.ID, string)) *assembler {
	return &assembler{machine: machine, rounds: rounds, log: log, deliver: deliver, penalize: penalize,
		parts: make(map[partsKey]*partsEntry)}
}

// reset drops every proposal being assembled (a new machine starts).
func (a *assembler) reset() { clear(a.parts) }

// decided drops the proposals of heights up to h.
func (a *assembler) decided(h uint64) {
	for k := range a.parts {
		if k.height <= h {
			delete(a.parts, k)
		}
	}
}

// addProposal starts assembling the block of a signed proposal; it reports
// whether the proposal took a slot.
func (a *assembler) addProposal(p *ledger.Proposal) bool {
	m := a.machine()
	if p.Height != m.Height() && p.Height != m.Height()+1 {
		return false
	}
	k := partsKey{p.Height, p.Round, p.BlockID}
	if _, ok := a.parts[k]; ok || !a.admitProposal(p, k) {
		return false
	}
	set, err := ledger.NewPartSet(p.Parts)
	if err != nil {
		return false
	}
	a.parts[k] = &partsEntry{proposal: p, set: set}
	return true
}

// addPart adds a block part to the proposal it belongs to and, once the
// block is complete and matches the proposal, hands both to the machine.
func (a *assembler) addPart(h uint64, r uint32, part *ledger.Part, from peer.ID) {
	for k, e := range a.parts {
		if k.height != h || k.round != r || e.done {
			continue
		}
		added, err := e.set.Add(part)
		if err != nil || !added {
			continue
		}
		e.parts = append(e.parts, part)
		if !e.set.Complete() {
			return
		}
		e.done = true
		b, err := e.set.Block()
		if err != nil || b.Hash() != e.proposal.BlockID {
			// The proposer signed a part set that does not decode to its
			// block; whoever relayed the last part relayed that proposal.
			a.log.Warn("proposal's parts do not make its block", "height", h, "round", r, "err", err)
			a.penalize(from, fmt.Sprintf("parts of proposal %d/%d do not make its block", h, r))
			delete(a.parts, k)
			return
		}
		if h == a.machine().Height() {
			a.rounds.AddProposal(e.proposal, e.parts)
		}
		a.deliver(consensus.EventProposal{Proposal: e.proposal, Block: b}, from)
		return
	}
}
