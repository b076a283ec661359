package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFileName is the file in a home that a running ledgerd holds locked;
// it contains the holder's process ID.
const LockFileName = "ledgerd.lock"

// ErrHomeInUse is wrapped by LockHome's error when another process holds
// the home.
var ErrHomeInUse = errors.New("home is in use")

// HomeLock is the exclusive hold of a running ledgerd on its home. The
// operating system drops it when the process ends, however it ends, so a
// killed node never leaves a stale lock behind.
type HomeLock struct {
	path string
	f    *os.File
}

// LockHome takes the exclusive lock of home (creating home, mode 0700, if
// needed) and writes this process's ID into the lock file. If another
// process holds it, the error wraps ErrHomeInUse and names the home and the
// holder's process ID. Take it before anything else touches the home.
func LockHome(home string) (*HomeLock, error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("create home %s: %w", home, err)
	}
	path := filepath.Join(home, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("%w: home %s is in use by another ledgerd (%s); stop it first, or use another --home",
				ErrHomeInUse, home, holder(path))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt(pid, 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("write lock file %s: %w", path, err)
	}
	return &HomeLock{path: path, f: f}, nil
}

// holder describes the process named in a held lock file.
func holder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "pid unknown"
	}
	s := strings.TrimSpace(string(b))
	if _, err := strconv.Atoi(s); err != nil || len(s) > 20 {
		return "pid unknown"
	}
	return "pid " + s
}

// Path is the lock file's path.
func (l *HomeLock) Path() string { return l.path }

// Release drops the lock. The file stays: removing it would let a third
// process lock a new file while a second still waits on the old one.
func (l *HomeLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := unlockFile(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
