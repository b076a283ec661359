package privval

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/ledger"
)

// signedState returns a valid LastSigned made by signing a precommit.
func signedState(t testing.TB, h uint64, r uint32, blk byte) LastSigned {
	t.Helper()
	s, err := New(testKey(t, 1), NewMemStateStore())
	if err != nil {
		t.Fatal(err)
	}
	v := &ledger.Vote{Type: ledger.Precommit, Height: h, Round: r, BlockID: block(blk)}
	if err := s.SignVote(chain, v); err != nil {
		t.Fatal(err)
	}
	return s.LastSigned()
}

func sameState(a, b LastSigned) bool {
	return a.Height == b.Height && a.Round == b.Round && a.Step == b.Step && a.BlockID == b.BlockID &&
		bytes.Equal(a.SignBytes, b.SignBytes) && a.Sig == b.Sig
}

func TestFileStateStore(t *testing.T) {
	t.Run("missing file on a fresh home is the zero state", func(t *testing.T) {
		ls, err := NewFileStateStore(filepath.Join(t.TempDir(), "data", "state.json")).Load()
		if err != nil || !ls.IsZero() {
			t.Fatalf("Load() = %+v, %v; want the zero state", ls, err)
		}
	})
	t.Run("save then load", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "data", "state.json")
		st := NewFileStateStore(path)
		for _, ls := range []LastSigned{signedState(t, 3, 0, 1), signedState(t, 4, 2, 0)} {
			if err := st.Save(ls); err != nil {
				t.Fatal(err)
			}
			got, err := NewFileStateStore(path).Load()
			if err != nil || !sameState(got, ls) {
				t.Fatalf("Load() = %+v, %v; want %+v", got, err, ls)
			}
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("state file: %v, mode %v; want 0600", err, fi.Mode().Perm())
		}
		if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("temporary file left behind: %v", err)
		}
	})
	t.Run("refuses to save an invalid state", func(t *testing.T) {
		st := NewFileStateStore(filepath.Join(t.TempDir(), "state.json"))
		if err := st.Save(LastSigned{Height: 1, Step: StepPrevote}); err == nil {
			t.Fatal("saved a state without sign bytes or signature")
		}
	})
}

// TestFileStateStoreCrash models the crash points of Save: a process that
// died while writing the temporary file, or after writing it but before the
// rename. Load returns the last complete state, and Save works again.
func TestFileStateStoreCrash(t *testing.T) {
	old, next := signedState(t, 7, 1, 1), signedState(t, 7, 2, 1)
	nextBytes, err := EncodeState(next)
	if err != nil {
		t.Fatal(err)
	}
	tmps := map[string][]byte{
		"torn temporary file":     nextBytes[:len(nextBytes)/2],
		"empty temporary file":    {},
		"complete temporary file": nextBytes, // died before the rename
		"garbage temporary file":  []byte("\x00\xff garbage"),
	}
	for name, tmp := range tmps {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			st := NewFileStateStore(path)
			if err := st.Save(old); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path+".tmp", tmp, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := NewFileStateStore(path).Load()
			if err != nil || !sameState(got, old) {
				t.Fatalf("Load() = %+v, %v; want the state before the crash", got, err)
			}
			if err := st.Save(next); err != nil {
				t.Fatal(err)
			}
			if got, err := st.Load(); err != nil || !sameState(got, next) {
				t.Fatalf("after the next Save, Load() = %+v, %v", got, err)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("state file written through a 0644 leftover: mode %v, %v", fi.Mode().Perm(), err)
			}
		})
	}
}

// TestCorruptStateIsAnError: damage of any kind stops the validator; it
// never falls back to the zero state, from which it could double-sign.
func TestCorruptStateIsAnError(t *testing.T) {
	good, err := EncodeState(signedState(t, 12345, 6, 1))
	if err != nil {
		t.Fatal(err)
	}
	height := bytes.Replace(good, []byte(`"12345"`), []byte(`"12344"`), 1)
	if bytes.Equal(height, good) {
		t.Fatal("bad test: height not found in the state file")
	}
	cases := map[string][]byte{
		"empty file":          {},
		"truncated":           good[:len(good)/2],
		"one digit of height": height,
		"not JSON":            []byte("\x00\x01\x02"),
		"unknown field":       bytes.Replace(good, []byte(`"round"`), []byte(`"rnd"`), 1),
		"trailing data":       append(bytes.Clone(good), []byte(`{}`)...),
		"empty object":        []byte(`{}`),
		"oversized":           append(bytes.Clone(good), bytes.Repeat([]byte(" "), MaxStateFileSize)...),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := NewFileStateStore(path).Load()
			if err == nil {
				t.Fatal("loaded a damaged state file")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name the file: %v", err)
			}
			if _, err := New(testKey(t, 1), NewFileStateStore(path)); err == nil {
				t.Fatal("a signer started on a damaged state file")
			}
		})
	}
}

func FuzzDecodeState(f *testing.F) {
	good, err := EncodeState(signedState(f, 9, 3, 1))
	if err != nil {
		f.Fatal(err)
	}
	zero, _ := EncodeState(LastSigned{})
	f.Add(good)
	f.Add(zero)
	f.Add(good[:40])
	f.Add([]byte(`{"height":"1","round":0,"step":2,"sign_bytes":"00"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ls, err := DecodeState(b)
		if err != nil {
			return
		}
		if err := ls.Validate(); err != nil {
			t.Fatalf("decoded an invalid state: %v", err)
		}
		again, err := EncodeState(ls)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		ls2, err := DecodeState(again)
		if err != nil || !sameState(ls, ls2) {
			t.Fatalf("round trip changed the state: %+v -> %+v (%v)", ls, ls2, err)
		}
	})
}
