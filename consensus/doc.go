// Package consensus is the Tendermint round protocol of "The latest gossip
// on BFT consensus" (Buchman, Kwon, Milosevic, 2018, Algorithm 1) as a pure
// state machine: events go in through (*Machine).Step, effects come out.
// The package does no I/O, reads no clock, starts no goroutines and draws no
// randomness; the same events in the same order always give the same
// effects, which is what makes write-ahead-log replay and the deterministic
// simulator (package consensus/sim) possible.
//
// # Rules
//
// Every upon-rule of Algorithm 1 is one method of Machine named for what it
// does and commented with the paper's lines and guard (rules.go): L22, L28,
// L34, L36, L44, L47, L49, L55 and the timeout handlers L57, L61, L65. After
// every accepted event, and after every rule that fires (so after every step
// change), the machine re-evaluates all guards until none is enabled.
// A VoteKeeper tallies votes by voting power and answers the guards'
// quorum questions (polka for a value or nil, polka for anything,
// precommits for a value or anything, f+1 in a round); it turns two
// different votes of one validator for the same height, round and type
// into equivocation evidence. The guards are conditions on that state, so
// "for the first time" (L34, L36, L47) is a per-round anchor the machine
// sets when the rule fires, not a one-off report from the keeper.
//
// # Contract with the driver
//
// The driver (package node, or the simulator) owns the machine and must:
//
//   - Feed it, in one goroutine, every input as an Event: EventNewHeight to
//     start a height, signature-verified proposals (with their block) and
//     votes, timeouts when the timers it scheduled fire, and the value it
//     built when asked.
//   - Write every accepted event (Step returned a nil error) to the
//     write-ahead log under the height it belongs to (EventHeight), and
//     make the log durable before executing any effect for which NeedsSync
//     reports true. Rejected events change nothing and need not be logged.
//     Events of the next height that arrive before the current height is
//     stored (the machine keeps them) are logged after the current
//     height's end marker, so that replaying the next height finds them.
//     Replaying the logged events of a height, in order, into a fresh
//     Machine reproduces its state.
//   - Sign EffectBroadcastProposal and EffectBroadcastVote through the
//     last-signed guard (package privval), send them, and feed the signed
//     message back to the machine as an event: the machine counts its own
//     votes only when they come back signed, so a commit it builds carries
//     real signatures.
//   - Turn EffectScheduleTimeout into a timer of TimeoutDuration and deliver
//     EventTimeout when it fires; stale timeouts are ignored.
//   - Answer EffectRequestValue with EventProposeValue carrying a block for
//     that height and round.
//   - On EffectDecide, persist the block with its commit, then (after the
//     chain's commit timeout) send EventNewHeight for the next height.
//   - After a crash, make a new Machine for the height after the last
//     stored block and replay that height's logged events through the
//     same code, with three differences: replayed events are not logged
//     again (the own messages the replay produces are); a signature the
//     guard refuses during replay belongs to a message signed before the
//     crash, whose signed form the log holds, and is skipped; and a value
//     request is answered only after the replay, since the log may hold
//     the value proposed before the crash.
//
// Config.ValidValue is the paper's valid(v). It must be a deterministic
// function of the block and of the committed chain state below the block's
// height (for ledgerd, ledger.Validate against the state after height-1);
// the machine caches its verdict per block for the height.
//
// # Deviations from Algorithm 1
//
//   - getValue() is asynchronous: a proposer without a valid value emits
//     EffectRequestValue and proposes when EventProposeValue arrives.
//   - Every validator, the proposer included, schedules timeoutPropose at
//     the start of a round, so a proposer whose driver never produces a
//     value still moves on.
//   - Deciding does not start the next height by itself; the driver sends
//     EventNewHeight once the block is stored. Messages for the next height
//     that arrive meanwhile are kept and counted when it starts.
//   - valid(v) is part of the guard of L36 and L49 (a rule whose action
//     would do nothing never fires), which is equivalent.
//   - Storage is bounded: a validator may be active in at most
//     MaxFutureRounds rounds above the current one, a round keeps at most
//     MaxProposalsPerRound proposals unless votes name the extra value, and
//     messages more than one height ahead are refused.
package consensus
