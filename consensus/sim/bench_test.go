package sim

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkSimulatorHeights measures how many heights the simulator
// decides per second of real time with no network delay and no faults:
// the cost of the whole stack (machine, signer, WAL, ledger validation
// and execution, the staking module's end of block) per height, for n
// validators, per second of wall time and per second of this process's
// CPU time (which a shared machine's load does not change). A run with
// 100 validators has 5 s of virtual time before the heal instead of 20
// (about 25 heights instead of 100):
//
//	go test ./consensus/sim -run '^$' -bench 'SimulatorHeights/validators=100' -benchtime 1x
func BenchmarkSimulatorHeights(b *testing.B) {
	for _, n := range []int{4, 7, 100} {
		b.Run(fmt.Sprintf("validators=%d", n), func(b *testing.B) {
			phase := 20 * time.Second
			if n >= 100 {
				phase = 5 * time.Second
			}
			var heights uint64
			cpu := cpuTime()
			for i := 0; i < b.N; i++ {
				r := Run(Options{Seed: uint64(i), Validators: n, FaultPhase: phase, ZeroLatency: true})
				if r.Failed() {
					b.Fatal(r.Violations[0])
				}
				heights += r.Stats.Heights
			}
			b.ReportMetric(float64(heights)/b.Elapsed().Seconds(), "heights/s")
			b.ReportMetric(float64(heights)/float64(b.N), "heights/run")
			if used := cpuTime() - cpu; used > 0 {
				// Heights per second of CPU: what a core of this machine
				// decides, whatever else runs beside the benchmark.
				b.ReportMetric(float64(heights)/used.Seconds(), "heights/cpu-s")
			}
		})
	}
}
