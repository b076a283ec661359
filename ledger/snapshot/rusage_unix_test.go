//go:build unix

package snapshot

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system) the process has used so
// far, goleveldb's compactions included. The benchmarks report it per
// operation beside the wall time, which on a machine shared with other
// work measures the other work as much as this.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
