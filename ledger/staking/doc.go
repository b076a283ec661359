// Package staking is ledgerd's staking, slashing and jailing state machine,
// after Cosmos SDK's x/staking and x/slashing: validators that accounts
// create and delegate to, an active set of the top validators by power,
// unbonding with a delay, slashing for double signs and downtime, jailing,
// tombstoning.
//
// # The caller's part
//
// The package never touches accounts. The ledger debits an account before
// CreateValidator or Delegate (and refunds it if they are rejected), and
// credits the Payouts EndBlock returns. Per block it runs the
// transactions' operations, then EndBlock, then ActiveSet, and commits
// Changes. The tokens that left the accounts are in the Pool:
//
//	balances + Pool.Bonded + Pool.Unbonding + Pool.Burned == genesis supply
//
// with Pool.Bonded the sum of the validators' Tokens and Pool.Unbonding the
// sum of the unbonding entries' Balance, after every operation.
//
// # Shares and rounding
//
// A validator holds Tokens and issues Shares; each delegation holds some of
// the shares, and the delegations' shares add up to the validator's. A
// share is worth Tokens/Shares tokens. Slashing lowers Tokens only, an O(1)
// write, so every delegator loses the same fraction of its stake. Shares
// are whole numbers (uint64); every product is taken in 128 bits
// (math/bits), so the arithmetic is exact, and every quotient is rounded in
// the chain's favour, against the side receiving:
//
//   - Delegating a tokens buys floor(a*Shares/Tokens) shares (one share per
//     token while the validator has none). A delegation that would buy no
//     share is rejected rather than donated; a validator whose tokens were
//     all slashed (shares but no tokens) takes no delegation.
//   - Undelegating a tokens gives up ceil(a*Shares/Tokens) shares and
//     unbonds their worth rounded down, floor(n*Tokens/Shares), which is at
//     least a. When less than one token's worth would be left to the
//     delegation, the whole delegation goes (no dust records). The last
//     shares out of a validator take every token it has left, so tokens
//     never stay behind without shares.
//   - Slash amounts are floor(fraction * stake).
//
// Rounding therefore never creates a token: whatever is rounded off stays
// with the validator's remaining shares, and the pool equations above hold
// exactly.
//
// # Slashing, jailing, tombstoning
//
// A slash for an infraction at height h by a validator of power P burns
// fraction*P*PowerUnit tokens: first from the validator's unbonding entries
// created at or after h that have not matured (each fraction of its initial
// balance, capped by its balance; the uncapped share counts against the
// amount, as in Cosmos), then from its tokens, capped by them. A double
// sign (evidence in the block) slashes SlashFractionDoubleSign, jails the
// validator for good and tombstones its consensus key, which can then never
// be unjailed nor serve a new validator. Downtime: each block records which
// members of the previous block's set signed, in a window of missed bits
// indexed by height modulo SignedBlocksWindow; a validator that misses more
// than the window allows, judged only once a full window has passed since
// its StartHeight, is slashed SlashFractionDowntime for an infraction at
// height-2 (the set delay), jailed for DowntimeJailHeights and starts a
// fresh window. An operator whose own delegation falls below one power unit
// is jailed too. Unjail needs the jail time over and a self-bond of at
// least one power unit. A validator enters a fresh window whenever it
// enters the active set.
//
// # Records
//
// State is a KV view with natural keys under Prefix ("stk/"); the ledger
// stores them in a flat table for prefix iteration and in its state tree
// under SHA-256 of the key, so every record has a proof. Values are
// canonical wire encodings with a version byte; decoders are bounded and
// fuzzed. Keys (addresses are 20 bytes, heights 8 bytes big-endian):
//
//	stk/pool                              Pool
//	stk/active                            the active set last computed
//	stk/val/<operator>                    Validator
//	stk/cons/<cons addr>                  ConsRecord (kept for good)
//	stk/pow/<^power><cons addr>           PowerRecord, for eligible validators
//	stk/del/<delegator><operator>         Delegation
//	stk/delv/<operator><delegator>        marker (delegations by validator)
//	stk/ubd/<delegator><operator>         Unbonding
//	stk/ubdq/<completion><delegator><operator>  marker (maturity queue)
//	stk/ubdv/<operator><delegator>        marker (unbondings to slash)
//	stk/sign/<cons addr>                  SigningInfo
//	stk/miss/<cons addr><chunk>           MissChunk, only while a bit is set
//
// A validator record is removed once it has no shares and no unbonding
// entries (it stays slashable until then); its consensus record stays, so
// a consensus key serves one validator, once.
//
// # Determinism and bounds
//
// Changes are sorted by key; no map order reaches the state or the
// results. MaxCandidates bounds the validators, MaxEntries the unbonding
// entries per pair, MaxMonikerLen a moniker, MaxPage a query page.
package staking
