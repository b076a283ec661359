package ledger

import (
	"errors"
	"fmt"
	"time"
)

// Duration is a time.Duration written in JSON as a Go duration string ("1s").
type Duration time.Duration

// MarshalText writes the duration as "1.5s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// TimeoutParams is one step's timeout: Base + round*Delta.
type TimeoutParams struct {
	Base  Duration `json:"base"`
	Delta Duration `json:"delta"`
}

// For returns the timeout for round r.
func (t TimeoutParams) For(round uint32) time.Duration {
	return t.Base.Std() + time.Duration(round)*t.Delta.Std()
}

// ConsensusParams are the chain-wide limits and timeouts fixed in genesis.
type ConsensusParams struct {
	MaxBlockBytes    uint64        `json:"max_block_bytes,string"`
	MaxBlockTxs      uint64        `json:"max_block_txs,string"`
	MaxEvidence      uint64        `json:"max_evidence,string"`
	TimeoutPropose   TimeoutParams `json:"timeout_propose"`
	TimeoutPrevote   TimeoutParams `json:"timeout_prevote"`
	TimeoutPrecommit TimeoutParams `json:"timeout_precommit"`
	// TimeoutCommit is how long a node waits after deciding a block before
	// starting the next height, to collect late precommits.
	TimeoutCommit Duration `json:"timeout_commit"`
}

// Hard ceilings on the consensus parameters; genesis files may set lower.
const (
	MaxBlockBytesLimit = 32 << 20
	MaxBlockTxsLimit   = 200_000
	MaxEvidenceLimit   = 1_000
	maxTimeout         = time.Hour
)

// DefaultConsensusParams are sensible values for a local network.
func DefaultConsensusParams() ConsensusParams {
	return ConsensusParams{
		MaxBlockBytes:    4 << 20,
		MaxBlockTxs:      20_000,
		MaxEvidence:      100,
		TimeoutPropose:   TimeoutParams{Base: Duration(1 * time.Second), Delta: Duration(500 * time.Millisecond)},
		TimeoutPrevote:   TimeoutParams{Base: Duration(500 * time.Millisecond), Delta: Duration(250 * time.Millisecond)},
		TimeoutPrecommit: TimeoutParams{Base: Duration(500 * time.Millisecond), Delta: Duration(250 * time.Millisecond)},
		TimeoutCommit:    Duration(200 * time.Millisecond),
	}
}

// Validate reports the first unusable parameter, in words an operator can act on.
func (p *ConsensusParams) Validate() error {
	switch {
	case p.MaxBlockBytes < 1024:
		return fmt.Errorf("max_block_bytes %d is below 1024", p.MaxBlockBytes)
	case p.MaxBlockBytes > MaxBlockBytesLimit:
		return fmt.Errorf("max_block_bytes %d is above the limit %d", p.MaxBlockBytes, MaxBlockBytesLimit)
	case p.MaxBlockTxs == 0:
		return errors.New("max_block_txs must be at least 1")
	case p.MaxBlockTxs > MaxBlockTxsLimit:
		return fmt.Errorf("max_block_txs %d is above the limit %d", p.MaxBlockTxs, MaxBlockTxsLimit)
	case p.MaxEvidence > MaxEvidenceLimit:
		return fmt.Errorf("max_evidence %d is above the limit %d", p.MaxEvidence, MaxEvidenceLimit)
	}
	for _, t := range []struct {
		name string
		v    TimeoutParams
	}{{"timeout_propose", p.TimeoutPropose}, {"timeout_prevote", p.TimeoutPrevote}, {"timeout_precommit", p.TimeoutPrecommit}} {
		if t.v.Base <= 0 {
			return fmt.Errorf("%s.base must be positive", t.name)
		}
		if t.v.Delta < 0 {
			return fmt.Errorf("%s.delta must not be negative", t.name)
		}
		if t.v.Base.Std() > maxTimeout || t.v.Delta.Std() > maxTimeout {
			return fmt.Errorf("%s is above %s", t.name, maxTimeout)
		}
	}
	if p.TimeoutCommit < 0 || p.TimeoutCommit.Std() > maxTimeout {
		return fmt.Errorf("timeout_commit must be between 0 and %s", maxTimeout)
	}
	return nil
}
