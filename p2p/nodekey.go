package p2p

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/ledgerd/ledgerd/internal/durable"

	libp2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// maxNodeKeyFileBytes bounds the node key file read from disk.
const maxNodeKeyFileBytes = 4 << 10

// nodeKeyFile is the on-disk form of the node identity: the libp2p
// protobuf encoding of the private key, and the peer ID for operators.
type nodeKeyFile struct {
	PrivKey []byte `json:"priv_key"` // base64 in JSON
	ID      string `json:"id"`
}

// LoadOrGenNodeKey returns the node identity stored at path, generating an
// ed25519 key and writing it there (mode 0600, parent directories 0700) when
// the file does not exist. It refuses a file that is readable or writable by
// group or others, and a file whose stored ID does not match its key.
func LoadOrGenNodeKey(path string) (libp2pcrypto.PrivKey, error) {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return genNodeKey(path)
	case err != nil:
		return nil, fmt.Errorf("node key %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("node key %s: not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("node key %s: mode %04o lets group or others access it; chmod 600 it", path, perm)
	}
	if info.Size() > maxNodeKeyFileBytes {
		return nil, fmt.Errorf("node key %s: %d bytes, at most %d", path, info.Size(), maxNodeKeyFileBytes)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node key %s: %w", path, err)
	}
	var f nodeKeyFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("node key %s: %w", path, err)
	}
	key, err := libp2pcrypto.UnmarshalPrivateKey(f.PrivKey)
	if err != nil {
		return nil, fmt.Errorf("node key %s: %w", path, err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("node key %s: %w", path, err)
	}
	if f.ID != "" && f.ID != id.String() {
		return nil, fmt.Errorf("node key %s: stored id %s does not match the key's %s", path, f.ID, id)
	}
	return key, nil
}

func genNodeKey(path string) (libp2pcrypto.PrivKey, error) {
	key, _, err := libp2pcrypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate node key: %w", err)
	}
	raw, err := libp2pcrypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal node key: %w", err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("node key id: %w", err)
	}
	out, err := json.MarshalIndent(nodeKeyFile{PrivKey: raw, ID: id.String()}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode node key: %w", err)
	}
	if err := durable.CreateFile(path, append(out, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("write node key %s: %w", path, err)
	}
	return key, nil
}
