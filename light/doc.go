// Package light is the light client: it verifies headers of the chain from
// a pinned genesis document, following the validator set from header to
// header (each header names the set of its height and of the next), either
// sequentially or skipping ahead when more than a third of a trusted set
// signed a later header, within a trusting period of two thirds of the
// unbonding period. It keeps a bounded store of the headers it came to
// trust and can persist the newest one (TrustedState) so a later run
// starts there.
//
// What it verifies comes from a Provider: rpc/client serves it from a
// JSON-RPC node (the wallet's --verify), and the node serves it from its
// libp2p peers (state sync, which must verify the height of a snapshot
// without trusting any server). Nothing a provider returns is trusted; an
// answer that does not check out is an error wrapping ErrVerification.
//
// docs/decisions.md ("The light client across validator-set changes")
// gives the rules and why they are safe.
package light
