//go:build !unix

package node

import (
	"errors"
	"os"
)

// errLocked: another process holds the lock.
var errLocked = errors.New("locked")

// lockFile has no advisory lock to take on this platform; it reports
// errLocked when the lock file already names a process, which a crashed
// node leaves behind (the operator removes the file).
func lockFile(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() > 0 {
		return errLocked
	}
	return nil
}

func unlockFile(f *os.File) error { return f.Truncate(0) }
