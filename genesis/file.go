package genesis

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Load reads and parses the genesis file at path, with Parse's rules; the
// error names the file. A document Load returns is valid.
func Load(path string) (*Doc, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load genesis: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxDocBytes+1))
	if err != nil {
		return nil, fmt.Errorf("load genesis: %w", err)
	}
	d, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("load genesis %s: %w", path, err)
	}
	return d, nil
}

// Save writes d to path as indented JSON with mode 0644, atomically: a
// crash leaves either the old file or the complete new one, never a part.
// It refuses an invalid document, so whatever Save writes, Load reads
// back with the same Hash.
func (d *Doc) Save(path string) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("save genesis %s: %w", path, err)
	}
	b, err := marshal(d, "  ")
	if err != nil {
		return fmt.Errorf("save genesis %s: %w", path, err)
	}
	b = append(b, '\n')
	if len(b) > MaxDocBytes {
		return fmt.Errorf("save genesis %s: %d bytes, above the limit of %d", path, len(b), MaxDocBytes)
	}
	if err := writeFileAtomic(path, b, 0o644); err != nil {
		return fmt.Errorf("save genesis: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file beside path, syncs it,
// renames it over path and syncs the directory, so the rename survives a
// crash.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	dirf, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer dirf.Close()
	if err = dirf.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
