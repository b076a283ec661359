package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// Baseline is what a campaign measured of how fast consensus gets
// through faults: the rounds it takes per height and the time from the
// heal to liveness. TestSimulator compares its default campaign with the
// one recorded in testdata/baseline.json, so that a slowdown fails even
// far inside the liveness bound. Seeds fix the runs, so unchanged code
// measures exactly the recorded numbers; the tolerances let an intended
// change (which moves every run's timing) through and stop a real
// slowdown (docs/testing.md, "The simulator after issue 10", has the
// numbers behind them).
type Baseline struct {
	// Seeds is the campaign: RandomOptions of seeds 0 to Seeds-1.
	Seeds int `json:"seeds"`
	// Rounds counts the heights decided by the round of their first
	// honest decision: rounds 0 to 6, and 7 or more.
	Rounds []uint64 `json:"rounds"`
	// RoundsPerHeight is the mean number of rounds a height took (its
	// decision round plus one).
	RoundsPerHeight float64 `json:"rounds_per_height"`
	// The time from the heal to liveness over the runs: median, 90th and
	// 99th percentile, and the maximum (recorded, not compared: one run's
	// worst case moves by half when any change reshuffles the runs).
	RecoveryP50 Millis `json:"recovery_p50_ms"`
	RecoveryP90 Millis `json:"recovery_p90_ms"`
	RecoveryP99 Millis `json:"recovery_p99_ms"`
	RecoveryMax Millis `json:"recovery_max_ms"`
}

// Millis is a duration in whole milliseconds.
type Millis int64

// Std returns m as a time.Duration.
func (m Millis) Std() time.Duration { return time.Duration(m) * time.Millisecond }

// Tolerances of Baseline.Compare: how much worse than the baseline a
// campaign may measure.
const (
	// TolRoundsPerHeight: the mean rounds per height, relative.
	TolRoundsPerHeight = 0.04
	// TolLateShare: the share of heights decided after round 0, relative.
	TolLateShare = 0.10
	// TolRecovery: the median and 90th percentile recovery, relative.
	TolRecovery = 0.10
	// TolRecoveryP99: the 99th percentile recovery, relative.
	TolRecoveryP99 = 0.25
)

// MaxBaselineSize bounds a baseline file; DecodeBaseline refuses more.
const MaxBaselineSize = 4 << 10

// Baseline returns what the campaign measured.
func (c *Campaign) Baseline() Baseline {
	b := Baseline{Seeds: c.Runs, Rounds: append([]uint64(nil), c.Rounds[:]...)}
	var heights uint64
	for _, k := range c.Rounds {
		heights += k
	}
	if heights > 0 {
		b.RoundsPerHeight = math.Round(1e4*float64(c.RoundSum+heights)/float64(heights)) / 1e4
	}
	rec := slices.Clone(c.Recoveries)
	slices.Sort(rec)
	pct := func(p int) Millis {
		if len(rec) == 0 {
			return 0
		}
		return Millis(rec[(len(rec)-1)*p/100] / time.Millisecond)
	}
	b.RecoveryP50, b.RecoveryP90, b.RecoveryP99, b.RecoveryMax = pct(50), pct(90), pct(99), pct(100)
	return b
}

// lateShare is the share of heights decided after round 0.
func (b Baseline) lateShare() float64 {
	var all uint64
	for _, k := range b.Rounds {
		all += k
	}
	if all == 0 {
		return 0
	}
	return float64(all-b.Rounds[0]) / float64(all)
}

// Compare returns how cur is worse than the baseline b beyond the
// tolerances, one line each; none when it is not.
func (b Baseline) Compare(cur Baseline) []string {
	var out []string
	worse := func(what string, base, now, tol float64, unit string) {
		if now > base*(1+tol) {
			out = append(out, fmt.Sprintf("%s %.4g%s, baseline %.4g%s (+%.1f%%, tolerance %.0f%%)",
				what, now, unit, base, unit, 100*(now/base-1), 100*tol))
		}
	}
	if b.Seeds != cur.Seeds {
		return []string{fmt.Sprintf("the baseline is of %d seeds, the campaign ran %d", b.Seeds, cur.Seeds)}
	}
	worse("rounds per height", b.RoundsPerHeight, cur.RoundsPerHeight, TolRoundsPerHeight, "")
	worse("share of heights decided after round 0", b.lateShare(), cur.lateShare(), TolLateShare, "")
	worse("recovery p50", float64(b.RecoveryP50), float64(cur.RecoveryP50), TolRecovery, " ms")
	worse("recovery p90", float64(b.RecoveryP90), float64(cur.RecoveryP90), TolRecovery, " ms")
	worse("recovery p99", float64(b.RecoveryP99), float64(cur.RecoveryP99), TolRecoveryP99, " ms")
	return out
}

// Encode returns the baseline file's contents.
func (b Baseline) Encode() []byte {
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		panic(err) // a struct of numbers always encodes
	}
	return append(out, '\n')
}

// DecodeBaseline parses a baseline file. It returns an error, and never
// panics, for anything but one complete baseline of sane values: unknown
// fields, trailing data, a wrong number of round buckets, negative or
// non-finite numbers, input over MaxBaselineSize.
func DecodeBaseline(data []byte) (Baseline, error) {
	if len(data) > MaxBaselineSize {
		return Baseline{}, fmt.Errorf("baseline: %d bytes, at most %d", len(data), MaxBaselineSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Baseline
	if err := dec.Decode(&b); err != nil {
		return Baseline{}, fmt.Errorf("baseline: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Baseline{}, errors.New("baseline: trailing data")
	}
	switch {
	case b.Seeds <= 0:
		return Baseline{}, fmt.Errorf("baseline: %d seeds", b.Seeds)
	case len(b.Rounds) != RoundBuckets:
		return Baseline{}, fmt.Errorf("baseline: %d round buckets, want %d", len(b.Rounds), RoundBuckets)
	case math.IsNaN(b.RoundsPerHeight) || math.IsInf(b.RoundsPerHeight, 0) || b.RoundsPerHeight < 0:
		return Baseline{}, fmt.Errorf("baseline: rounds per height %v", b.RoundsPerHeight)
	case b.RecoveryP50 < 0 || b.RecoveryP90 < b.RecoveryP50 || b.RecoveryP99 < b.RecoveryP90 || b.RecoveryMax < b.RecoveryP99:
		return Baseline{}, fmt.Errorf("baseline: recovery p50 %d, p90 %d, p99 %d, max %d ms out of order",
			b.RecoveryP50, b.RecoveryP90, b.RecoveryP99, b.RecoveryMax)
	}
	return b, nil
}
