package sim

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkSimulatorHeights measures how many heights the simulator
// decides per second of real time with no network delay and no faults:
// the cost of the whole stack (machine, signer, WAL, ledger validation
// and execution) per height, for n validators.
func BenchmarkSimulatorHeights(b *testing.B) {
	for _, n := range []int{4, 7} {
		b.Run(fmt.Sprintf("validators=%d", n), func(b *testing.B) {
			var heights uint64
			for i := 0; i < b.N; i++ {
				r := Run(Options{Seed: uint64(i), Validators: n, FaultPhase: 20 * time.Second, ZeroLatency: true})
				if r.Failed() {
					b.Fatal(r.Violations[0])
				}
				heights += r.Stats.Heights
			}
			b.ReportMetric(float64(heights)/b.Elapsed().Seconds(), "heights/s")
			b.ReportMetric(float64(heights)/float64(b.N), "heights/run")
		})
	}
}
