package mempool

import (
	"errors"
	"fmt"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// Config bounds the pool. Sizes are encoded transaction bytes
// (len(tx.Encode())), not Go memory.
type Config struct {
	// ChainID is the only chain whose transactions are admitted.
	ChainID string
	// MaxTxs and MaxBytes cap the whole pool.
	MaxTxs   int
	MaxBytes int
	// MaxTxBytes caps one transaction; at most ledger.MaxTxBytes.
	MaxTxBytes int
	// MaxPerSender caps the transactions held for one sender.
	MaxPerSender int
	// NonceWindow is how far ahead of the sender's committed nonce a
	// transaction may be: nonces n with committed <= n < committed+NonceWindow
	// are admitted (as executable or queued).
	NonceWindow uint64
	// ReplaceBumpPercent is the fee increase, in percent of the old fee
	// and at least 1, that a same-nonce replacement must offer. 0..100.
	ReplaceBumpPercent uint64
	// TTL is how long a transaction may stay in the pool, measured from
	// its admission with Now and enforced at each Update. Zero disables it.
	TTL time.Duration
	// Now is the clock for TTL; nil means time.Now. Tests inject their own.
	Now func() time.Time
}

// DefaultConfig returns the defaults of a node's config.toml for chainID:
// 100,000 transactions, 64 MiB, 256 per sender, a nonce window of 256,
// a 10% replacement bump, and a 10-minute TTL.
func DefaultConfig(chainID string) Config {
	return Config{
		ChainID:            chainID,
		MaxTxs:             100_000,
		MaxBytes:           64 << 20,
		MaxTxBytes:         ledger.MaxTxBytes,
		MaxPerSender:       256,
		NonceWindow:        256,
		ReplaceBumpPercent: 10,
		TTL:                10 * time.Minute,
	}
}

// Validate reports the first unusable setting.
func (c *Config) Validate() error {
	if err := crypto.ValidateChainID(c.ChainID); err != nil {
		return fmt.Errorf("mempool config: %w", err)
	}
	switch {
	case c.MaxTxs <= 0 || c.MaxBytes <= 0 || c.MaxPerSender <= 0:
		return errors.New("mempool config: MaxTxs, MaxBytes and MaxPerSender must be positive")
	case c.MaxTxBytes <= 0 || c.MaxTxBytes > ledger.MaxTxBytes:
		return fmt.Errorf("mempool config: MaxTxBytes %d must be in 1..%d", c.MaxTxBytes, ledger.MaxTxBytes)
	case c.MaxBytes < c.MaxTxBytes:
		return fmt.Errorf("mempool config: MaxBytes %d is below MaxTxBytes %d", c.MaxBytes, c.MaxTxBytes)
	case c.NonceWindow == 0:
		return errors.New("mempool config: NonceWindow must be at least 1")
	case c.ReplaceBumpPercent > 100:
		return fmt.Errorf("mempool config: ReplaceBumpPercent %d is above 100", c.ReplaceBumpPercent)
	case c.TTL < 0:
		return errors.New("mempool config: TTL must not be negative")
	}
	return nil
}

// minReplacementFee is the lowest fee that may replace a pooled
// transaction paying fee: fee plus ReplaceBumpPercent, rounded up, plus at
// least 1. ok is false when no fee can (the bump overflows).
func (c *Config) minReplacementFee(fee uint64) (min uint64, ok bool) {
	pct := c.ReplaceBumpPercent
	bump := fee/100*pct + (fee%100*pct+99)/100 // pct <= 100: no overflow
	if bump == 0 {
		bump = 1
	}
	if fee > ^uint64(0)-bump {
		return 0, false
	}
	return fee + bump, true
}
