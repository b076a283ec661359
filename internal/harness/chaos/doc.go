// Package chaos runs a network of real ledgerd nodes — processes, each in
// its own network namespace, or Docker containers — under a transfer
// workload while it injects faults on a seeded schedule, then checks what
// the clients saw against what the chain holds.
//
// # Faults
//
//   - kill: SIGKILL a validator, restart it after a while.
//   - pause: SIGSTOP (docker pause) a validator, continue it later.
//   - partition: split the validators in two; a side without more than
//     2/3 of the voting power must commit nothing (at most the one height
//     it may already hold a commit for), and the sides heal afterwards.
//   - walcut: SIGKILL a validator, truncate the newest segment of its
//     consensus WAL at a random offset, restart it.
//   - twin: start a second node holding a copy of one validator's key (a
//     byzantine twin: correct code, one key, two signers), stop it later.
//   - churn: a funded staker account delegates to one validator (its power
//     grows by 1 to 5, and the set changes two heights later), and at the
//     heal undelegates it again; the run checks the set of the height the
//     change is in force at shows exactly the new power. The staking pool
//     is part of the supply check.
//
// One fault is active at a time; after each heal the run measures how long
// the network takes to commit again and the faulted nodes take to catch up.
//
// # What is recorded and checked
//
// Sender accounts transfer to recipient accounts, one transfer in flight
// per sender; a transfer is acknowledged once the client saw it committed
// (ledger_sendTransactionAndWait, or ledger_getTransaction after an
// error). Readers call ledger_getAccount on random nodes. Every transfer
// and read is recorded with its invocation and response times. At the end
// the run checks that every node holds one chain (same block and app
// hashes), that every acknowledged transfer is in it exactly once, that
// the sum of all balances and the staking pool (bonded, unbonding,
// burned) equals the genesis supply, that the twin's
// equivocation was committed as evidence and no other validator
// equivocated, and that the history is linearizable (porcupine, against a
// model of account balances and nonces).
//
// # Replay
//
// A run is determined by its seed: the fault schedule (kinds, order,
// times, targets, partition sides, WAL cut points) and the workload's
// choices are drawn from it. Runs print the seed; passing it back replays
// the same schedule. Timing on a real network still varies from run to run.
package chaos
