// Package bench is ledgerd's load generator: it drives a network of real
// ledgerd processes with pre-signed transfers and measures what a client
// sees and what the nodes spend.
//
// A run has four phases:
//
//  1. Setup. Either spawn a fresh local network (Config.Spawn validators
//     with Config.Accounts funded accounts, see internal/harness/localnet) or
//     load an already running one (Config.Testnet, as scripts/localnet.sh makes).
//  2. Pre-signing. Every transfer the run may send is signed and encoded
//     before the clock starts, so signing never competes with the nodes for
//     CPU during the measurement.
//  3. Load. Workers submit over keep-alive HTTP (ledger_sendTransaction),
//     each worker to one node. Every account is owned by exactly one worker,
//     which sends that account's transfers strictly in nonce order and to
//     one node, so nonces never arrive out of order at a pool. With a rate
//     the workers share a token bucket (open loop); with rate 0 they send as
//     fast as the network admits, bounded by Config.InFlight transfers
//     admitted but not yet committed (closed loop). A refused transfer is
//     retried, same bytes, after a short back-off; refusals are counted by
//     reason.
//  4. Drain. Submission stops; the run waits (up to Config.Drain) for every
//     admitted transfer to commit.
//
// Commits are observed on one node: a newHeads WebSocket subscription
// timestamps each block as it arrives, and the block's transaction hashes
// (ledger_getBlockByHeight) are matched against the submission times. The
// latency of a transfer is from the start of the request that the node
// admitted to the arrival of the head of the block holding it.
//
// Throughput and latency are reported over the steady-state window: the
// load phase minus its first Config.Warmup. Committed tx/s counts our
// transfers in blocks whose heads arrived inside the window; the latency
// percentiles are over transfers whose admitted request started inside it.
// Each node's CPU time and memory come from /proc (utime+stime, VmRSS,
// VmHWM), sampled every second.
package bench
