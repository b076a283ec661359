// Package statetree is the authenticated, versioned map behind the app hash:
// 32-byte keys to byte-string values, persisted in a kv store, with a
// Merkle root per version and proofs of membership and non-membership.
//
// # Shape
//
// The tree is a binary sparse Merkle tree over the 256 bits of the key,
// most significant bit first, with single-leaf subtrees compressed into the
// leaf itself (the "compact sparse Merkle tree" of Diem's Jellyfish tree):
//
//	empty subtree  = EmptyRoot (32 zero bytes)
//	leaf           = H(0x00 || key || H(value))
//	inner          = H(0x01 || left || right)
//
// H is SHA-256. The 0x00/0x01 prefixes keep leaves and inner nodes apart, so
// neither can pass for the other. A subtree that holds exactly one leaf is
// that leaf, wherever it sits; a subtree with two or more leaves is an inner
// node, even when one of its halves is empty. The shape, and so the root,
// depends only on the set of (key, value) pairs, never on the order of the
// insertions and deletions that produced it.
//
// # Storage
//
// Nodes are immutable and content-addressed: a node is stored under its hash,
// so every committed version stays readable, and a commit writes only the
// nodes on the paths it touches: O(k log n) for k changes in a tree of n
// keys. The key layout under the caller's prefix p is
//
//	p || 'n' || hash      -> node (0x00 || key || value, or 0x01 || left || right)
//	p || 'r' || version   -> root hash (version is 8 bytes, big-endian)
//
// Commit only adds operations to the caller's batch and never writes to the
// store, so the tree's writes land atomically with everything else in the
// batch, and a batch that is never written leaves no trace. Version 0 is
// the empty tree; every other version exists once its batch is written.
// Versions are not pruned: a node can be shared by many versions (a value
// set back to an old value recreates the same node), so deleting nodes
// safely would need reference counts, which the ledger does not need yet.
//
// # Cache
//
// A Tree keeps a byte-bounded cache of nodes (DefaultCacheBytes, or
// WithCacheBytes): the top levels of the tree by position, which every
// commit and proof passes through, and recently used nodes by hash. Cached
// nodes are immutable and found by hash, so the cache never changes an
// answer, only how many store reads it takes.
package statetree
