package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// snapshot is a reading of every node, the generator and the machine.
type snapshot struct {
	At      time.Duration // since the load started
	Nodes   []ProcSample  // zero for a node that could not be read
	Self    ProcSample
	Machine MachineCPU
}

// MachineCPU is the whole machine's CPU time from /proc/stat.
type MachineCPU struct {
	Busy, Total time.Duration
}

// readMachineCPU sums the first line of /proc/stat: busy is everything but
// idle and iowait.
func readMachineCPU() (MachineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineCPU{}, fmt.Errorf("read machine cpu time: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseMachineCPU(line, clockTicks())
}

func parseMachineCPU(line string, ticks int64) (MachineCPU, error) {
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return MachineCPU{}, fmt.Errorf("malformed /proc/stat line %q", line)
	}
	var total, idle int64
	for i, s := range f[1:] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return MachineCPU{}, fmt.Errorf("malformed /proc/stat: %w", err)
		}
		if i >= 8 { // guest and guest_nice are already counted in user and nice
			break
		}
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	unit := time.Second / time.Duration(ticks)
	return MachineCPU{Busy: time.Duration(total-idle) * unit, Total: time.Duration(total) * unit}, nil
}

// sampler reads the nodes' /proc entries every second.
type sampler struct {
	pids []int
	t0   time.Time

	mu    sync.Mutex
	snaps []snapshot
}

// take reads everything now.
func (s *sampler) take() snapshot {
	sn := snapshot{At: time.Since(s.t0), Nodes: make([]ProcSample, len(s.pids))}
	for i, pid := range s.pids {
		sn.Nodes[i], _ = ReadProc(pid) // a node that died reads as zero
	}
	sn.Self, _ = ReadProc(os.Getpid())
	sn.Machine, _ = readMachineCPU()
	return sn
}

// run records a snapshot every second until ctx ends.
func (s *sampler) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		sn := s.take()
		s.mu.Lock()
		s.snaps = append(s.snaps, sn)
		s.mu.Unlock()
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

func (s *sampler) all() []snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]snapshot(nil), s.snaps...)
}
