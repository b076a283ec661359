package adversary

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ledgerd/ledgerd/internal/harness/bench"
	"github.com/ledgerd/ledgerd/ledger"
)

// Report is a run's outcome: the baseline, the limits derived from it, and
// one Result per attack.
type Report struct {
	Seed          uint64                 `json:"seed"`
	Rate          float64                `json:"rate_tx_s"`
	Intensity     float64                `json:"intensity"`
	AttackSeconds float64                `json:"attack_seconds"`
	Params        ledger.ConsensusParams `json:"consensus_params"`

	// Baselines has one entry per network the run spawned: the first, and
	// a fresh one after every attack that left its network unable to
	// commit.
	Baselines []Baseline `json:"baselines"`

	Results []*Result `json:"results"`
	// Fork is the first block-hash difference between nodes ("" if none);
	// CheckedHeight is how far every node's chain was compared.
	Forks         []string `json:"forks,omitempty"`
	CheckedHeight []uint64 `json:"checked_height"`
	// Admitted transfers over the run, those never committed, and those
	// committed more than once.
	Admitted   int `json:"admitted"`
	Lost       int `json:"lost"`
	Duplicates int `json:"duplicates"`
	// Refusals are the honest load's refused submissions by reason.
	Refusals map[string]int `json:"refusals"`
	Failed   bool           `json:"failed"`
}

// Baseline is the unattacked window's figures.
type Baseline struct {
	Seconds    float64 `json:"seconds"`
	Transfers  int     `json:"transfers"`
	P50MS      float64 `json:"p50_ms"`
	P99MS      float64 `json:"p99_ms"`
	IntervalMS float64 `json:"median_interval_ms"`
	MaxGapMS   float64 `json:"max_gap_ms"`
	// GapLimitMS is 2 x the median block interval plus the round-0
	// propose, prevote and precommit timeouts.
	GapLimitMS float64 `json:"gap_limit_ms"`
	// P99LimitMS is max(2 x p99, p99 + the latency floor).
	P99LimitMS float64 `json:"p99_limit_ms"`
}

// Result is one attack's figures and verdict.
type Result struct {
	Attack       string `json:"attack"`
	Origin       string `json:"origin"`
	Summary      string `json:"summary"`
	Identifiable bool   `json:"identifiable"`
	// RestartsValidator: the attack restarts a validator; its p99 limit
	// allows one failed round more.
	RestartsValidator bool    `json:"restarts_validator,omitempty"`
	Seconds           float64 `json:"seconds"`
	// Network is the index of the network (and baseline) it ran on.
	Network int `json:"network"`
	// Sent counts the attacker's messages, requests, streams or
	// identities (by attack); Bytes what it sent, or for serving-drain
	// what it was served.
	Sent       int64 `json:"sent"`
	Bytes      int64 `json:"bytes"`
	Identities int   `json:"identities"`

	MaxGapMS  float64 `json:"max_gap_ms"`
	GapHeight uint64  `json:"gap_height"`
	Transfers int     `json:"transfers"`
	P50MS     float64 `json:"p50_ms"`
	P99MS     float64 `json:"p99_ms"`
	Lost      int     `json:"lost"`
	// Penalties per node: banned, disconnected, scored or none.
	Penalties      []string `json:"penalties"`
	Fork           bool     `json:"fork"`
	RecoverSeconds float64  `json:"recover_seconds"`
	Notes          []string `json:"notes,omitempty"`
	Failures       []string `json:"failures,omitempty"`
	Pass           bool     `json:"pass"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// judge computes every figure from the blocks and transfers seen and
// applies the checks.
func (r *runner) judge(ctx context.Context, rep *Report, base phase, phases []phase, results []*Result, t0 time.Time) {
	bs, _ := r.obs.seen()
	txs := r.load.snapshot()
	now := time.Since(t0)
	latencies := func(p phase) ([]time.Duration, int) {
		var out []time.Duration
		lost := 0
		for _, t := range txs {
			if t.firstTry < p.from || t.firstTry >= p.to {
				continue
			}
			if t.committed == 0 {
				lost++
				continue
			}
			out = append(out, t.committed-t.firstTry)
		}
		return out, lost
	}

	bl, _ := latencies(base)
	bsum := bench.Summarize(bl)
	var gaps []time.Duration
	for i := 1; i < len(bs); i++ {
		if bs[i].arrived >= base.from && bs[i].arrived < base.to {
			gaps = append(gaps, bs[i].time.Sub(bs[i-1].time))
		}
	}
	slices.Sort(gaps)
	var interval time.Duration
	if len(gaps) > 0 {
		interval = gaps[len(gaps)/2]
	}
	baseGap, _ := maxGap(bs, t0, base.from, base.to, now)
	p := r.params
	roundTimeouts := time.Duration(p.TimeoutPropose.Base) + time.Duration(p.TimeoutPrevote.Base) + time.Duration(p.TimeoutPrecommit.Base)
	gapLimit := 2*interval + roundTimeouts
	baseP99 := time.Duration(bsum.P99 * float64(time.Millisecond))
	p99Limit := max(2*baseP99, baseP99+r.cfg.LatencyFloor)
	rep.Baselines = append(rep.Baselines, Baseline{Seconds: (base.to - base.from).Seconds(), Transfers: bsum.Count, P50MS: bsum.P50, P99MS: bsum.P99,
		IntervalMS: ms(interval), MaxGapMS: ms(baseGap), GapLimitMS: ms(gapLimit), P99LimitMS: ms(p99Limit)})

	fork, checked := r.forkCheck(ctx, bs)
	if fork != "" {
		rep.Forks = append(rep.Forks, fork)
	}
	rep.CheckedHeight = append(rep.CheckedHeight, checked)
	var forkAt time.Duration = -1
	if fork != "" && int(checked) < len(bs) {
		for _, b := range bs {
			if b.height == checked+1 {
				forkAt = b.arrived
			}
		}
	}

	for _, t := range txs {
		if t.committed == 0 {
			rep.Lost++
		}
		if t.seen > 1 {
			rep.Duplicates++
		}
	}
	rep.Admitted += len(txs)
	r.load.mu.Lock()
	if rep.Refusals == nil {
		rep.Refusals = make(map[string]int)
	}
	for k, v := range r.load.refusals {
		rep.Refusals[k] += v
	}
	r.load.mu.Unlock()
	rep.Failed = rep.Failed || fork != "" || rep.Lost > 0 || rep.Duplicates > 0

	for i, res := range results {
		ph := phases[i]
		gap, at := maxGap(bs, t0, ph.from, ph.to, now)
		lat, lost := latencies(ph)
		sum := bench.Summarize(lat)
		res.MaxGapMS, res.GapHeight = ms(gap), at
		res.Transfers, res.P50MS, res.P99MS, res.Lost = sum.Count, sum.P50, sum.P99, lost
		res.Fork = forkAt >= ph.from && forkAt < ph.to
		if gap > gapLimit {
			res.Failures = append(res.Failures, fmt.Sprintf("block gap %.0f ms (before height %d) above the %.0f ms limit", ms(gap), at, ms(gapLimit)))
		}
		if sum.Count == 0 {
			res.Failures = append(res.Failures, "no honest transfer admitted during the attack committed")
		} else if limit := res.p99Limit(p99Limit, roundTimeouts); sum.P99 > ms(limit) {
			res.Failures = append(res.Failures, fmt.Sprintf("p99 latency %.0f ms above the %.0f ms limit", sum.P99, ms(limit)))
		}
		if lost > 0 {
			res.Failures = append(res.Failures, fmt.Sprintf("%d admitted transfers never committed", lost))
		}
		if res.Fork {
			res.Failures = append(res.Failures, "fork: "+fork)
		}
		if res.Identifiable {
			var spared []string
			for n, pen := range res.Penalties {
				if pen == "none" {
					spared = append(spared, fmt.Sprintf("node%d", n))
				}
			}
			if len(spared) > 0 {
				res.Failures = append(res.Failures, "attacker not penalised by "+strings.Join(spared, ", "))
			}
		}
		res.Pass = len(res.Failures) == 0
	}
	rep.Results = append(rep.Results, results...)
}

// p99Limit is the attack's latency limit: the baseline's, plus one failed
// round for an attack that restarts a validator.
func (res *Result) p99Limit(base, roundTimeouts time.Duration) time.Duration {
	if res.RestartsValidator {
		return base + roundTimeouts
	}
	return base
}

// WriteTable writes the report as a table, one row per attack, then the
// failures and the run-wide checks.
func (rep *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "seed %d, %.0f tx/s, intensity %g\n", rep.Seed, rep.Rate, rep.Intensity)
	for i, b := range rep.Baselines {
		fmt.Fprintf(w, "network %d baseline %.0fs: %d transfers, p50 %.0f ms, p99 %.0f ms, median block interval %.0f ms, max gap %.0f ms; limits: gap %.0f ms, p99 %.0f ms\n",
			i, b.Seconds, b.Transfers, b.P50MS, b.P99MS, b.IntervalMS, b.MaxGapMS, b.GapLimitMS, b.P99LimitMS)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "attack\torigin\tnet\ts\tsent\tids\tmax gap ms\tp50 ms\tp99 ms\ttx\tlost\tpenalties (node0..3)\tverdict")
	for _, r := range rep.Results {
		verdict := "PASS"
		if !r.Pass {
			verdict = "FAIL"
		}
		pen := strings.Join(r.Penalties, ",")
		if !r.Identifiable {
			pen += " (not required)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%d\t%d\t%.0f\t%.0f\t%.0f\t%d\t%d\t%s\t%s\n", r.Attack, r.Origin, r.Network, r.Seconds, r.Sent, r.Identities,
			r.MaxGapMS, r.P50MS, r.P99MS, r.Transfers, r.Lost, pen, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rep.Results {
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  %s: %s\n", r.Attack, n)
		}
		for _, f := range r.Failures {
			fmt.Fprintf(w, "  %s FAILED: %s\n", r.Attack, f)
		}
	}
	fork := "none"
	if len(rep.Forks) > 0 {
		fork = strings.Join(rep.Forks, "; ")
	}
	_, err := fmt.Fprintf(w, "\nchains compared on every node up to heights %v; fork: %s; admitted %d transfers, lost %d, committed twice %d; refusals %v\n",
		rep.CheckedHeight, fork, rep.Admitted, rep.Lost, rep.Duplicates, rep.Refusals)
	return err
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
