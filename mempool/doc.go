// Package mempool holds signed transactions between their arrival (RPC or
// gossip) and their block. It admits only transactions that can execute
// on the latest committed state, gives the proposer a block's worth in a
// valid order, and re-checks what is left after every commit.
//
// # Admission
//
// A transaction is admitted (Add, AddBatch) when, in this order:
//
//   - it encodes to at most Config.MaxTxBytes (TxTooLarge), passes
//     ledger's stateless rules (Invalid) and names this chain (WrongChain);
//   - no transaction with its hash is pooled (Duplicate);
//   - its nonce n is not below the sender's committed nonce c
//     (NonceTooLow) and n < c + Config.NonceWindow (NonceGap);
//   - its signature verifies (BadSignature; gossip batches are verified
//     together);
//   - if the sender already has a pooled transaction with nonce n, this
//     one pays at least Config.ReplaceBumpPercent (and at least 1) more
//     fee and replaces it (FeeTooLowToReplace);
//   - the sender holds fewer than Config.MaxPerSender transactions, or n
//     is below its highest pooled nonce, which is then dropped (SenderLimit);
//   - the sender's committed balance covers the cost (ledger.Tx.Cost:
//     amount+fee, or the fee alone for an undelegation or an unjail) of
//     this and of all its pooled transactions with lower nonces
//     (InsufficientFunds); its higher-nonce transactions that then no
//     longer fit are dropped, highest first. So a sender's pooled transactions always fit its balance
//     together, and which of them are kept does not depend on the order in
//     which they arrived;
//   - the pool caps (Config.MaxTxs, Config.MaxBytes) hold, possibly after
//     evictions (MempoolFull).
//
// Nonces n, n+1, n+2 ... sent back to back, to one node or several, are
// all admitted whatever order gossip delivers them in: a transaction whose
// nonce continues the sender's chain from its committed nonce is
// executable; one beyond a gap is queued and becomes executable when the
// gap fills (by arrival or by a commit).
//
// # Eviction
//
// When the pool is full, only each sender's highest-nonce transaction is
// an eviction candidate, so eviction never leaves a gap in a chain. Among
// the candidates a queued one goes before an executable one, then the
// lowest fee, then the latest arrival. A newcomer evicts candidates only
// while they rank below it (a queued newcomer never evicts an executable
// transaction; otherwise the candidate's fee must be strictly lower), and
// never its own sender's; if that cannot make room nothing changes and the
// newcomer is refused with MempoolFull. Evicting queued transactions first
// means a pool cannot be clogged with transactions that will never execute
// and so never pay a fee.
//
// # After a commit
//
// Update removes committed transactions, re-reads the accounts of the
// senders that had a transaction in the block, drops what their new
// nonce or balance rules out, promotes queued transactions, and expires
// transactions older than Config.TTL (wall clock from admission, through
// Config.Now). It reads state and hashes before taking the lock, and does
// work proportional to the block and the affected senders' transactions.
//
// Every removal is announced to subscribers with its reason (Committed,
// Replaced, Evicted, Expired, NonceTooLow, InsufficientFunds, SenderLimit),
// so no transaction leaves the pool silently.
package mempool
