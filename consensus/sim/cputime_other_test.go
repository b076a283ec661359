//go:build !unix

package sim

import "time"

// cpuTime is not measured outside unix: benchmarks report no CPU figure.
func cpuTime() time.Duration { return 0 }
