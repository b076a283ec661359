package chaos

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/node"
	"github.com/ledgerd/ledgerd/privval"
	"github.com/ledgerd/ledgerd/rpc/client"
)

// labSeq makes the names of successive networks of one process distinct.
var labSeq atomic.Int64

// labPrefix starts the name of every namespace, container and Docker
// network this package creates; the owning process's pid follows, so what
// a killed run left behind can be found.
const labPrefix = "ldgc"

// cluster is a running network the faults act on: processes (procCluster)
// or containers (dockerCluster). Slots 0 to Validators()-1 are the
// validators; slot Validators() is the byzantine twin once AddTwin made it.
type cluster interface {
	// Validators is the number of validators.
	Validators() int
	// Client is the RPC client of slot i; it reaches the node whatever
	// partition is in force.
	Client(i int) *client.Client
	// Home is slot i's home directory on this machine.
	Home(i int) string
	// Start starts (or restarts) slot i.
	Start(i int) error
	// Kill sends SIGKILL to slot i and waits for it to die.
	Kill(i int) error
	// Pause freezes slot i; Resume thaws it.
	Pause(i int) error
	Resume(i int) error
	// Partition cuts every validator in side off from every validator
	// not in it, until Heal.
	Partition(side []int) error
	Heal() error
	// AddTwin prepares the twin of validator of: a fresh home holding a
	// copy of its validator key, its own node key and addresses, every
	// validator as a persistent peer. It returns the twin's slot; Start
	// runs it. A second call replaces the previous twin's home.
	AddTwin(of int) (int, error)
	// Logs returns the last max bytes of slot i's output.
	Logs(i, max int) string
	// Close stops everything and releases what the cluster created
	// (namespaces, containers, networks); node homes are kept.
	Close()
}

// others returns the validators not in side.
func others(c cluster, side []int) []int {
	in := make(map[int]bool, len(side))
	for _, i := range side {
		in[i] = true
	}
	var out []int
	for i := 0; i < c.Validators(); i++ {
		if !in[i] {
			out = append(out, i)
		}
	}
	return out
}

// writeTwinHome makes dst a fresh home running validator src's key: src's
// genesis and validator key, a new node key, an empty data directory (so
// a fresh last-signed state: the twin signs whatever its own view says),
// and the configuration cfg, whose Home is set to dst.
func writeTwinHome(src, dst string, cfg *node.Config) error {
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("twin home: %w", err)
	}
	srcCfg := node.DefaultConfig(src)
	doc, err := genesis.Load(srcCfg.GenesisFile())
	if err != nil {
		return fmt.Errorf("twin home: %w", err)
	}
	key, err := privval.LoadKeyFile(srcCfg.ValidatorKeyFile())
	if err != nil {
		return fmt.Errorf("twin home: %w", err)
	}
	cfg.Home = dst
	// The twin is byzantine on purpose: it must sign although the chain
	// holds its original's signatures, which the double-sign check refuses.
	cfg.Consensus.DoubleSignCheckHeight = 0
	if _, err := node.InitHome(dst, node.InitOptions{Genesis: doc, ValidatorKey: &key, Config: cfg}); err != nil {
		return fmt.Errorf("twin home: %w", err)
	}
	return nil
}

// newestSegment returns the path and size of the newest (highest
// numbered) segment of the WAL in home.
func newestSegment(home string) (string, int64, error) {
	dir := node.DefaultConfig(home).WALDir()
	segs, err := filepath.Glob(filepath.Join(dir, "wal-*.log"))
	if err != nil {
		return "", 0, err
	}
	if len(segs) == 0 {
		return "", 0, fmt.Errorf("no WAL segment in %s", dir)
	}
	// Names are zero-padded, so the lexically last is the newest.
	path := segs[0]
	for _, s := range segs[1:] {
		if s > path {
			path = s
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	return path, fi.Size(), nil
}

// cutWAL truncates the newest WAL segment of home where f says; it
// reports the segment, its size and the offset cut at.
func cutWAL(home string, f Fault) (seg string, size, offset int64, err error) {
	seg, size, err = newestSegment(home)
	if err != nil {
		return "", 0, 0, fmt.Errorf("walcut: %w", err)
	}
	if f.Cut < 0 || f.Cut >= 1 {
		return "", 0, 0, errors.New("walcut: cut point outside [0, 1)")
	}
	offset = max(f.CutOffset(size), 0)
	if err := os.Truncate(seg, offset); err != nil {
		return "", 0, 0, fmt.Errorf("walcut: %w", err)
	}
	return filepath.Base(seg), size, offset, nil
}
