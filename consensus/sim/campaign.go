package sim

import (
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// Campaign runs many seeds in parallel and aggregates what they exercised.
type Campaign struct {
	Runs     int
	Failures []*Result
	// FaultRuns counts, per fault kind, the runs that actually injected it.
	FaultRuns map[Fault]int
	// Checked counts, per invariant, the runs that checked it at least
	// once, and Checks the checks made over all runs.
	Checked    [numInvariants]int
	Checks     [numInvariants]uint64
	Violations [numInvariants]int
	Heights    uint64
	Steps      uint64
	Crashes    uint64
	MidStep    uint64
	Equivocate uint64
	Evidence   uint64
	FarVotes   uint64
	ByzMsgs    uint64
	Extra      uint64
	Backed     uint64
	DiskFaults uint64
	Refusals   uint64
	Synced     uint64
	// The staking the reference chains saw.
	SetChanges   uint64
	ChurnTxs     uint64
	ChurnFailed  uint64
	Tombstoned   uint64
	Jailed       uint64
	HonestJailed uint64
	Slashes      uint64
	AtStake      uint64
	Matured      uint64
	ChurnKinds   [numChurnKinds]uint64
	// Rounds counts the heights decided by the round they were decided
	// in (first honest decision), RoundSum sums those rounds, and
	// Recoveries holds every run's time from the heal to liveness.
	Rounds     [RoundBuckets]uint64
	RoundSum   uint64
	Recoveries []time.Duration
	// MaxRecovery is the longest time from heal to liveness.
	MaxRecovery     time.Duration
	MaxRecoverySeed uint64
	Elapsed         time.Duration
}

// RunCampaign runs the seeds [first, first+n) with RandomOptions, using
// every CPU, and returns the aggregate. progress, if set, is called with
// the number of runs done every so often.
func RunCampaign(first uint64, n int, progress func(done int)) *Campaign {
	return runCampaign(first, n, progress, RandomOptions)
}

// runCampaign is RunCampaign with the options of each seed from opts.
func runCampaign(first uint64, n int, progress func(done int), opts func(seed uint64) Options) *Campaign {
	start := time.Now()
	c := &Campaign{FaultRuns: map[Fault]int{}}
	var mu sync.Mutex
	seeds := make(chan uint64)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range seeds {
				r := Run(opts(seed))
				mu.Lock()
				c.add(r)
				done := c.Runs
				mu.Unlock()
				if progress != nil && done%1000 == 0 {
					progress(done)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		seeds <- first + uint64(i)
	}
	close(seeds)
	wg.Wait()
	sort.Slice(c.Failures, func(i, j int) bool { return c.Failures[i].Options.Seed < c.Failures[j].Options.Seed })
	c.Elapsed = time.Since(start)
	return c
}

func (c *Campaign) add(r *Result) {
	c.Runs++
	st := &r.Stats
	for _, k := range FaultKinds {
		if st.Exercised(k) {
			c.FaultRuns[k]++
		}
	}
	for _, inv := range Invariants {
		if st.Checks[inv] > 0 {
			c.Checked[inv]++
		}
		c.Checks[inv] += st.Checks[inv]
	}
	for _, v := range r.Violations {
		c.Violations[v.Invariant]++
	}
	if r.Failed() {
		c.Failures = append(c.Failures, r)
	}
	c.Heights += st.Heights
	c.Steps += st.Steps
	c.Crashes += st.Crashes
	c.MidStep += st.MidStepCrashes
	c.Equivocate += st.Equivocations
	c.Evidence += st.EvidenceBlocks
	c.FarVotes += st.FarRoundVotes
	c.ByzMsgs += st.ByzMessages
	c.Extra += st.ExtraValues
	c.Backed += st.BackedValues
	c.DiskFaults += st.DiskFaults
	c.Refusals += st.Refusals
	c.Synced += st.BlockSynced
	c.SetChanges += st.SetChanges
	c.ChurnTxs += st.ChurnTxs
	c.ChurnFailed += st.ChurnFailed
	c.Tombstoned += st.Tombstoned
	c.Jailed += st.Jailed
	c.HonestJailed += st.HonestJailed
	c.Slashes += st.Slashes
	c.AtStake += st.SlashedEntries
	c.Matured += st.Matured
	for i, k := range st.ChurnKinds {
		c.ChurnKinds[i] += k
	}
	for i, k := range st.Rounds {
		c.Rounds[i] += k
	}
	c.RoundSum += st.RoundSum
	if st.Recovery > 0 {
		c.Recoveries = append(c.Recoveries, st.Recovery)
	}
	if st.Recovery > c.MaxRecovery || (st.Recovery == c.MaxRecovery && r.Options.Seed < c.MaxRecoverySeed) {
		c.MaxRecovery, c.MaxRecoverySeed = st.Recovery, r.Options.Seed
	}
}

// Report writes the campaign summary.
func (c *Campaign) Report(w io.Writer) {
	fmt.Fprintf(w, "%d runs in %s, %d failed; %d heights decided, %d machine steps\n",
		c.Runs, c.Elapsed.Round(time.Millisecond), len(c.Failures), c.Heights, c.Steps)
	fmt.Fprintf(w, "fault kind    runs exercising it\n")
	for _, k := range FaultKinds {
		fmt.Fprintf(w, "  %-10s  %7d\n", k, c.FaultRuns[k])
	}
	fmt.Fprintf(w, "  (%d crashes, %d of them inside a step after the WAL write; %d equivocations detected, %d committed as evidence; %d far-round votes signed with the twins' key)\n",
		c.Crashes, c.MidStep, c.Equivocate, c.Evidence, c.FarVotes)
	fmt.Fprintf(w, "  (%d messages from the byzantine validator; %d disk faults, %d signatures refused after them, %d blocks fetched by block sync)\n",
		c.ByzMsgs, c.DiskFaults, c.Refusals, c.Synced)
	fmt.Fprintf(w, "  (%d votes kept as a validator's third or later value for one height, round and type, %d of them for a backed value)\n",
		c.Extra, c.Backed)
	var kinds []string
	for i, k := range c.ChurnKinds {
		kinds = append(kinds, fmt.Sprintf("%d %s", k, churnKindNames[i]))
	}
	fmt.Fprintf(w, "  (%d set changes; %d churn transactions committed (%s), %d of them failed; %d unbonding entries paid out)\n",
		c.SetChanges, c.ChurnTxs, strings.Join(kinds, ", "), c.ChurnFailed, c.Matured)
	fmt.Fprintf(w, "  (%d validators tombstoned for a double sign, %d jailed for downtime (%d not faulty); %d slashes recomputed, %d unbonding entries at stake in them)\n",
		c.Tombstoned, c.Jailed, c.HonestJailed, c.Slashes, c.AtStake)
	fmt.Fprintf(w, "invariant        runs checking  checks     violations\n")
	for _, inv := range Invariants {
		fmt.Fprintf(w, "  %-14s  %7d  %11d  %5d\n", inv, c.Checked[inv], c.Checks[inv], c.Violations[inv])
	}
	fmt.Fprintf(w, "longest recovery after the heal: %s (seed %d); liveness bound %s\n", fmtTime(c.MaxRecovery), c.MaxRecoverySeed, LivenessBound)
	b := c.Baseline()
	fmt.Fprintf(w, "heights by decision round %v, %.4f rounds per height; recovery p50 %s, p90 %s, p99 %s\n",
		b.Rounds, b.RoundsPerHeight, fmtTime(b.RecoveryP50.Std()), fmtTime(b.RecoveryP90.Std()), fmtTime(b.RecoveryP99.Std()))
	for i, f := range c.Failures {
		if i == 20 {
			fmt.Fprintf(w, "... %d more failures\n", len(c.Failures)-20)
			break
		}
		fmt.Fprintf(w, "FAIL %s: %s\n", f.Options, f.Violations[0])
	}
}

// Replay re-runs o with tracing and returns the trace lines up to and
// including the first violation, at most tail of them (all with tail 0).
func Replay(o Options, tail int) []string {
	var lines []string
	o.Trace = func(l string) {
		lines = append(lines, l)
		if tail > 0 && len(lines) > 2*tail {
			lines = append(lines[:0], lines[len(lines)-tail:]...)
		}
	}
	Run(o)
	if tail > 0 && len(lines) > tail {
		lines = lines[len(lines)-tail:]
	}
	return lines
}

// FailureReport renders a failed result: the options, the violations and
// the trace leading to the first one, with the command that reproduces it.
func FailureReport(r *Result, tail int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "simulation failed: %s\n", r.Options)
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "  %s\n", v)
	}
	scenario := ""
	if r.Options.Scenario != "" {
		scenario = " -scenario=" + r.Options.Scenario
	}
	fmt.Fprintf(&b, "reproduce: go test ./consensus/sim -run TestSimulator%s -seed=%d -v\n", scenario, r.Options.Seed)
	fmt.Fprintf(&b, "last %d trace lines:\n", tail)
	for _, l := range Replay(r.Options, tail) {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}
