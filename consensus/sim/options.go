package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Fault is a set of fault kinds.
type Fault uint8

// The fault kinds the simulator injects.
const (
	FaultDelay     Fault = 1 << iota // extra message delay, hence reordering
	FaultDrop                        // lost messages
	FaultPartition                   // the network splits, then heals
	FaultCrash                       // nodes crash and restart from the WAL
	FaultTwins                       // one validator key runs on two nodes
	FaultByzantine                   // one validator misbehaves as Options.Byzantine says
	FaultDisk                        // one node's disk loses writes, as Options.Disk says
	// FaultChurn changes the validator set every few heights, for the
	// whole run (churn.go): spare validators join, validators leave,
	// powers change, jailed validators unjail. It is not a fault of the
	// network, and it does not end at the heal.
	FaultChurn
	AllFaults = FaultDelay | FaultDrop | FaultPartition | FaultCrash | FaultTwins | FaultByzantine | FaultDisk | FaultChurn
)

// FaultKinds lists the kinds one by one, in a fixed order.
var FaultKinds = []Fault{FaultDelay, FaultDrop, FaultPartition, FaultCrash, FaultTwins, FaultByzantine, FaultDisk, FaultChurn}

// drawnKinds are the kinds RandomOptions draws with probability one half
// each, from the options' first stream; churn has a stream of its own, so
// that adding it left the other draws of every seed as they were.
var drawnKinds = []Fault{FaultDelay, FaultDrop, FaultPartition, FaultCrash, FaultTwins, FaultByzantine, FaultDisk}

// String renders the Fault in one line, for logs and traces.
func (f Fault) String() string {
	var parts []string
	for _, k := range FaultKinds {
		if f&k == 0 {
			continue
		}
		switch k {
		case FaultDelay:
			parts = append(parts, "delay")
		case FaultDrop:
			parts = append(parts, "drop")
		case FaultPartition:
			parts = append(parts, "partition")
		case FaultCrash:
			parts = append(parts, "crash")
		case FaultTwins:
			parts = append(parts, "twins")
		case FaultByzantine:
			parts = append(parts, "byzantine")
		case FaultDisk:
			parts = append(parts, "disk")
		case FaultChurn:
			parts = append(parts, "churn")
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// Behaviour is a set of byzantine behaviours: what the validator of
// FaultByzantine does besides running correct code. Everything it sends
// beyond what its machine asks for is signed with its key directly, past
// its signer's guard.
type Behaviour uint8

// The byzantine behaviours.
const (
	// ByzSilent: from a moment drawn from the seed, the validator sends
	// nothing, for a while or for the rest of the run.
	ByzSilent Behaviour = 1 << iota
	// ByzFalsePOL: its proposals claim a proof-of-lock round other than
	// the one they have (a round without that polka, or none).
	ByzFalsePOL
	// ByzOutOfTurn: it proposes in rounds whose proposer it is not.
	ByzOutOfTurn
	// ByzDoublePropose: in its own rounds it proposes a second block, and
	// each half of its peers gets one of the two.
	ByzDoublePropose
	// ByzFutureRounds: it sends votes (and, where it is the proposer,
	// proposals) for rounds ahead of its own.
	ByzFutureRounds
	// ByzSplitVote: it votes for one value to some peers and for another
	// (or nil) to the others.
	ByzSplitVote
	// ByzVoteAll: it prevotes and precommits every proposal it accepts,
	// whatever its lock: a validator with no locks at all.
	ByzVoteAll
	// ByzThirdVote lets the others sign any number of values for one
	// height, round and type; without it they stop at two. Honest nodes
	// then get different sets of its votes, and every node must still
	// count the one that completes a quorum (consensus.MaxVoteValues;
	// TestThirdVote).
	ByzThirdVote
	AllBehaviours = ByzSilent | ByzFalsePOL | ByzOutOfTurn | ByzDoublePropose | ByzFutureRounds | ByzSplitVote | ByzVoteAll | ByzThirdVote
)

// Behaviours lists the byzantine behaviours one by one, in a fixed order.
var Behaviours = []Behaviour{ByzSilent, ByzFalsePOL, ByzOutOfTurn, ByzDoublePropose, ByzFutureRounds, ByzSplitVote, ByzVoteAll, ByzThirdVote}

// String renders the Behaviour in one line, for logs and traces.
func (b Behaviour) String() string {
	names := map[Behaviour]string{ByzSilent: "silent", ByzFalsePOL: "false-pol", ByzOutOfTurn: "out-of-turn",
		ByzDoublePropose: "double-propose", ByzFutureRounds: "future-rounds", ByzSplitVote: "split-vote", ByzVoteAll: "vote-all", ByzThirdVote: "third-vote"}
	var parts []string
	for _, k := range Behaviours {
		if b&k != 0 {
			parts = append(parts, names[k])
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// DiskFault is a set of ways a node's disk loses writes (FaultDisk). The
// signing state is never lost or rolled back: a validator whose signing
// state goes back can sign twice, and no node can survive that on its own
// (see docs/testing.md, "The simulator after issue 10").
type DiskFault uint8

// The disk faults.
const (
	// DiskStore: the block store loses its last write (the last block, or
	// the last two), the WAL is intact. The replay decides the block again
	// from the WAL, or, beyond it, the node fetches the blocks from peers
	// (block sync) while its signer refuses the heights it signed.
	DiskStore DiskFault = 1 << iota
	// DiskWAL: the WAL loses its last synced records (a disk that lied
	// about fsync). The node forgets messages it signed, and its locks:
	// its signer refuses to sign them again.
	DiskWAL
	// DiskRollback: the WAL and the block store go back to an image of an
	// earlier moment (a restored backup or snapshot), the signing state
	// stays.
	DiskRollback
	AllDiskFaults = DiskStore | DiskWAL | DiskRollback
)

// DiskFaults lists the disk faults one by one, in a fixed order.
var DiskFaults = []DiskFault{DiskStore, DiskWAL, DiskRollback}

// String renders the DiskFault in one line, for logs and traces.
func (d DiskFault) String() string {
	var parts []string
	for _, k := range DiskFaults {
		switch d & k {
		case DiskStore:
			parts = append(parts, "store")
		case DiskWAL:
			parts = append(parts, "wal")
		case DiskRollback:
			parts = append(parts, "rollback")
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// amnesia reports whether d can make the node forget what it signed (and
// its locks): such a node counts against the byzantine third.
func (d DiskFault) amnesia() bool { return d&(DiskWAL|DiskRollback) != 0 }

// Options describe one run. RandomOptions derives them from a seed; Run is
// a pure function of them.
type Options struct {
	// Seed drives every random choice of the run.
	Seed uint64
	// Validators is the number of validator keys (4 to 7 by default).
	Validators int
	// Faults are the fault kinds injected before the heal.
	Faults Fault
	// Byzantine is what the byzantine validator does (with FaultByzantine).
	Byzantine Behaviour
	// Disk is how the disk of the disk-fault node fails (with FaultDisk).
	Disk DiskFault
	// FaultPhase is how long faults last; at its end the network heals
	// and crashed nodes restart.
	FaultPhase time.Duration
	// ByzantineThird gives the twins at least a third of the voting power
	// and splits the honest validators in two halves, each with one twin:
	// a setting where safety is not guaranteed, to show the checker sees
	// the violation. Liveness and evidence are not checked then.
	ByzantineThird bool
	// ExactThird gives the byzantine validator (it implies
	// FaultByzantine, and leaves out the twins and the disk-fault node)
	// exactly a third of the voting power and makes it fall silent at the
	// heal for good: the honest two thirds are no quorum, and the checker
	// must see the chain stop (liveness).
	ExactThird bool
	// Scenario, if set, replaces the random faults with a targeted one
	// (see Scenarios); the seed still draws the powers, the roles and the
	// timings.
	Scenario string
	// storeUnbudgeted leaves a disk-fault node whose faults are all
	// DiskStore out of the faulty power, as the node's design would
	// allow; TestStoreLossBeyondTheWAL shows why the campaign does not
	// (blocks only that node stored, lost beyond its WAL, stop the chain).
	storeUnbudgeted bool
	// plant is a bug planted on purpose (plant.go; tests only).
	plant plant
	// ZeroLatency delivers every message at the instant it is sent (for
	// benchmarks; faults still apply).
	ZeroLatency bool
	// Trace, if set, receives a line for every step of the run.
	Trace func(line string)
}

// churnShare: one run in churnShare draws FaultChurn.
const churnShare = 4

// RandomOptions returns the options of the campaign run for seed: each
// fault kind is present with probability one half (churn: one in
// churnShare), and so is each byzantine behaviour and disk fault of a run
// that has them (at least one).
func RandomOptions(seed uint64) Options {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	o := Options{Seed: seed, Validators: 4 + r.IntN(4), FaultPhase: time.Duration(4000+r.IntN(4000)) * time.Millisecond}
	for _, k := range drawnKinds {
		if r.IntN(2) == 0 {
			o.Faults |= k
		}
	}
	if rand.New(rand.NewPCG(seed, 0xc4a2)).IntN(churnShare) == 0 {
		o.Faults |= FaultChurn
	}
	if o.Faults&FaultByzantine != 0 {
		o.Byzantine = Behaviour(1 + r.IntN(int(AllBehaviours)))
	}
	if o.Faults&FaultDisk != 0 {
		o.Disk = DiskFault(1 + r.IntN(int(AllDiskFaults)))
		// The disk-fault node counts against the byzantine third with
		// the twins and the byzantine validator (see sharePower); keep
		// two honest validators beside them, or the one left would hold
		// two thirds alone.
		faulty := 1
		for _, k := range []Fault{FaultTwins, FaultByzantine} {
			if o.Faults&k != 0 {
				faulty++
			}
		}
		if o.Validators-faulty < 2 {
			o.Faults &^= FaultDisk
			o.Disk = 0
		}
	}
	return o
}

// String renders the Options in one line, for logs and traces.
func (o Options) String() string {
	s := fmt.Sprintf("seed=%d validators=%d faults=%s", o.Seed, o.Validators, o.Faults)
	if o.Faults&FaultByzantine != 0 {
		s += " byzantine=" + o.Byzantine.String()
	}
	if o.Faults&FaultDisk != 0 {
		s += " disk=" + o.Disk.String()
	}
	s += " phase=" + o.FaultPhase.String()
	if o.Scenario != "" {
		s += " scenario=" + o.Scenario
	}
	if o.ByzantineThird {
		s += " byzantine>=1/3"
	}
	if o.ExactThird {
		s += " byzantine=1/3"
	}
	if o.plant != "" {
		s += " plant=" + string(o.plant)
	}
	return s
}
