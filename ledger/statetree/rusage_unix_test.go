//go:build unix

package statetree

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user + system) this process has used so far,
// including goleveldb's background compaction. Benchmarks report it beside
// wall time, which on a shared machine depends on everything else running.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
