package privval

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/ledgerd/ledgerd/internal/durable"

	"github.com/ledgerd/ledgerd/crypto"
)

// maxKeyFileSize bounds the key file read.
const maxKeyFileSize = 4 << 10

const keyType = "ed25519"

// keyFileJSON is the validator key file. The address and public key are
// redundant with the seed; they let an operator see whose key it is and
// let the loader detect a damaged file.
type keyFileJSON struct {
	Type    string         `json:"type"`
	Address crypto.Address `json:"address"`
	PubKey  crypto.PubKey  `json:"pub_key"`
	Seed    string         `json:"priv_key_seed"`
}

// LoadKeyFile reads the validator key at path. It refuses a key file that
// group or other users may access (telling the operator to chmod 600 it),
// one that is not a regular file, and one whose contents are malformed or
// inconsistent (the address or public key does not match the seed). A
// missing file is an error wrapping os.ErrNotExist.
func LoadKeyFile(path string) (crypto.PrivKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return crypto.PrivKey{}, fmt.Errorf("privval: key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return crypto.PrivKey{}, fmt.Errorf("privval: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return crypto.PrivKey{}, fmt.Errorf("privval: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return crypto.PrivKey{}, fmt.Errorf("privval: key file %s has mode %04o: other users may read the validator key; "+
			"run `chmod 600 %s` (and consider the key exposed if they could)", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return crypto.PrivKey{}, fmt.Errorf("privval: read key file %s: %w", path, err)
	}
	k, err := decodeKeyFile(b)
	if err != nil {
		return crypto.PrivKey{}, fmt.Errorf("privval: key file %s: %w", path, err)
	}
	return k, nil
}

func decodeKeyFile(b []byte) (crypto.PrivKey, error) {
	if len(b) > maxKeyFileSize {
		return crypto.PrivKey{}, fmt.Errorf("over %d bytes", maxKeyFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var kf keyFileJSON
	if err := dec.Decode(&kf); err != nil {
		return crypto.PrivKey{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return crypto.PrivKey{}, errors.New("trailing data")
	}
	if kf.Type != keyType {
		return crypto.PrivKey{}, fmt.Errorf("key type %q, want %q", kf.Type, keyType)
	}
	if len(kf.Seed) != 2*crypto.SeedSize {
		return crypto.PrivKey{}, fmt.Errorf("seed: want %d hex characters", 2*crypto.SeedSize)
	}
	seed, err := hex.DecodeString(kf.Seed)
	if err != nil {
		return crypto.PrivKey{}, fmt.Errorf("seed: %w", err)
	}
	k, err := crypto.PrivKeyFromSeed(seed)
	if err != nil {
		return crypto.PrivKey{}, err
	}
	if k.PubKey() != kf.PubKey || k.PubKey().Address() != kf.Address {
		return crypto.PrivKey{}, errors.New("public key or address does not match the seed: the file is damaged")
	}
	return k, nil
}

// LoadOrGenKeyFile loads the validator key at path, or, when there is no
// file there, generates a key and writes it: mode 0600 in a directory
// created with mode 0700, through a temporary file that is fsynced and then
// linked into place, so the key file is either absent or complete and an
// existing key is never overwritten (if another process creates it first,
// its key is loaded and returned).
func LoadOrGenKeyFile(path string) (crypto.PrivKey, error) {
	k, err := LoadKeyFile(path)
	if !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	k, err = crypto.GenerateKey(nil)
	if err != nil {
		return crypto.PrivKey{}, fmt.Errorf("privval: %w", err)
	}
	err = WriteKeyFile(path, k)
	if errors.Is(err, os.ErrExist) {
		return LoadKeyFile(path)
	}
	if err != nil {
		return crypto.PrivKey{}, err
	}
	return k, nil
}

// WriteKeyFile writes k to a new key file at path (mode 0600), atomically
// and durably. It never overwrites: if path exists it fails with an error
// wrapping os.ErrExist.
func WriteKeyFile(path string, k crypto.PrivKey) error {
	b, err := json.MarshalIndent(keyFileJSON{
		Type:    keyType,
		Address: k.PubKey().Address(),
		PubKey:  k.PubKey(),
		Seed:    hex.EncodeToString(k.Seed()),
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("privval: encode key file: %w", err)
	}
	if err := durable.CreateFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("privval: write key file %s: %w", path, err)
	}
	return nil
}
