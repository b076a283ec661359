package privval

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"

	"github.com/ledgerd/ledgerd/internal/durable"

	"github.com/ledgerd/ledgerd/crypto"
)

// MaxStateFileSize bounds the state file; DecodeState and Load refuse
// anything larger before parsing it.
const MaxStateFileSize = 16 << 10

// stateJSON is the state file: JSON for operators, with a CRC-32C over the
// canonical binary form of the fields so that damage which still parses
// (a changed digit in the height) is detected instead of trusted.
type stateJSON struct {
	Height    uint64           `json:"height,string"`
	Round     uint32           `json:"round"`
	Step      Step             `json:"step"`
	BlockID   crypto.Hash      `json:"block_id"`
	SignBytes string           `json:"sign_bytes"`
	Signature crypto.Signature `json:"signature"`
	Checksum  string           `json:"checksum"`
}

// checksum returns the CRC-32C of ls's canonical encoding, in hex.
func checksum(ls LastSigned) string {
	b := []byte("ledgerd/privval/state/v1")
	b = binary.BigEndian.AppendUint64(b, ls.Height)
	b = binary.BigEndian.AppendUint32(b, ls.Round)
	b = append(b, byte(ls.Step))
	b = append(b, ls.BlockID[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ls.SignBytes)))
	b = append(b, ls.SignBytes...)
	b = append(b, ls.Sig[:]...)
	return fmt.Sprintf("%08x", crc32.Checksum(b, castagnoli))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// EncodeState returns the state file contents for ls. It refuses an
// invalid ls, so no state that Load would reject is ever written.
func EncodeState(ls LastSigned) ([]byte, error) {
	if err := ls.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(stateJSON{
		Height:    ls.Height,
		Round:     ls.Round,
		Step:      ls.Step,
		BlockID:   ls.BlockID,
		SignBytes: hex.EncodeToString(ls.SignBytes),
		Signature: ls.Sig,
		Checksum:  checksum(ls),
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("privval: encode state: %w", err)
	}
	return append(b, '\n'), nil
}

// DecodeState parses state file contents. It returns an error, and never
// panics, for anything but a complete, valid state whose checksum matches:
// unknown or missing fields, trailing data, bad hex, out-of-range values or
// input over MaxStateFileSize.
func DecodeState(b []byte) (LastSigned, error) {
	if len(b) > MaxStateFileSize {
		return LastSigned{}, fmt.Errorf("privval: state is %d bytes, at most %d", len(b), MaxStateFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var sj stateJSON
	if err := dec.Decode(&sj); err != nil {
		return LastSigned{}, fmt.Errorf("privval: decode state: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return LastSigned{}, errors.New("privval: decode state: trailing data")
	}
	if len(sj.SignBytes) > 2*MaxSignBytes {
		return LastSigned{}, fmt.Errorf("privval: decode state: sign bytes over %d bytes", MaxSignBytes)
	}
	sb, err := hex.DecodeString(sj.SignBytes)
	if err != nil {
		return LastSigned{}, fmt.Errorf("privval: decode state: sign bytes: %w", err)
	}
	ls := LastSigned{Height: sj.Height, Round: sj.Round, Step: sj.Step, BlockID: sj.BlockID, SignBytes: sb, Sig: sj.Signature}
	if len(sb) == 0 {
		ls.SignBytes = nil
	}
	if want := checksum(ls); sj.Checksum != want {
		return LastSigned{}, fmt.Errorf("privval: decode state: checksum %q, want %q: the file is damaged", sj.Checksum, want)
	}
	if err := ls.Validate(); err != nil {
		return LastSigned{}, err
	}
	return ls, nil
}

// MemStateStore is an in-memory StateStore for tests and the deterministic
// simulator. Save replaces the state atomically, so a simulated crash at
// any instant leaves either the old or the new state, never a mix; a
// restarted validator is a new Signer on the same MemStateStore.
type MemStateStore struct {
	mu sync.Mutex
	ls LastSigned
}

// NewMemStateStore returns a store holding the zero state.
func NewMemStateStore() *MemStateStore { return &MemStateStore{} }

// Load returns a copy of the state last saved (the zero state if none).
func (m *MemStateStore) Load() (LastSigned, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ls.clone(), nil
}

// Save replaces the state with a copy of ls, or fails for an invalid ls.
func (m *MemStateStore) Save(ls LastSigned) error {
	if err := ls.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ls = ls.clone()
	return nil
}

// FileStateStore keeps the state in a JSON file. Save writes a temporary
// file beside it, fsyncs it, renames it over the state file and fsyncs the
// directory, so the file always holds a complete state (the old or the
// new) whenever the process or the machine dies. A leftover temporary file
// from a crash is ignored by Load and replaced by the next Save.
type FileStateStore struct {
	path string
	mu   sync.Mutex
}

// NewFileStateStore returns a store for the state file at path; it does
// not touch the file system until Load or Save.
func NewFileStateStore(path string) *FileStateStore { return &FileStateStore{path: path} }

// Path returns the state file's path.
func (s *FileStateStore) Path() string { return s.path }

// Load reads the state file. A missing file is the zero state (a fresh
// home whose validator has never signed). Any other problem, an empty,
// truncated, oversized or damaged file included, is an error: a validator
// must never go back to the zero state by accident.
func (s *FileStateStore) Load() (LastSigned, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return LastSigned{}, nil
	}
	if err != nil {
		return LastSigned{}, fmt.Errorf("privval: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxStateFileSize+1))
	if err != nil {
		return LastSigned{}, fmt.Errorf("privval: read %s: %w", s.path, err)
	}
	ls, err := DecodeState(b)
	if err != nil {
		return LastSigned{}, fmt.Errorf("state file %s is unusable (%w); refusing to start from an empty state, "+
			"which could double-sign: restore the file, or delete it only if this key has never signed on this chain", s.path, err)
	}
	return ls, nil
}

// Save atomically and durably replaces the state file with ls (mode 0600),
// creating its directory (mode 0700) if needed.
func (s *FileStateStore) Save(ls LastSigned) error {
	b, err := EncodeState(ls)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := durable.WriteFile(s.path, b, 0o600); err != nil {
		return fmt.Errorf("privval: save state: %w", err)
	}
	return nil
}
