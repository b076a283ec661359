package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Fault is a set of fault kinds.
type Fault uint8

// The fault kinds the simulator injects.
const (
	FaultDelay     Fault = 1 << iota // extra message delay, hence reordering
	FaultDrop                        // lost messages
	FaultPartition                   // the network splits, then heals
	FaultCrash                       // nodes crash and restart from the WAL
	FaultTwins                       // one validator key runs on two nodes
	AllFaults      = FaultDelay | FaultDrop | FaultPartition | FaultCrash | FaultTwins
)

// FaultKinds lists the kinds one by one, in a fixed order.
var FaultKinds = []Fault{FaultDelay, FaultDrop, FaultPartition, FaultCrash, FaultTwins}

// String renders the Fault in one line, for logs and traces.
func (f Fault) String() string {
	var parts []string
	for _, k := range FaultKinds {
		if f&k == 0 {
			continue
		}
		switch k {
		case FaultDelay:
			parts = append(parts, "delay")
		case FaultDrop:
			parts = append(parts, "drop")
		case FaultPartition:
			parts = append(parts, "partition")
		case FaultCrash:
			parts = append(parts, "crash")
		case FaultTwins:
			parts = append(parts, "twins")
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// Options describe one run. RandomOptions derives them from a seed; Run is
// a pure function of them.
type Options struct {
	// Seed drives every random choice of the run.
	Seed uint64
	// Validators is the number of validator keys (4 to 7 by default).
	Validators int
	// Faults are the fault kinds injected before the heal.
	Faults Fault
	// FaultPhase is how long faults last; at its end the network heals
	// and crashed nodes restart.
	FaultPhase time.Duration
	// ByzantineThird gives the twins at least a third of the voting power
	// and splits the honest validators in two halves, each with one twin:
	// a setting where safety is not guaranteed, to show the checker sees
	// the violation. Liveness and evidence are not checked then.
	ByzantineThird bool
	// ZeroLatency delivers every message at the instant it is sent (for
	// benchmarks; faults still apply).
	ZeroLatency bool
	// Trace, if set, receives a line for every step of the run.
	Trace func(line string)
}

// RandomOptions returns the options of the campaign run for seed: each
// fault kind is present with probability one half.
func RandomOptions(seed uint64) Options {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	o := Options{Seed: seed, Validators: 4 + r.IntN(4), FaultPhase: time.Duration(4000+r.IntN(4000)) * time.Millisecond}
	for _, k := range FaultKinds {
		if r.IntN(2) == 0 {
			o.Faults |= k
		}
	}
	return o
}

// String renders the Options in one line, for logs and traces.
func (o Options) String() string {
	s := fmt.Sprintf("seed=%d validators=%d faults=%s phase=%s", o.Seed, o.Validators, o.Faults, o.FaultPhase)
	if o.ByzantineThird {
		s += " byzantine>=1/3"
	}
	return s
}
