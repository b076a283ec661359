package genesis

import (
	"fmt"
	"io"
	"os"

	"github.com/ledgerd/ledgerd/internal/durable"
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
	if err := durable.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("save genesis: %w", err)
	}
	return nil
}
