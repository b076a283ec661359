// Package wallet holds a user's keys and sends their transfers: an
// encrypted keystore (one file per key, mode 0600, argon2id and
// XChaCha20-Poly1305) and a Sender that keeps nonces in order across many
// transfers in a row. The ledger-wallet command is built on it.
package wallet

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// Errors callers can compare.
var (
	ErrWrongPassphrase = errors.New("wrong passphrase (or the key file was altered)")
	ErrKeyNotFound     = errors.New("no such key")
	ErrKeyExists       = errors.New("a key with this name already exists")
)

// KDFParams are argon2id's costs. They are stored in each key file, so
// files written with other costs stay readable.
type KDFParams struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// DefaultKDF is RFC 9106's second recommended setting: 3 passes over 64 MiB.
var DefaultKDF = KDFParams{Time: 3, MemoryKiB: 64 << 10, Threads: 4}

// Bounds on the costs a key file may ask for, so a crafted file cannot
// make the wallet allocate without limit or accept trivial costs.
const (
	minKDFMemoryKiB = 8
	maxKDFMemoryKiB = 1 << 21 // 2 GiB
	maxKDFTime      = 64
	maxKeyFileBytes = 16 << 10
	fileVersion     = 1
	kdfName         = "argon2id"
	cipherName      = "xchacha20-poly1305"
	saltSize        = 16
)

func (p KDFParams) validate() error {
	if p.Time < 1 || p.Time > maxKDFTime || p.MemoryKiB < minKDFMemoryKiB || p.MemoryKiB > maxKDFMemoryKiB || p.Threads < 1 {
		return fmt.Errorf("argon2id costs out of range: time %d (1-%d), memory %d KiB (%d-%d), threads %d (1-255)",
			p.Time, maxKDFTime, p.MemoryKiB, minKDFMemoryKiB, maxKDFMemoryKiB, p.Threads)
	}
	return nil
}

// KeyInfo is the public part of a stored key.
type KeyInfo struct {
	Name    string         `json:"name"`
	Address crypto.Address `json:"address"`
	PubKey  crypto.PubKey  `json:"pub_key"`
}

// keyFile is a key file on disk. Everything but the ciphertext is
// authenticated as associated data, so changing the address, the key or
// the costs makes decryption fail.
type keyFile struct {
	Version    int            `json:"version"`
	Address    crypto.Address `json:"address"`
	PubKey     crypto.PubKey  `json:"pub_key"`
	KDF        kdfJSON        `json:"kdf"`
	Cipher     cipherJSON     `json:"cipher"`
	Ciphertext api.HexBytes   `json:"ciphertext"`
}

type kdfJSON struct {
	Name string `json:"name"`
	KDFParams
	Salt api.HexBytes `json:"salt"`
}

type cipherJSON struct {
	Name  string       `json:"name"`
	Nonce api.HexBytes `json:"nonce"`
}

func (f *keyFile) aad() []byte {
	h := *f
	h.Ciphertext = nil
	b, _ := json.Marshal(h) // plain fields: cannot fail
	return append([]byte("ledgerd-wallet/v1\x00"), b...)
}

// Keystore is a directory of key files, one per name (NAME.json).
type Keystore struct {
	dir string
	kdf KDFParams
}

// OpenKeystore opens (creating, mode 0700) the keystore in dir.
func OpenKeystore(dir string) (*Keystore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keystore %s: %w", dir, err)
	}
	return &Keystore{dir: dir, kdf: DefaultKDF}, nil
}

// SetKDF sets the costs used for keys written from now on.
func (ks *Keystore) SetKDF(p KDFParams) error {
	if err := p.validate(); err != nil {
		return err
	}
	ks.kdf = p
	return nil
}

// Dir is the keystore's directory.
func (ks *Keystore) Dir() string { return ks.dir }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$`)

// ValidateName accepts 1 to 64 letters, digits, '.', '_' and '-', not
// starting with '.' or '-'.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("key name %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter, digit or '_'", name)
	}
	return nil
}

func (ks *Keystore) path(name string) string { return filepath.Join(ks.dir, name+".json") }

// Add encrypts key under passphrase and stores it as name. It refuses an
// existing name.
func (ks *Keystore) Add(name string, key crypto.PrivKey, passphrase []byte) (KeyInfo, error) {
	if err := ValidateName(name); err != nil {
		return KeyInfo{}, err
	}
	if len(passphrase) == 0 {
		return KeyInfo{}, errors.New("empty passphrase")
	}
	f, err := encrypt(key, passphrase, ks.kdf)
	if err != nil {
		return KeyInfo{}, err
	}
	buf, err := jsonIndent(f)
	if err != nil {
		return KeyInfo{}, err
	}
	if err := writeNew(ks.path(name), buf); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return KeyInfo{}, fmt.Errorf("key %q: %w", name, ErrKeyExists)
		}
		return KeyInfo{}, err
	}
	return KeyInfo{Name: name, Address: f.Address, PubKey: f.PubKey}, nil
}

// Generate creates a new random key and stores it as name.
func (ks *Keystore) Generate(name string, passphrase []byte) (KeyInfo, error) {
	k, err := crypto.GenerateKey(nil)
	if err != nil {
		return KeyInfo{}, err
	}
	return ks.Add(name, k, passphrase)
}

func encrypt(key crypto.PrivKey, passphrase []byte, p KDFParams) (*keyFile, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	f := &keyFile{Version: fileVersion, Address: key.PubKey().Address(), PubKey: key.PubKey(),
		KDF:    kdfJSON{Name: kdfName, KDFParams: p, Salt: make([]byte, saltSize)},
		Cipher: cipherJSON{Name: cipherName, Nonce: make([]byte, chacha20poly1305.NonceSizeX)}}
	if _, err := io.ReadFull(rand.Reader, f.KDF.Salt); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(rand.Reader, f.Cipher.Nonce); err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(deriveKey(passphrase, f.KDF))
	if err != nil {
		return nil, err
	}
	f.Ciphertext = aead.Seal(nil, f.Cipher.Nonce, key.Seed(), f.aad())
	return f, nil
}

func deriveKey(passphrase []byte, k kdfJSON) []byte {
	return argon2.IDKey(passphrase, k.Salt, k.Time, k.MemoryKiB, k.Threads, chacha20poly1305.KeySize)
}

// decodeKeyFile parses and checks a key file's structure.
func decodeKeyFile(b []byte) (*keyFile, error) {
	if len(b) > maxKeyFileBytes {
		return nil, fmt.Errorf("key file over %d bytes", maxKeyFileBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f keyFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	switch {
	case f.Version != fileVersion:
		return nil, fmt.Errorf("key file version %d, want %d", f.Version, fileVersion)
	case f.KDF.Name != kdfName:
		return nil, fmt.Errorf("key file KDF %q, want %q", f.KDF.Name, kdfName)
	case f.Cipher.Name != cipherName:
		return nil, fmt.Errorf("key file cipher %q, want %q", f.Cipher.Name, cipherName)
	case len(f.KDF.Salt) < saltSize:
		return nil, errors.New("key file salt too short")
	case len(f.Cipher.Nonce) != chacha20poly1305.NonceSizeX:
		return nil, errors.New("key file nonce has the wrong size")
	case f.PubKey.Address() != f.Address:
		return nil, errors.New("key file address does not match its public key")
	}
	if err := f.KDF.KDFParams.validate(); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	return &f, nil
}

func (f *keyFile) decrypt(passphrase []byte) (crypto.PrivKey, error) {
	aead, err := chacha20poly1305.NewX(deriveKey(passphrase, f.KDF))
	if err != nil {
		return crypto.PrivKey{}, err
	}
	seed, err := aead.Open(nil, f.Cipher.Nonce, f.Ciphertext, f.aad())
	if err != nil {
		return crypto.PrivKey{}, ErrWrongPassphrase
	}
	k, err := crypto.PrivKeyFromSeed(seed)
	if err != nil {
		return crypto.PrivKey{}, fmt.Errorf("key file: %w", err)
	}
	if k.PubKey() != f.PubKey {
		return crypto.PrivKey{}, errors.New("key file: decrypted key does not match its public key")
	}
	return k, nil
}

// readFile reads a key file, refusing one other users may read.
func (ks *Keystore) readFile(name string) (*keyFile, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	p := ks.path(name)
	fh, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("key %q: %w", name, ErrKeyNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", p)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("key file %s has mode %04o: other users may read it; run `chmod 600 %s`", p, perm, p)
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxKeyFileBytes+1))
	if err != nil {
		return nil, err
	}
	f, err := decodeKeyFile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return f, nil
}

// Key decrypts the key stored as name.
func (ks *Keystore) Key(name string, passphrase []byte) (crypto.PrivKey, error) {
	f, err := ks.readFile(name)
	if err != nil {
		return crypto.PrivKey{}, err
	}
	k, err := f.decrypt(passphrase)
	if err != nil {
		return crypto.PrivKey{}, fmt.Errorf("key %q: %w", name, err)
	}
	return k, nil
}

// Info returns the public part of the key stored as name (no passphrase).
func (ks *Keystore) Info(name string) (KeyInfo, error) {
	f, err := ks.readFile(name)
	if err != nil {
		return KeyInfo{}, err
	}
	return KeyInfo{Name: name, Address: f.Address, PubKey: f.PubKey}, nil
}

// List returns every stored key, by name. Unreadable files are reported
// in the error, after the readable keys.
func (ks *Keystore) List() ([]KeyInfo, error) {
	ents, err := os.ReadDir(ks.dir)
	if err != nil {
		return nil, err
	}
	var out []KeyInfo
	var errs []error
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() || ValidateName(name) != nil {
			continue
		}
		info, err := ks.Info(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, errors.Join(errs...)
}

// Delete removes the key stored as name.
func (ks *Keystore) Delete(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	err := os.Remove(ks.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("key %q: %w", name, ErrKeyNotFound)
	}
	return err
}

// Export returns the key file of name as stored: still encrypted.
func (ks *Keystore) Export(name string) ([]byte, error) {
	f, err := ks.readFile(name)
	if err != nil {
		return nil, err
	}
	return jsonIndent(f)
}

// Import stores an exported key file as name, after checking that
// passphrase decrypts it.
func (ks *Keystore) Import(name string, data []byte, passphrase []byte) (KeyInfo, error) {
	if err := ValidateName(name); err != nil {
		return KeyInfo{}, err
	}
	f, err := decodeKeyFile(data)
	if err != nil {
		return KeyInfo{}, err
	}
	if _, err := f.decrypt(passphrase); err != nil {
		return KeyInfo{}, err
	}
	buf, err := jsonIndent(f)
	if err != nil {
		return KeyInfo{}, err
	}
	if err := writeNew(ks.path(name), buf); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return KeyInfo{}, fmt.Errorf("key %q: %w", name, ErrKeyExists)
		}
		return KeyInfo{}, err
	}
	return KeyInfo{Name: name, Address: f.Address, PubKey: f.PubKey}, nil
}

func jsonIndent(f *keyFile) ([]byte, error) {
	buf, err := json.MarshalIndent(f, "", "  ")
	return append(buf, '\n'), err
}

// IsKeyFile reports whether data looks like a wallet key file (as opposed
// to a ledgerd validator-style key file or a raw seed).
func IsKeyFile(data []byte) bool {
	var probe struct {
		Ciphertext *string `json:"ciphertext"`
		KDF        *any    `json:"kdf"`
	}
	return json.Unmarshal(data, &probe) == nil && probe.Ciphertext != nil && probe.KDF != nil
}

// writeNew writes data to path with mode 0600, never replacing an
// existing file, and syncs it: a temporary file is written and synced,
// then hard-linked into place (which fails if path exists).
func writeNew(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-key-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name)
	if err = tmp.Chmod(0o600); err == nil {
		if _, err = tmp.Write(data); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(name, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fs.ErrExist
		}
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
