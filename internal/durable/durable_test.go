package durable

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileReplacesAndCreateFileRefuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	p := filepath.Join(dir, "f")
	if err := WriteFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("content %q, want two", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, want 0644", fi.Mode().Perm())
	}
	if err := CreateFile(p, []byte("three"), 0o600); !errors.Is(err, os.ErrExist) {
		t.Fatalf("CreateFile over an existing file: %v, want os.ErrExist", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("CreateFile changed the existing file: %q", b)
	}
	q := filepath.Join(dir, "g")
	if err := CreateFile(q, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(q); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("%d entries left in the directory, want 2 (no temporary files)", len(entries))
	}
}

func TestEnsureDirRefusesAFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := EnsureDir(p); err == nil {
		t.Fatal("EnsureDir accepted a regular file")
	}
}

// TestRemoveTempsDeletesLeftoversOnly: the temporary files a killed writer
// leaves beside a file are removed, the file itself and other files are
// not, and a file without leftovers is a no-op.
func TestRemoveTempsDeletesLeftoversOnly(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := WriteFile(p, []byte("state"), 0o600); err != nil {
		t.Fatal(err)
	}
	var leftovers []string
	for i := 0; i < 3; i++ {
		f, err := os.CreateTemp(dir, tempPattern(p)) // what a write killed before its cleanup leaves
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		leftovers = append(leftovers, f.Name())
	}
	other := filepath.Join(dir, ".other.json.tmp-1")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	removed, err := RemoveTemps(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != len(leftovers) {
		t.Fatalf("removed %q, want %q", removed, leftovers)
	}
	for _, l := range leftovers {
		if _, err := os.Stat(l); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("leftover %s still there: %v", l, err)
		}
	}
	for _, keep := range []string{p, other} {
		if _, err := os.Stat(keep); err != nil {
			t.Fatalf("%s was removed: %v", keep, err)
		}
	}
	if removed, err := RemoveTemps(p); err != nil || len(removed) != 0 {
		t.Fatalf("second RemoveTemps: %q, %v", removed, err)
	}
}

// TestReadBoundedRefusesALargerFile: a file of exactly limit bytes reads
// back whole; one byte more is refused.
func TestReadBoundedRefusesALargerFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := WriteFile(path, []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadBounded(path, 5); err != nil || string(b) != "12345" {
		t.Fatalf("at the limit: %q, %v", b, err)
	}
	if _, err := ReadBounded(path, 4); err == nil || !strings.Contains(err.Error(), "larger than 4 bytes") {
		t.Fatalf("over the limit: %v", err)
	}
}
