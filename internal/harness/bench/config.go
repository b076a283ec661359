package bench

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Config says what network to drive and how hard.
type Config struct {
	// Spawn, when positive, generates and starts a network of Spawn
	// validators running Bin, and stops it when the run ends.
	Spawn int
	// Bin is the ledgerd binary spawned nodes run.
	Bin string
	// Dir is where a spawned network's homes go; empty means a temporary
	// directory, removed afterwards unless Keep is set.
	Dir  string
	Keep bool
	// TimeoutCommit and MaxBlockTxs go into a spawned network's genesis
	// (0: ledger.DefaultConsensusParams).
	TimeoutCommit time.Duration
	MaxBlockTxs   uint64
	// NodeArgs are passed to every spawned `ledgerd start`.
	NodeArgs []string

	// Testnet, when Spawn is 0, is the directory of a running network made
	// by `ledgerd testnet` (testnet.json, nodeI/, accounts/), for example
	// scripts/localnet.sh's build/localnet. Node pids come from nodeI/pid.
	Testnet string

	// Accounts is how many funded accounts send (spawn: how many are
	// generated; testnet: at most this many of DIR/accounts are used).
	Accounts int
	// Rate is the offered load in transfers per second; 0 sends as fast as
	// the network admits, with at most InFlight transfers admitted and not
	// yet committed.
	Rate     float64
	InFlight int
	// Duration is how long transfers are submitted; Warmup is the start of
	// it left out of the figures (negative: min(5s, Duration/5)); Drain is
	// how long to wait afterwards for admitted transfers to commit.
	Duration time.Duration
	Warmup   time.Duration
	Drain    time.Duration
	// Workers is the number of submitting workers (each a sequential
	// keep-alive HTTP client) per target node.
	Workers int
	// Txs is how many transfers to pre-sign; 0 means enough for Rate over
	// Duration (with Rate 0: MaxRateGuess per second).
	Txs int
	// Targets are the nodes transfers are sent to (nil: all); Observe is
	// the node whose blocks are watched.
	Targets []int
	Observe int

	// Progress, when set, receives a line every few seconds while the load
	// runs, and notes on setup.
	Progress io.Writer
	// Args is the command line, recorded in the report.
	Args []string
}

// MaxRateGuess is the rate assumed when sizing the pre-signed transfers of
// a run with Rate 0 and no Txs: a run that sends them all reports it
// (Totals.Exhausted) and needs a larger Txs.
const MaxRateGuess = 15_000

// Defaults applied by Run to zero fields.
const (
	DefaultAccounts      = 2000
	DefaultDuration      = 30 * time.Second
	DefaultDrain         = 30 * time.Second
	DefaultWorkers       = 32
	DefaultInFlight      = 20_000
	DefaultTimeoutCommit = 100 * time.Millisecond
)

// withDefaults returns c with zero fields set to their defaults, or an
// error naming the first unusable setting.
func (c Config) withDefaults() (Config, error) {
	if c.Spawn < 0 {
		return c, fmt.Errorf("spawn %d: want a positive number of validators", c.Spawn)
	}
	if (c.Spawn > 0) == (c.Testnet != "") {
		return c, errors.New("give exactly one of --spawn N and --testnet DIR")
	}
	if c.Spawn > 0 && c.Bin == "" {
		return c, errors.New("spawn: no ledgerd binary")
	}
	if c.Accounts == 0 {
		c.Accounts = DefaultAccounts
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Warmup < 0 {
		c.Warmup = min(5*time.Second, c.Duration/5)
	}
	if c.Drain == 0 {
		c.Drain = DefaultDrain
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.InFlight == 0 {
		c.InFlight = DefaultInFlight
	}
	if c.Spawn > 0 && c.TimeoutCommit == 0 {
		c.TimeoutCommit = DefaultTimeoutCommit
	}
	switch {
	case c.Accounts < 1:
		return c, fmt.Errorf("accounts %d: want at least 1", c.Accounts)
	case c.Rate < 0:
		return c, fmt.Errorf("rate %v: want 0 (as fast as possible) or a positive rate", c.Rate)
	case c.Duration < time.Second:
		return c, fmt.Errorf("duration %s: want at least 1s", c.Duration)
	case c.Warmup >= c.Duration:
		return c, fmt.Errorf("warm-up %s leaves nothing of the %s duration to measure", c.Warmup, c.Duration)
	case c.Drain < 0:
		return c, fmt.Errorf("drain %s: want a non-negative duration", c.Drain)
	case c.Workers < 1 || c.Workers > 200:
		return c, fmt.Errorf("workers %d per node: want 1 to 200 (a node serves 256 connections by default)", c.Workers)
	case c.InFlight < 1:
		return c, fmt.Errorf("in-flight %d: want at least 1", c.InFlight)
	case c.Txs < 0:
		return c, fmt.Errorf("txs %d: want a non-negative count", c.Txs)
	}
	return c, nil
}

// presignCount is how many transfers the run signs before it starts.
func (c *Config) presignCount() int {
	if c.Txs > 0 {
		return c.Txs
	}
	rate := c.Rate
	if rate == 0 {
		rate = MaxRateGuess
	}
	// 10% over the nominal count: the token bucket starts full.
	return int(rate*c.Duration.Seconds()*1.1) + c.Accounts
}
