package sim

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

var (
	flagSeeds    = flag.Int("seeds", 2000, "number of seeds TestSimulator runs")
	flagSeed     = flag.Int64("seed", -1, "run only this seed, printing its full trace")
	flagCampaign = flag.Int("campaign", 0, "number of seeds TestCampaign runs (0 skips it)")
)

// TestSimulator runs the campaign options of -seeds seeds (2,000 by
// default, 100 with -short) and fails with the seed and the trace of the
// first failure.
// With -seed=N it runs seed N alone and prints its full trace.
func TestSimulator(t *testing.T) {
	if *flagSeed >= 0 {
		o := RandomOptions(uint64(*flagSeed))
		fmt.Println(o)
		o.Trace = func(l string) { fmt.Println(l) }
		r := Run(o)
		fmt.Printf("%s: %d heights, %d steps, recovery %s after the heal\n", o, r.Stats.Heights, r.Stats.Steps, fmtTime(r.Stats.Recovery))
		for _, v := range r.Violations {
			t.Errorf("seed %d: %s", o.Seed, v)
		}
		return
	}
	n := *flagSeeds
	if testing.Short() {
		n = min(n, 100)
	}
	c := RunCampaign(0, n, nil)
	var b strings.Builder
	c.Report(&b)
	t.Log("\n" + b.String())
	for _, k := range FaultKinds {
		if c.FaultRuns[k] == 0 && n >= 100 {
			t.Errorf("no run exercised fault kind %s", k)
		}
	}
	if len(c.Failures) > 0 {
		t.Fatal(FailureReport(c.Failures[0], 200))
	}
}

// TestCampaign runs a long campaign: -campaign=N seeds, starting after the
// seeds TestSimulator covers, and prints how many runs exercised each
// fault kind and each invariant. It is skipped unless -campaign is set:
//
//	go test ./consensus/sim -run TestCampaign -campaign=100000 -timeout=0 -v
func TestCampaign(t *testing.T) {
	if *flagCampaign <= 0 {
		t.Skip("set -campaign=N to run a campaign of N seeds")
	}
	c := RunCampaign(1_000_000, *flagCampaign, func(done int) {
		if done%10000 == 0 {
			t.Logf("%d runs done", done)
		}
	})
	c.Report(os.Stdout)
	if len(c.Failures) > 0 {
		t.Fatal(FailureReport(c.Failures[0], 200))
	}
}

// TestTraceIsReproducible runs a seed with every fault kind twice and
// requires byte-identical traces and identical results.
func TestTraceIsReproducible(t *testing.T) {
	var o Options
	for seed := uint64(0); ; seed++ {
		if o = RandomOptions(seed); o.Faults == AllFaults {
			break
		}
	}
	first := strings.Join(Replay(o, 0), "\n")
	second := strings.Join(Replay(o, 0), "\n")
	if first != second {
		t.Fatalf("%s: two runs traced differently", o)
	}
	if len(first) < 1000 {
		t.Fatalf("%s: trace of %d bytes, expected a real run", o, len(first))
	}
	a, b := Run(o), Run(o)
	if a.Stats != b.Stats || len(a.Violations) != len(b.Violations) {
		t.Fatalf("%s: results differ: %+v vs %+v", o, a.Stats, b.Stats)
	}
}

// TestByzantineThirdBreaksAgreement shows the checker is not blind: with
// twins holding at least a third of the voting power, each joined to one
// half of the honest validators, some seed among the first 20 makes two
// honest nodes decide different blocks, and the failure report carries the
// seed and a trace that ends in the violation.
func TestByzantineThirdBreaksAgreement(t *testing.T) {
	const bound = 20
	for seed := uint64(0); seed < bound; seed++ {
		o := Options{Seed: seed, Validators: 3 + int(seed%4), FaultPhase: 5 * time.Second, ByzantineThird: true}
		r := Run(o)
		for _, v := range r.Violations {
			if v.Invariant != InvAgreement {
				t.Fatalf("%s: unexpected violation %s", o, v)
			}
		}
		if !r.Failed() {
			continue
		}
		t.Logf("%s: %s", o, r.Violations[0])
		report := FailureReport(r, 30)
		for _, want := range []string{fmt.Sprintf("seed=%d", seed), "reproduce:", "VIOLATION agreement"} {
			if !strings.Contains(report, want) {
				t.Fatalf("failure report lacks %q:\n%s", want, report)
			}
		}
		return
	}
	t.Fatalf("no agreement violation in %d seeds with byzantine power >= 1/3", bound)
}
