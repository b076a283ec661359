// Package sim is a deterministic simulator for package consensus: N
// validators with unequal voting powers run the real consensus.Machine,
// the real privval.Signer (on privval.MemStateStore), the real write-ahead
// log (wal.MemLog) and real ledger blocks of signed transfers, validated
// and executed by ledger.Execute, over a simulated network on a virtual
// clock. Everything random is drawn from one seed, so a run is a pure
// function of its Options: re-running a seed reproduces it step for step,
// and with tracing on the trace is byte-identical.
//
// # Timing
//
// Timeouts are ledger.DefaultConsensusParams scaled by 3/10 (propose 300
// ms + 150 ms per round, prevote and precommit 150 ms + 75 ms per round)
// and the commit timeout is 200 ms, so that the network's delays regularly
// outlast them and rounds fail, which is where locking matters. Links have
// 5 to 50 ms of latency, plus jitter.
//
// # Faults
//
// A run draws its fault kinds from its seed (RandomOptions: each kind with
// probability one half) and their schedule and intensity from the same
// seed. Faults last for the fault phase; then the network heals and every
// crashed node restarts.
//
//   - Delay: base latencies of 20 to 400 ms; in every epoch (0.3 to 1.5 s)
//     a random share of the links is slow (up to 0.3 to 3 s more), any
//     message may be held up, and a third of the message classes (one
//     sender's proposals, prevotes or precommits of one height and round)
//     are held up as a whole. Messages overtake each other.
//   - Drop: in every epoch each link loses each kind of message (proposal,
//     prevote, precommit, other) at its own rate, up to 90%.
//   - Partition: each message class reaches all nodes or, half of the
//     time, a random subset (directed, so a node can hear a quorum that
//     does not hear it); and, in half of these runs, up to five
//     time-based partitions (one node cut off, or two or three groups)
//     that heal after 0.3 to 3 s.
//   - Crash: up to five crashes of honest nodes, between two events or
//     armed to strike inside the node's next step that sends something,
//     after the WAL write and before or during the broadcast (which then
//     reaches a random subset); unsynced WAL records may be lost. The node
//     restarts 0.1 to 3 s later (at the latest at the heal).
//   - Twins: one validator key, holding as much power as stays below a
//     third, runs on two nodes with separate signer state, so the pair
//     equivocates as proposer and as voter. A quarter of the runs let the
//     twins reach everyone; otherwise the twins split the honest nodes
//     between them, for the whole fault phase or anew in every round.
//     Beside a quarter of the twins' votes, an attacker holding the key
//     signs two conflicting votes at a round near ledger.MaxRound of the
//     vote's height or the next, for the whole run: honest nodes must
//     bound what they keep of them, commit the evidence once its height
//     has passed, and stay live.
//   - Byzantine: one validator runs correct code behind a network layer
//     that misbehaves as Options.Byzantine, drawn from the seed, says
//     (byzantine.go): it goes silent at any moment, for a while or for
//     good; claims a proof-of-lock round its proposal does not have;
//     proposes in other validators' rounds, or twice in its own, one block
//     to each half of its peers; sends votes for rounds ahead; votes for
//     one value to some peers and another to the rest; prevotes and
//     precommits every proposal it sees. It signs those with its key,
//     past its signer's guard; in half of the runs it names at most two
//     values for one height, round and type, in the others any number
//     (ByzThirdVote), so honest nodes hold different sets of its votes.
//   - Disk: one honest node crashes one to three times and its disk loses
//     writes, as Options.Disk says (disk.go): the block store its last
//     block or two, the WAL its last synced records, or both go back to an
//     image taken earlier. The signing state is intact. The signer must
//     refuse what the node forgot it signed (counted, not a violation),
//     the replay must decide a lost block the WAL holds again, and blocks
//     beyond the WAL come from peers by block sync.
//
// The twins' key, the byzantine validator and a disk-fault node that can
// forget what it signed (and so its locks) hold less than a third of the
// power together.
//
// Options.ByzantineThird instead gives the twins at least a third of the
// power and joins each twin to one half of the honest validators, cut off
// from the other half: there safety is not guaranteed, and the checker
// must see the violation. Options.ExactThird gives the byzantine
// validator exactly a third and silences it at the heal: the chain must
// stop, and the checker must see that.
//
// Options.Scenario runs a targeted scenario instead (scenario.go): a
// script over three rounds of one height that makes polkas for different
// values and locks and relocks on them (relock, unlock, three; see
// Scenarios).
//
// # Invariants
//
// Checked on every run (see Invariant): agreement, validity (ledger
// validation of every decided block on the deciding node's state), no
// conflicting signatures by honest validators, a valid +2/3 commit for
// every decided block, liveness after the heal (every honest node decides
// LivenessHeights new heights within LivenessBound of virtual time), every
// equivocation an honest node detected ends up as evidence in a committed
// block, and restart consistency (a restarted machine replays to the
// state it crashed in when no WAL record was lost, and outside replay its
// signer never refuses what it asks to sign). An oracle beside each honest
// machine (oracle.go) checks, from what the machine accepted and with its
// own tally, that a second conflicting vote of a validator came with its
// evidence, that a precommit for a value had its polka, and that a
// prevote against the lock had a newer one; the checker sums a commit's
// power itself too, not trusting ledger.ValidatorSet.Quorum.
//
// # Baseline
//
// TestSimulator compares the rounds per height and the recovery times of
// its campaign with testdata/baseline.json (baseline.go), so that a
// slowdown fails long before the liveness bound; -rewrite-baseline
// records an intended change.
//
// # The driver
//
// Each node drives its machine the way package node does: step, log the
// accepted event (synced when the effects need it; events of the next
// height wait for the current height's end marker), then carry out the
// effects in order, feeding its own signed messages back. A restart makes
// a new Signer on the same state store and a new Machine at the height
// after the stored one, and replays the WAL of that height through the same
// driver code: replayed records are not logged again, own messages the
// replay produces are; a signature the guard refuses during replay is one
// already sent, whose signed form the WAL holds; a value request waits for
// the end of the replay, since the WAL may hold the value proposed before.
//
// Nodes help each other with a periodic status message (every 3 s before
// the heal, every 500 ms after), answered with the answerer's own messages
// of the height (and the polka behind its proposal's POLRound) or, to a
// node behind, with decided blocks and their commits, which the lagging
// machine decides through L49 (or, when the machine refused precommits of
// the commit, or the node's store lost blocks below its last signature,
// stores by block sync and starts its machine again, as the node does);
// and with the evidence the answerer holds.
// Proposers put the evidence they hold in their blocks. Messages received
// from the network are not signature-checked: nothing in the simulation
// forges them, and the ledger checks every commit and piece of evidence
// it accepts.
package sim
