package node

import (
	"testing"

	"github.com/ledgerd/ledgerd/ledger/snapshot"
	"github.com/ledgerd/ledgerd/p2p"
)

// TestSnapshotBoundsFitTheWire: every manifest and chunk the snapshot
// format allows can cross the snapshot protocol, whose bounds p2p keeps
// without knowing the format.
func TestSnapshotBoundsFitTheWire(t *testing.T) {
	if snapshot.MaxManifestBytes > p2p.MaxManifestBytes {
		t.Errorf("a manifest may take %d bytes; the protocol carries at most %d", snapshot.MaxManifestBytes, p2p.MaxManifestBytes)
	}
	if snapshot.MaxChunkBytes > p2p.MaxChunkBytes {
		t.Errorf("a chunk may take %d bytes; the protocol carries at most %d", snapshot.MaxChunkBytes, p2p.MaxChunkBytes)
	}
	if snapshot.MaxChunks > p2p.MaxSnapshotChunks {
		t.Errorf("a snapshot may have %d chunks; the protocol fetches at most %d", snapshot.MaxChunks, p2p.MaxSnapshotChunks)
	}
}
