package snapshot

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/statetree"
)

// Why a manifest is refused. Whoever offered it is to blame.
var (
	// ErrManifestMalformed: the bytes are not a manifest of a known
	// format, or a count or size is out of the format's bounds.
	ErrManifestMalformed = errors.New("snapshot: malformed manifest")
	// ErrManifestPartition: the chunks' subtrees do not cover the key
	// space exactly once, in key order, so even chunks that each prove
	// themselves could not add up to the whole state.
	ErrManifestPartition = errors.New("snapshot: manifest chunks do not partition the key space")
	// ErrManifestNotTrusted: the manifest's height or app hash differs
	// from the trusted ones (the app hash of a header verified by the
	// light client).
	ErrManifestNotTrusted = errors.New("snapshot: manifest does not match the trusted app hash")
)

// Why a chunk is refused: all but ErrManifestMismatch blame whoever sent
// the chunk. Every chunk error wraps exactly one of them.
var (
	// ErrChunkTooLarge: more than MaxChunkBytes.
	ErrChunkTooLarge = errors.New("snapshot: chunk too large")
	// ErrChunkMalformed: not a canonical chunk encoding (truncated,
	// trailing bytes, out-of-bound counts and lengths, wrong format).
	ErrChunkMalformed = errors.New("snapshot: malformed chunk")
	// ErrChunkStale: a chunk of a snapshot at another height.
	ErrChunkStale = errors.New("snapshot: chunk of another height")
	// ErrChunkIndex: an index the manifest does not have, or not the one
	// asked for.
	ErrChunkIndex = errors.New("snapshot: chunk index out of range")
	// ErrChunkPosition: the depth or prefix differ from the manifest's
	// entry at the chunk's index.
	ErrChunkPosition = errors.New("snapshot: chunk is not where the manifest places it")
	// ErrChunkLeaves: keys out of order, outside the subtree, a meta that
	// is not the preimage of its key, or an empty value or meta.
	ErrChunkLeaves = errors.New("snapshot: chunk leaves are invalid")
	// ErrChunkProof: the leaves and siblings do not hash to the trusted
	// app hash: some value, key or sibling is wrong, or leaves are missing
	// or added.
	ErrChunkProof = errors.New("snapshot: chunk does not prove against the app hash")
	// ErrManifestMismatch: the chunk proves itself against the app hash,
	// so its content is the state's, but its leaf count, size or hash
	// differs from the manifest's entry. The manifest is wrong, not the
	// chunk: drop the snapshot and blame whoever offered the manifest.
	ErrManifestMismatch = errors.New("snapshot: manifest entry does not match a chunk that proves itself")
)

// VerifyManifest checks m against the trusted state after height: the
// light client verified the header of block height+1, whose AppHash is
// appHash. It returns m.ValidateBasic's error, or one wrapping
// ErrManifestNotTrusted when the height or app hash differ.
func VerifyManifest(m *Manifest, height uint64, appHash [32]byte) error {
	if err := m.ValidateBasic(); err != nil {
		return err
	}
	if m.Height != height {
		return fmt.Errorf("%w: manifest of height %d, trusted height %d", ErrManifestNotTrusted, m.Height, height)
	}
	if m.AppHash != appHash {
		return fmt.Errorf("%w: manifest says %x, the header %x", ErrManifestNotTrusted, m.AppHash, appHash)
	}
	return nil
}

// VerifyChunk decodes raw and checks it against m, a manifest that
// VerifyManifest accepted for appHash: the chunk is of m's height, its
// index is one of m's, its depth and prefix are that entry's, its keys
// are strictly increasing and all under the prefix, every meta is its
// key's preimage (ledger.LeafKeyOf), and the subtree the leaves make,
// folded up with the siblings, gives appHash. Only then is it compared
// with the entry's leaf count, size and hash, a mismatch there being the
// manifest's fault (ErrManifestMismatch). Every error wraps one of the
// ErrChunk* sentinels, ErrManifestMismatch or ErrManifestNotTrusted, and
// names the chunk's index when it could be read. The chunk returned
// aliases raw.
func VerifyChunk(m *Manifest, appHash [32]byte, raw []byte) (*Chunk, error) {
	if m.AppHash != appHash {
		return nil, fmt.Errorf("%w: manifest says %x, the header %x", ErrManifestNotTrusted, m.AppHash, appHash)
	}
	c, err := DecodeChunk(raw)
	if err != nil {
		return nil, err
	}
	if err := checkChunk(m, appHash, c); err != nil {
		return nil, err
	}
	e := m.Chunks[c.Index]
	switch {
	case uint64(len(c.Leaves)) != uint64(e.Leaves):
		return nil, fmt.Errorf("%w: chunk %d has %d leaves, the manifest says %d", ErrManifestMismatch, c.Index, len(c.Leaves), e.Leaves)
	case uint64(len(raw)) != uint64(e.Size):
		return nil, fmt.Errorf("%w: chunk %d has %d bytes, the manifest says %d", ErrManifestMismatch, c.Index, len(raw), e.Size)
	case sha256.Sum256(raw) != e.Hash:
		return nil, fmt.Errorf("%w: chunk %d hashes to %x, the manifest says %x", ErrManifestMismatch, c.Index, sha256.Sum256(raw), e.Hash)
	}
	return c, nil
}

// checkChunk checks a decoded chunk's content against m and appHash, all
// of VerifyChunk but the comparison with the entry's counts and hash.
func checkChunk(m *Manifest, appHash [32]byte, c *Chunk) error {
	if c.Height != m.Height {
		return fmt.Errorf("%w: chunk %d is of height %d, the snapshot of height %d", ErrChunkStale, c.Index, c.Height, m.Height)
	}
	if uint64(c.Index) >= uint64(len(m.Chunks)) {
		return fmt.Errorf("%w: chunk %d of a snapshot of %d chunks", ErrChunkIndex, c.Index, len(m.Chunks))
	}
	e := m.Chunks[c.Index]
	if c.Depth != e.Depth || c.Prefix != e.Prefix {
		return fmt.Errorf("%w: chunk %d is the subtree at depth %d, prefix %x; the manifest's is at depth %d, prefix %x",
			ErrChunkPosition, c.Index, c.Depth, c.Prefix, e.Depth, e.Prefix)
	}
	if err := checkLeaves(c); err != nil {
		return fmt.Errorf("%w: chunk %d: %w", ErrChunkLeaves, c.Index, err)
	}
	h, err := statetree.SubtreeHash(c.Depth, c.Leaves)
	if err != nil { // checkLeaves makes this unreachable; kept as a check
		return fmt.Errorf("%w: chunk %d: %w", ErrChunkLeaves, c.Index, err)
	}
	if root := statetree.FoldSiblings(c.Depth, c.Prefix, h, c.Siblings); root != appHash {
		return fmt.Errorf("%w: chunk %d folds up to %x, want %x", ErrChunkProof, c.Index, root, appHash)
	}
	return nil
}

// checkLeaves checks that c's keys are strictly increasing and under its
// prefix, that no value or meta is empty, and that each meta is the
// preimage of its key.
func checkLeaves(c *Chunk) error {
	for i, l := range c.Leaves {
		switch {
		case len(l.Value) == 0:
			return fmt.Errorf("leaf %d (key %x): empty value", i, l.Key)
		case len(l.Meta) == 0:
			return fmt.Errorf("leaf %d (key %x): empty meta", i, l.Key)
		case !underPrefix(l.Key, c.Prefix, c.Depth):
			return fmt.Errorf("leaf %d: key %x is outside the subtree", i, l.Key)
		case i > 0 && bytes.Compare(c.Leaves[i-1].Key[:], l.Key[:]) >= 0:
			return fmt.Errorf("leaf %d: key %x does not follow %x", i, l.Key, c.Leaves[i-1].Key)
		}
		k, err := ledger.LeafKeyOf(l.Meta)
		if err != nil {
			return fmt.Errorf("leaf %d (key %x): meta: %w", i, l.Key, err)
		}
		if k != l.Key {
			return fmt.Errorf("leaf %d: meta is the preimage of %x, not of key %x", i, k, l.Key)
		}
	}
	return nil
}
