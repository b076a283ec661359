// Package wire reads and writes ledgerd's canonical binary encodings: the
// ledger's blocks, transactions, votes and proofs, the consensus WAL's
// events and the p2p protocols' messages all use it, so every one of them
// follows the same rules:
//
//   - integers are fixed-width big-endian (U8, U16, U32, U64, I64);
//   - variable-length fields carry a minimal uvarint length (Prefixed,
//     PrefixedString), counts are minimal uvarints (Uvarint, Count);
//   - booleans and presence flags are one byte, 0 or 1 (Bool);
//   - fixed-size fields (hashes, keys, signatures) are written as they are
//     (Fixed).
//
// A Writer appends and never fails: values are validated before they are
// encoded, and an encoding that breaks a bound is refused by the Reader on
// the other side. A Reader is where the bounds live. Every length or count
// it reads is checked against a maximum the caller passes before anything
// is sliced or allocated, non-minimal varints are rejected (so every value
// has exactly one encoding), and Finish rejects trailing bytes. The first
// error sticks: later reads return zero values, so a decoder reads every
// field and checks the error once at the end. A Reader never panics,
// whatever its input.
//
// The package imports only the standard library, so every layer of ledgerd
// (crypto included) may use it.
package wire
