// Package crypto holds ledgerd's cryptographic primitives: ed25519 keys and
// signatures (single and batch verification with one shared rule set),
// checksummed addresses, domain-separated sign bytes, SHA-256 hashing and
// Merkle roots with inclusion proofs.
//
// Every signature in ledgerd is verified under ZIP-215 rules, whether alone or
// in a batch, so a signature can never be valid one way and invalid the other;
// a node that batch-verifies and a node that verifies one by one always agree.
package crypto
