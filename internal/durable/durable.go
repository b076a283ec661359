// Package durable writes files so that a crash at any instant leaves either
// the old state or the new one: data is fsynced before it is made visible,
// and the directory is fsynced after every entry it gains or loses.
package durable

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// SyncDir fsyncs a directory, making the creation, removal or renaming of
// its entries durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return d.Close()
}

// EnsureDir creates dir (mode 0700) if it does not exist and makes its name
// durable in its parent.
func EnsureDir(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(filepath.Clean(dir)))
}

// WriteFile replaces path with data (mode perm): it writes a temporary file
// beside path, fsyncs it, renames it over path and fsyncs the directory.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, os.Rename)
}

// CreateFile creates path with data (mode perm) the same way, but never
// replaces an existing file: if path exists it fails with an error wrapping
// os.ErrExist (the temporary file is linked into place, not renamed).
func CreateFile(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, os.Link)
}

// tempPattern is the name pattern of write's temporary files for path.
func tempPattern(path string) string { return "." + filepath.Base(path) + ".tmp-*" }

// RemoveTemps deletes the temporary files that WriteFile and CreateFile
// leave beside path when the process dies inside them (after creating the
// temporary file, before removing it), and fsyncs the directory if it
// removed any. It returns the names removed. Call it when no write of path
// is in progress, such as at start-up: a leftover is never the file itself,
// which the rename or link put in place whole or not at all.
func RemoveTemps(path string) ([]string, error) {
	dir := filepath.Dir(path)
	matches, err := filepath.Glob(filepath.Join(dir, tempPattern(path)))
	if err != nil {
		return nil, fmt.Errorf("list temporary files of %s: %w", path, err)
	}
	var removed []string
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, fmt.Errorf("remove temporary file: %w", err)
		}
		removed = append(removed, m)
	}
	if len(removed) > 0 {
		if err := SyncDir(dir); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

func write(path string, data []byte, perm os.FileMode, place func(tmp, path string) error) error {
	dir := filepath.Dir(path)
	if err := EnsureDir(dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tempPattern(path)) // mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	// Removed before the directory is synced, so no second copy survives a crash.
	defer os.Remove(tmp)
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = place(tmp, path)
	}
	if err != nil {
		return err
	}
	os.Remove(tmp)
	return SyncDir(dir)
}

// ReadBounded reads the file at path, refusing one of more than limit
// bytes without reading past limit+1: what a durable file holds is read
// back by code that must not trust its size (a damaged or planted file).
func ReadBounded(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}
