package sim

import (
	"time"
)

// planFaults draws the fault schedule of the run from its seed.
func (s *simulation) planFaults() {
	o := s.opts
	phase := o.FaultPhase
	r := s.rng
	if o.Faults&FaultDelay != 0 {
		// A slow network: base latencies comparable to the timeouts.
		for a := range s.net.latency {
			for b := range s.net.latency[a] {
				if d := time.Duration(20+r.IntN(380)) * time.Millisecond; !o.ZeroLatency {
					s.net.latency[a][b] = d
				}
			}
		}
		s.net.slowP = 0.1 + 0.4*r.Float64()
		s.net.spikeP = 0.05 * r.Float64()
		s.net.delayMax = time.Duration(300+r.IntN(2700)) * time.Millisecond
	}
	if o.Faults&FaultDrop != 0 {
		s.net.lossP = 0.05 + 0.3*r.Float64()
	}
	if o.Faults&(FaultDelay|FaultDrop) != 0 {
		// Link conditions change every 0.3 to 1.5 s of the fault phase.
		var epoch func()
		epoch = func() {
			if !s.net.faulty {
				return
			}
			s.net.redraw()
			s.after(time.Duration(300+r.IntN(1200))*time.Millisecond, epoch)
		}
		epoch()
	}
	if o.Faults&FaultPartition != 0 && !o.ByzantineThird {
		s.net.roundSplit = true
		s.stats.Partitions++
	}
	if o.Faults&FaultPartition != 0 && !o.ByzantineThird && r.IntN(2) == 0 {
		// One to five partitions, one after the other, each healing
		// before the next and before the end of the fault phase: a node
		// cut off alone, or the nodes split in two or three groups.
		at := time.Duration(r.Int64N(int64(phase / 3)))
		for k := 1 + r.IntN(5); k > 0 && at < phase; k-- {
			dur := time.Duration(300+r.IntN(2700)) * time.Millisecond
			if at+dur > phase {
				dur = phase - at
			}
			groups := make([]int, len(s.nodes))
			switch r.IntN(3) {
			case 0:
				groups[r.IntN(len(groups))] = 1
			case 1:
				for i := range groups {
					groups[i] = r.IntN(2)
				}
			default:
				for i := range groups {
					groups[i] = r.IntN(3)
				}
			}
			start, end := at, at+dur
			s.after(start, func() {
				s.net.group = groups
				s.stats.Partitions++
				s.tracef(nil, "partition %v until %s", groups, fmtTime(end))
			})
			s.after(end, func() {
				if s.net.faulty {
					s.net.group = nil
					s.tracef(nil, "partition healed")
				}
			})
			at = end + time.Duration(r.IntN(1000))*time.Millisecond
		}
	}
	s.planDisk()
	if o.Faults&FaultCrash != 0 {
		for k := 1 + r.IntN(5); k > 0; k-- {
			n := s.nodes[r.IntN(len(s.nodes))]
			if !n.honest {
				continue
			}
			at := time.Duration(r.Int64N(int64(phase)))
			down := time.Duration(100+r.IntN(3000)) * time.Millisecond
			midStep := r.IntN(2) == 0
			s.after(at, func() {
				if !n.up || n.armed != nil {
					return
				}
				if midStep {
					n.armCrash(down)
				} else {
					n.crash(down, true)
				}
			})
		}
	}
}
