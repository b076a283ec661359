package statetree

import (
	"encoding/binary"
	"fmt"
)

// Record tags: the byte after the tree's prefix says what a key holds.
// The layout is described in the package comment.
const (
	tagNode   = 'N' // p || 'N' || version || depth || path -> node
	tagRoot   = 'R' // p || 'R' || version -> root record
	tagStale  = 'S' // p || 'S' || staleSince || version || depth || path -> nothing
	tagOldest = 'O' // p || 'O' -> oldest retained version
	tagLatest = 'V' // p || 'V' -> newest committed version (sorts after N, R and S: see doc.go)
	tagFloor  = 'F' // p || 'F' -> version below which every node is garbage (set by an import)
	tagPruned = 'P' // p || 'P' -> version up to which pruning is complete

	// The hash-keyed layout this one replaced.
	tagOldNode = 'n'
	tagOldRoot = 'r'
	// The first cut of this layout kept the latest version under 'L',
	// which sorts before the nodes (see doc.go on why it moved).
	tagOldLatest = 'L'
)

// pathBytes is the length of a packed path of depth bits.
func pathBytes(depth int) int { return (depth + 7) / 8 }

// appendPosition appends version (8 bytes, big-endian), depth (2 bytes,
// big-endian) and the first depth bits of path, packed, unused low bits
// zero: a node's identity within the tree.
func appendPosition(k []byte, version uint64, depth int, path [32]byte) []byte {
	k = binary.BigEndian.AppendUint64(k, version)
	k = binary.BigEndian.AppendUint16(k, uint16(depth))
	p := truncate(path, depth)
	return append(k, p[:pathBytes(depth)]...)
}

// positionSize bounds an encoded position.
const positionSize = 8 + 2 + 32

func (t *Tree) tagged(tag byte, extra int) []byte {
	k := make([]byte, 0, len(t.prefix)+1+extra)
	return append(append(k, t.prefix...), tag)
}

// nodeKey is where the node stored by version's commit at depth on path
// lives.
func (t *Tree) nodeKey(version uint64, depth int, path [32]byte) []byte {
	return appendPosition(t.tagged(tagNode, positionSize), version, depth, path)
}

// nodeKeyFrom is the node key of a position in its encoded form.
func (t *Tree) nodeKeyFrom(position []byte) []byte {
	return append(t.tagged(tagNode, len(position)), position...)
}

func (t *Tree) versionKey(tag byte, version uint64) []byte {
	return binary.BigEndian.AppendUint64(t.tagged(tag, 8), version)
}

// rootKey is where version's root record lives.
func (t *Tree) rootKey(version uint64) []byte { return t.versionKey(tagRoot, version) }

// staleKey is the stale-index entry saying that the node at (version,
// depth, path) is not part of version since or of any later version.
func (t *Tree) staleKey(since, version uint64, depth int, path [32]byte) []byte {
	k := binary.BigEndian.AppendUint64(t.tagged(tagStale, 8+positionSize), since)
	return appendPosition(k, version, depth, path)
}

func (t *Tree) recordKey(tag byte) []byte { return t.tagged(tag, 0) }

// parsePosition checks an encoded position (version, depth, path) read from
// the store: a depth of at most KeyBits, exactly its path's bytes, and the
// path's unused low bits zero. It returns the version and depth.
func parsePosition(b []byte) (version uint64, depth int, err error) {
	if len(b) < 10 {
		return 0, 0, fmt.Errorf("position of %d bytes, at least 10", len(b))
	}
	version = binary.BigEndian.Uint64(b)
	depth = int(binary.BigEndian.Uint16(b[8:10]))
	if depth > KeyBits {
		return 0, 0, fmt.Errorf("position at depth %d, at most %d", depth, KeyBits)
	}
	path := b[10:]
	if len(path) != pathBytes(depth) {
		return 0, 0, fmt.Errorf("position at depth %d with %d path bytes, want %d", depth, len(path), pathBytes(depth))
	}
	if rem := depth % 8; rem != 0 && path[len(path)-1]&(0xff>>uint(rem)) != 0 {
		return 0, 0, fmt.Errorf("position at depth %d with bits set beyond it", depth)
	}
	return version, depth, nil
}

// parseStaleEntry splits a stale-index key with the tree's prefix and tag
// removed into the version since which the node is stale and the node's
// encoded position, checking both.
func parseStaleEntry(b []byte) (since uint64, position []byte, err error) {
	if len(b) < 8 {
		return 0, nil, fmt.Errorf("stale entry of %d bytes, at least 18", len(b))
	}
	since = binary.BigEndian.Uint64(b)
	position = b[8:]
	version, _, err := parsePosition(position)
	if err != nil {
		return 0, nil, fmt.Errorf("stale entry: %w", err)
	}
	if version >= since {
		return 0, nil, fmt.Errorf("stale entry: node of version %d stale since %d", version, since)
	}
	return since, position, nil
}

// rootRecordSize is a root record's length: hash || version || kind ||
// leaves.
const rootRecordSize = 32 + refSize

func encodeRootRecord(r ref) []byte {
	return appendRef(append(make([]byte, 0, rootRecordSize), r.hash[:]...), r)
}

// decodeRootRecord parses the root record of version.
func decodeRootRecord(version uint64, b []byte) (ref, error) {
	if len(b) != rootRecordSize {
		return ref{}, fmt.Errorf("root record of %d bytes, want %d", len(b), rootRecordSize)
	}
	r := readRef([32]byte(b[:32]), b[32:])
	if err := r.check(); err != nil {
		return ref{}, fmt.Errorf("root record: %w", err)
	}
	if r.version > version {
		return ref{}, fmt.Errorf("root record of version %d names a node of version %d", version, r.version)
	}
	return r, nil
}

func encodeU64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
