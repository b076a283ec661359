// Package statetree is the authenticated, versioned map behind the app hash:
// 32-byte keys to byte-string values, persisted in a kv store, with a
// Merkle root per version, proofs of membership and non-membership, pruning
// of old versions, and the parts a state snapshot is cut into and restored
// from.
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
// insertions and deletions that produced it. A leaf also keeps a Meta (the
// key's preimage, for restoring snapshots), which is stored but not hashed.
//
// # Storage
//
// A node is stored under its position and the version whose commit wrote
// it, as in Jellyfish: the writes of a commit all start with the new
// version, so they are appends in key order, and LevelDB's compaction no
// longer reshuffles the whole tree as it grows. Under the caller's prefix p
// (integers big-endian):
//
//	p || 'N' || version (8) || depth (2) || path  -> node
//	p || 'R' || version (8)                       -> root record
//	p || 'S' || staleSince (8) || version (8) || depth (2) || path -> (empty)
//	p || 'V'  -> latest version (8)       p || 'O'  -> oldest version (8)
//	p || 'P'  -> pruned-through version   p || 'F'  -> import floor (8)
//
// depth is the node's depth (0 for the root, at most 256) and path the
// first depth bits of every key under it, packed into ceil(depth/8) bytes,
// unused low bits zero. A node's value is
//
//	leaf:  0x00 || key (32) || meta length (2) || meta || value
//	inner: 0x01 || left hash (32) || right hash (32) || left ref || right ref
//	ref:   version (8) || kind (1: 0 empty, 1 leaf, 2 inner) || leaves (8)
//
// A commit writes new nodes at the end of the 'N' range, its root record at
// the end of 'R', its stale entries at the end of 'S' and the latest record
// 'V', which sorts after all three on purpose: a LevelDB table holding one
// commit's writes then spans the tails of N, R and S only, and overlaps no
// older node in the next level (a latest record before 'N' made every
// table span all of N, and compaction rewrite it; see docs/benchmarks.md).
//
// An inner node tells where its children are stored (their depth and
// path follow from its own) and how many leaves each holds, none of which is
// hashed. A root record is root hash (32) || ref. Every decoder checks the
// lengths and bounds (MaxValueSize, MaxMetaSize), and a node read from the
// store must hash to what its parent says, sit on its path, hold the leaves
// its parent counts and have children no newer than itself; anything else
// is ErrCorrupt.
//
// Latest is absent (0) until the first commit; Oldest is absent (0) until
// the first Prune or import, version 0 being the empty tree. A store that
// holds keys of the old hash-keyed layout (p || 'n' || hash, p || 'r' ||
// version), or a latest record under 'L' (where this layout's first cut
// kept it), fails every operation with ErrOldLayout: it cannot be read,
// the node resyncs its state.
//
// Commit only adds operations to the caller's batch and never writes to the
// store, so the tree's writes land atomically with everything else in the
// batch, and a batch that is never written leaves no trace. History is
// linear: a commit's base must be the latest version. A commit writes, at
// the new version, every node on the paths it changes: O(k log n) for k
// changes in a tree of n keys. A node whose subtree did not change is left
// where it is and the new nodes refer to it by its version. A leaf that
// moves (compressed up after its sibling emptied, or pushed down by a new
// neighbour) is rewritten at its new position with the new version; a leaf
// whose Meta alone changes is rewritten in place, its hash unchanged.
//
// # The stale index and pruning
//
// A node is never shared between two positions, and a version's nodes are
// reached only through its own root, so reachability is simple to track:
// the commit that makes version next records, in the stale index with
// staleSince = next, every stored node of the base version's tree that it
// replaced (a rewritten inner node, a changed, deleted or moved leaf),
// which is every node of base that next no longer reaches. A node stale
// since s was reachable from the versions from its own up to s-1, and from
// none at or after s (versions only grow from the latest). So a node stale
// since s <= k serves only versions below k, and a node never marked stale
// serves the latest version. No reference counts are needed.
//
// Prune(keepFrom) first records keepFrom as Oldest, in a batch of its own,
// then deletes each node stale since keepFrom or earlier together with its
// entry (the node first, should a batch end between the two), then the
// root records below keepFrom, in batches of at most maxOps deletions, and
// last records in 'P' that pruning up to keepFrom is complete, so that the
// next Prune starts its scans there. Reads check Oldest before they start,
// and a read that then finds its root record or a node missing re-reads
// Oldest and reports ErrVersionPruned: since Oldest is written before any
// deletion, a missing node of a version at or above Oldest is corruption,
// below it a race with pruning. Prune never deletes a node that a version
// at or above keepFrom reaches, nor anything a commit in flight writes
// (whose stale entries are above the latest version), so it runs beside
// commits and reads. A crash at any point leaves Oldest recorded (or not, if the
// first batch was lost, and then nothing was deleted), some stale entries
// deleted with their nodes, and the rest in the index: calling Prune again
// finishes the job, and no retained version loses a node.
//
// # Snapshots
//
// Partition cuts a version into parts of at most maxLeaves leaves: starting
// from the root, an inner node with more than maxLeaves leaves is replaced
// by its two children. Inner nodes record their children's leaf counts, so
// this reads only the nodes it splits. Leaves streams a part's leaves (with
// their Meta), SubtreeHash recomputes a part's hash from its leaves alone,
// and FoldSiblings folds that hash up to the root through the part's
// siblings; a state-sync client checks every part on arrival this way.
//
// Why the parts compose: a part is either the root or a child of a node
// that was split, and a node is split only when it holds more than
// maxLeaves >= 1 leaves, so at least two, which makes it an inner node of
// the canonical tree (compression only ever replaces subtrees of one leaf).
// Every level above a part is therefore an inner node, so folding with
// inner-node hashing is exactly how the root is computed, with no
// compression across a part's boundary; and a part's canonical subtree is
// the one at its position, including when it holds one leaf (the leaf sits
// exactly there, its parent being inner) or none (an empty half of an inner
// node). A part's hash depends only on its leaves and depth (SubtreeHash),
// so a client needs no tree to verify it.
//
// ImportSubtree writes a part's canonical nodes at the version being
// imported, and FinishImport joins the parts' references into the nodes
// above them, the root record, Latest and Oldest. It also sets the import
// floor 'F': every node of an older version is garbage (the imported tree's
// nodes are all its own), and the next Prune deletes them by key range
// (nodes sort by version) before it removes the floor. Nodes of an import
// that never finished lie above Latest: a new import at the same version
// rewrites the same nodes, one at a higher version leaves them below its
// floor, and one at a lower version refuses to start (ErrImportConflict)
// until AbortImport has removed them.
//
// # Cache
//
// A Tree keeps a byte-bounded cache of nodes (DefaultCacheBytes, or
// WithCacheBytes): the top levels of the tree by position, which every
// commit and proof passes through, and recently used nodes by the version
// that stored them and their hash, which is how parents refer to them.
// Cached nodes are exact copies of stored ones, so the cache never changes
// an answer, only how many store reads it takes; the nodes of a commit that
// was never written are dropped before the next commit (see nodeCache).
package statetree
