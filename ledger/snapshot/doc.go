// Package snapshot takes, stores and restores snapshots of the ledger's
// state tree, in chunks that each prove themselves against the app hash,
// for state sync: a new node fetches a recent snapshot from its peers
// instead of replaying every block from genesis.
//
// # Format
//
// A snapshot of the state after block H is a manifest and chunks (format
// 1, see Format). Each chunk is one subtree of the state tree: every leaf
// (key, value, and the key's preimage, "meta") under a prefix, in key
// order, with the sibling hashes from the subtree up to the root. The
// manifest names the app hash, and for each chunk its place (depth,
// prefix), its leaf count, size and SHA-256; its own SHA-256 is its ID.
//
// # Trust
//
// Nothing a peer sends is trusted. The app hash comes from the header of
// block H+1, verified by the light client. A manifest is accepted when
// its app hash is that one and its chunks' subtrees partition the key
// space exactly (VerifyManifest); a chunk when its leaves, hashed into
// their subtree and folded up with its siblings, give the app hash
// (VerifyChunk). So a bad chunk is refused on arrival, with an error that
// says why and whom to blame, not at the end of the restore; and the
// chunks of an accepted manifest add up to exactly the state.
//
// # Parts
//
// Build cuts the state into chunks by the partition rule of the format
// (deterministic, so every node's snapshot of a height is byte for byte
// the same); Store writes snapshots to a directory in the background,
// keeps the last few, and serves manifests and chunks checked against
// their hashes; Restorer verifies and imports chunks in any order through
// an Importer (the node's store), reports Progress, and finishes by
// checking the rebuilt root.
//
// The snapshot holds the state tree only. The consensus metadata of
// height H (the validator sets of H, H+1 and H+2, the proposer
// priorities, block H and its commit, the state's other fields) comes
// from verified headers and commits; see ledger/store's FinishRestore.
package snapshot
