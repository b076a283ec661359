package sim

import (
	"fmt"
	"time"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// Invariant names a property every run checks.
type Invariant uint8

// The invariants.
const (
	// InvAgreement: no two honest nodes decide different blocks at a height.
	InvAgreement Invariant = iota
	// InvValidity: every decided block passes ledger validation on the
	// deciding node's state.
	InvValidity
	// InvNoDoubleSign: no honest validator signs two different votes (or
	// proposals) for the same height, round and step.
	InvNoDoubleSign
	// InvCommit: every decision carries a commit that verifies: +2/3 of
	// the voting power signed precommits for the block.
	InvCommit
	// InvLiveness: after the heal, every honest node decides
	// LivenessHeights new heights within LivenessBound.
	InvLiveness
	// InvEvidence: every equivocation an honest node detected is in a
	// committed block by the end of the run.
	InvEvidence
	// InvRestart: a restarted machine replays to the state it crashed in
	// (when no WAL record was lost), and outside replay its signer never
	// refuses what it asks to sign (except, after its disk lost writes,
	// at the heights and rounds it had signed before).
	InvRestart
	// InvEquivocation: an honest machine that accepted two conflicting
	// votes of one validator reported the evidence (the oracle's check).
	InvEquivocation
	// InvLocking: an honest machine precommits a value only with a polka
	// for it, and prevotes against its lock only for a proposal whose
	// proof-of-lock round is at or above the lock's, with that polka (the
	// oracle's check, with its own tally).
	InvLocking
	// InvOwnOrder: the driver feeds every own vote back to the machine
	// after the input that caused it, before any later input, in the
	// order it signed them.
	InvOwnOrder
	// InvSets: every node's machine and ledger state hold, for every
	// height, the set of that height on the reference chain; block H
	// changes the set of H+2 and no other, to the staking module's active
	// set (reference.go).
	InvSets
	// InvStake: on every node's state, balances plus the stake held
	// (bonded, unbonding, burned) equal the supply; on the reference, the
	// pool's sums are the validators' tokens and the entries' balances,
	// and every slash takes its share of each unbonding entry at stake and
	// the rest from the validator's tokens.
	InvStake
	// InvBudget: the faulty validators (twins, byzantine, disk-fault node)
	// hold less than a third of the power of every height's set: the
	// simulator's own assumption, which the churn's plans must keep.
	InvBudget
	numInvariants
)

// Invariants lists every invariant in order.
var Invariants = []Invariant{InvAgreement, InvValidity, InvNoDoubleSign, InvCommit, InvLiveness, InvEvidence, InvRestart, InvEquivocation, InvLocking, InvOwnOrder, InvSets, InvStake, InvBudget}

// String renders the Invariant in one line, for logs and traces.
func (i Invariant) String() string {
	switch i {
	case InvAgreement:
		return "agreement"
	case InvValidity:
		return "validity"
	case InvNoDoubleSign:
		return "no-double-sign"
	case InvCommit:
		return "commit"
	case InvLiveness:
		return "liveness"
	case InvEvidence:
		return "evidence"
	case InvRestart:
		return "restart"
	case InvEquivocation:
		return "equivocation"
	case InvLocking:
		return "locking"
	case InvOwnOrder:
		return "own-order"
	case InvSets:
		return "sets"
	case InvStake:
		return "stake"
	case InvBudget:
		return "budget"
	}
	return fmt.Sprintf("Invariant(%d)", uint8(i))
}

// Liveness is stated as: once the network has healed (every honest node
// up and connected, byzantine power below a third), every honest node
// decides LivenessHeights new heights within LivenessBound of virtual time.
const (
	LivenessBound   = 60 * time.Second
	LivenessHeights = 2
)

// RoundBuckets is the number of buckets of Stats.Rounds: rounds 0 to 6,
// and 7 or more.
const RoundBuckets = 8

// Violation is a broken invariant.
type Violation struct {
	Invariant Invariant
	At        time.Duration // virtual time
	Node      string
	Detail    string
}

// String renders the Violation in one line, for logs and traces.
func (v Violation) String() string {
	return fmt.Sprintf("%s violated at %s on %s: %s", v.Invariant, fmtTime(v.At), v.Node, v.Detail)
}

// Stats count what a run did: the faults it actually exercised and the
// invariant checks it made.
type Stats struct {
	Heights           uint64 // highest height an honest node decided
	Steps             uint64 // events stepped through machines
	Messages          uint64 // messages delivered
	Delayed           uint64 // messages given extra delay
	Dropped           uint64 // messages lost to drops
	Cut               uint64 // messages lost to partitions
	Partitions        uint64
	Crashes           uint64
	MidStepCrashes    uint64 // crashes inside a step, after the WAL write
	LostRecords       uint64 // unsynced WAL records lost in crashes
	Equivocations     uint64 // equivocations honest nodes detected
	TwinEquivocations uint64 // of them, by the twins' key
	EvidenceBlocks    uint64 // evidence committed
	FarRoundVotes     uint64 // votes at rounds near ledger.MaxRound signed with the twins' key
	ByzMessages       uint64 // messages the byzantine validator sent
	// ExtraValues counts the votes honest machines accepted as a
	// validator's third or later value for one height, round and type;
	// BackedValues those beyond consensus.MaxUnbackedVoteValues, kept
	// because other validators' first votes back the value.
	ExtraValues  uint64
	BackedValues uint64
	DiskFaults   uint64 // disk faults injected
	Refusals     uint64 // signatures the signer of a node whose disk lost writes refused, as it must
	BlockSynced  uint64 // blocks a node stored from peers (block sync) after its store lost them
	// The reference chain's staking: heights whose set differs from the
	// height before; churn transactions committed (and of them failed),
	// by kind; validators tombstoned for a double sign and jailed for
	// downtime; slashes recomputed, and the unbonding entries at stake in
	// them; unbonding entries paid out.
	SetChanges  uint64
	ChurnTxs    uint64
	ChurnFailed uint64
	ChurnKinds  [numChurnKinds]uint64
	Tombstoned  uint64
	Jailed      uint64
	// HonestJailed counts the validators jailed for downtime that are
	// not faulty (slow links, a node crashed or cut off for a window).
	HonestJailed   uint64
	Slashes        uint64
	SlashedEntries uint64
	Matured        uint64
	// Rounds counts the heights decided (first honest decision of each)
	// by the round they were decided in; the last bucket takes the rest.
	// RoundSum is the sum of those rounds.
	Rounds   [RoundBuckets]uint64
	RoundSum uint64
	// Recovery is how long after the heal the liveness condition was met.
	Recovery time.Duration
	// Checks counts the checks of each invariant.
	Checks [numInvariants]uint64
}

// Exercised reports whether the run actually injected fault kind k.
func (s *Stats) Exercised(k Fault) bool {
	switch k {
	case FaultDelay:
		return s.Delayed > 0
	case FaultDrop:
		return s.Dropped > 0
	case FaultPartition:
		return s.Partitions > 0
	case FaultCrash:
		return s.Crashes > 0
	case FaultTwins:
		return s.TwinEquivocations > 0
	case FaultByzantine:
		return s.ByzMessages > 0
	case FaultDisk:
		return s.DiskFaults > 0
	case FaultChurn:
		return s.ChurnTxs > 0
	}
	return false
}

// checker holds the global view the invariants need.
type checker struct {
	s          *simulation
	decided    map[uint64]decision       // first honest decision per height
	signed     map[signSlot]crypto.Hash  // honest signatures
	detected   map[crypto.Hash]detection // evidence keys honest nodes detected
	committed  map[crypto.Hash]bool      // evidence keys in honest-committed blocks
	verified   map[crypto.Hash]bool      // commits already verified (by hash)
	violations []Violation
}

type decision struct {
	id   crypto.Hash
	node string
}

type signSlot struct {
	addr   crypto.Address
	height uint64
	round  uint32
	step   uint8 // 0 proposal, else the vote type
}

type detection struct {
	at   time.Duration
	node string
	ev   *ledger.Evidence
}

func newChecker(s *simulation) *checker {
	return &checker{s: s, decided: map[uint64]decision{}, signed: map[signSlot]crypto.Hash{},
		detected: map[crypto.Hash]detection{}, committed: map[crypto.Hash]bool{}, verified: map[crypto.Hash]bool{}}
}

func (c *checker) fail(inv Invariant, n *node, format string, args ...any) {
	name := "-"
	if n != nil {
		name = n.name
	}
	v := Violation{Invariant: inv, At: c.s.now, Node: name, Detail: fmt.Sprintf(format, args...)}
	c.violations = append(c.violations, v)
	c.s.tracef(n, "VIOLATION %s", v)
	c.s.stopped = true
}

func (c *checker) count(inv Invariant) { c.s.stats.Checks[inv]++ }

// signedBy records a signature an honest node released.
func (c *checker) signedBy(n *node, h uint64, r uint32, step uint8, id crypto.Hash) {
	c.count(InvNoDoubleSign)
	slot := signSlot{n.addr, h, r, step}
	if prev, ok := c.signed[slot]; ok && prev != id {
		c.fail(InvNoDoubleSign, n, "signed %s and %s at h=%d r=%d step=%d", consensus.ShortID(prev), consensus.ShortID(id), h, r, step)
		return
	}
	c.signed[slot] = id
}

// decide checks a decision before the node stores it.
func (c *checker) decide(n *node, d consensus.EffectDecide) {
	id := d.Block.Hash()
	c.count(InvCommit)
	ch := d.Commit.Hash()
	if d.Commit == nil || d.Commit.BlockID != id {
		c.fail(InvCommit, n, "decision of %s at h=%d without its commit", consensus.ShortID(id), d.Height)
		return
	}
	if !c.verified[ch] {
		// Against the set of the commit's own height, on the reference
		// chain.
		vals := n.setOf(d.Height)
		if err := d.Commit.Verify(c.s.chainID, vals, d.Height, id); err != nil {
			c.fail(InvCommit, n, "commit of h=%d: %v", d.Height, err)
			return
		}
		// The quorum once more with the checker's own arithmetic, so a
		// fault in the shared one (ledger.ValidatorSet.Quorum) shows.
		var power uint64
		seen := map[uint32]bool{}
		for _, sig := range d.Commit.Sigs {
			if !seen[sig.ValidatorIndex] {
				seen[sig.ValidatorIndex] = true
				power += vals.Get(int(sig.ValidatorIndex)).Power
			}
		}
		if total := totalOf(vals); !overTwoThirds(power, total) {
			c.fail(InvCommit, n, "commit of h=%d holds %d of %d voting power: not more than two thirds", d.Height, power, total)
			return
		}
		c.verified[ch] = true
	}
	if !n.honest {
		return
	}
	c.count(InvAgreement)
	if prev, ok := c.decided[d.Height]; ok && prev.id != id {
		c.fail(InvAgreement, n, "decided %s at h=%d, %s decided %s", consensus.ShortID(id), d.Height, prev.node, consensus.ShortID(prev.id))
		return
	} else if !ok {
		c.decided[d.Height] = decision{id, n.name}
		c.s.stats.Rounds[min(int(d.Round), RoundBuckets-1)]++
		c.s.stats.RoundSum += uint64(d.Round)
		c.s.ref.advance(n, d)
	}
}

// committedEvidence records evidence in a block an honest node stored.
func (c *checker) committedEvidence(n *node, b *ledger.Block) {
	if !n.honest {
		return
	}
	for _, ev := range b.Evidence {
		k := ev.Key()
		if !c.committed[k] {
			c.committed[k] = true
			c.s.stats.EvidenceBlocks++
		}
	}
}

// detectedEvidence records an equivocation an honest node detected.
func (c *checker) detectedEvidence(n *node, ev *ledger.Evidence) {
	if !n.honest {
		return
	}
	k := ev.Key()
	if _, ok := c.detected[k]; !ok {
		c.detected[k] = detection{c.s.now, n.name, ev}
		c.s.stats.Equivocations++
		if c.s.twinAddr == ev.VoteA.Validator {
			c.s.stats.TwinEquivocations++
		}
	}
}

// evidencePending returns how many equivocations detected up to cutoff are
// not yet committed, and one of them.
func (c *checker) evidencePending(cutoff time.Duration) (int, *detection) {
	n := 0
	var first *detection
	for _, k := range sortedHashes(c.detected) {
		d := c.detected[k]
		if d.at <= cutoff && !c.committed[k] {
			n++
			if first == nil {
				first = &d
			}
		}
	}
	return n, first
}
