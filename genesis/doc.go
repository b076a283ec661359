// Package genesis holds the genesis document of a ledgerd chain: its chain
// ID, genesis time, consensus parameters, validators and initial balances.
//
// A genesis file is JSON. Parse reads one strictly: one object no larger
// than MaxDocBytes, no unknown, duplicate or mis-cased keys, integers
// written as decimal strings, and every problem reported at once with the
// field that holds it. A document that Parse or Load returns is valid and
// yields the chain's initial state through InitialState.
//
// Hash identifies a genesis: nodes that share a Hash start from the same
// state. GenerateTestnet and DevDoc build documents, with their keys, for
// test networks and the single-validator dev chain.
package genesis
