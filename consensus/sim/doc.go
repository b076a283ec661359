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
//   - Churn (FaultChurn, one run in four, drawn from a stream of its own;
//     churn.go): the validator set changes every few heights for the whole
//     run, through staking transactions the proposers put in their blocks.
//     One to three spare validator keys, whose nodes follow the chain from
//     the start, join (create_validator); validators leave (their operator
//     undelegates the whole self-bond); powers go up or down by up to a
//     third of the total (delegate, undelegate, by the operator or one of
//     two delegator accounts); validators jailed for downtime unjail. The
//     staking parameters of churn runs are scaled to a run (unbonding in 8
//     heights, a signing window of 8, 4 heights in jail), and a churn run
//     decides 20 heights at least, so that changes land after the heal,
//     unbonding matures and silent validators are jailed.
//
// The twins' key, the byzantine validator and a disk-fault node that can
// forget what it signed (and so its locks) hold less than a third of the
// power together (less than a seventh in churn runs, where validators
// jailed for downtime leave the set without notice); the churn plans only
// changes that keep them there, on every height's set.
//
// # Staking
//
// The genesis has staking records (ledger/staking): every validator key
// has an operator account, which holds the self-bond, and two delegator
// accounts delegate; their stake is part of the supply. Evidence slashes,
// jails and tombstones its validator, which leaves the set two heights
// later, in every run (outside churn runs the staking parameters are the
// defaults, under which nothing else changes the set). Only the scenarios
// and the runs at or above a third (ByzantineThird, ExactThird) have a
// fixed set and no staking records. In churn runs, proposers add the
// precommits they received after deciding to the last commit of their
// block, as CometBFT's do, so that the signing record says who is up.
//
// A reference chain (reference.go) executes the first honest decision of
// every height once more, on a store of the simulator's own: the checks
// take the set of every height from it.
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
// power itself too, not trusting ledger.ValidatorSet.Quorum. Every check
// takes the set of the height it is about from the reference chain.
// Across set changes (reference.go): every node's machine and ledger
// state hold the reference's set of each height, and block H changes the
// set of H+2 and no other, to the staking module's active set (sets);
// balances plus the stake held equal the supply on every node's state,
// and on the reference the pool's sums hold and every slash takes its
// share of each unbonding entry at stake and the rest from the
// validator's tokens, recomputed from the state before the block
// (stake); the faulty validators hold less than a third of every height's
// set (budget).
//
// Bugs of validator churn can be planted on purpose (plant.go; in the
// ledger code with -tags simplant), and TestPlantedBugsAreCaught shows
// which check catches each.
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
