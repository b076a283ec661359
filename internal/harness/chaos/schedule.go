package chaos

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// FaultKind names a kind of fault.
type FaultKind string

// The fault kinds a schedule draws from.
const (
	Kill      FaultKind = "kill"      // SIGKILL, restart later
	Pause     FaultKind = "pause"     // SIGSTOP / docker pause, continue later
	Partition FaultKind = "partition" // split the validators in two, heal later
	WALCut    FaultKind = "walcut"    // SIGKILL, truncate the newest WAL segment, restart
	Twin      FaultKind = "twin"      // a second node with one validator's key
	Churn     FaultKind = "churn"     // delegate to a validator (its power grows), undelegate later
)

// AllFaults lists every fault kind, in the order reports use.
var AllFaults = []FaultKind{Kill, Pause, Partition, WALCut, Twin, Churn}

// ParseFaults reads a comma-separated list of fault kinds ("all" for
// every kind), refusing unknown or repeated names.
func ParseFaults(s string) ([]FaultKind, error) {
	if strings.TrimSpace(s) == "all" {
		return slices.Clone(AllFaults), nil
	}
	var out []FaultKind
	for _, p := range strings.Split(s, ",") {
		k := FaultKind(strings.TrimSpace(p))
		if k == "" {
			continue
		}
		if !slices.Contains(AllFaults, k) {
			return nil, fmt.Errorf("unknown fault %q (want %s)", k, joinKinds(AllFaults))
		}
		if slices.Contains(out, k) {
			return nil, fmt.Errorf("fault %q listed twice", k)
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, errors.New("no fault kinds given")
	}
	return out, nil
}

// canonical returns the distinct known kinds of ks in AllFaults order.
func canonical(ks []FaultKind) []FaultKind {
	var out []FaultKind
	for _, k := range AllFaults {
		if slices.Contains(ks, k) {
			out = append(out, k)
		}
	}
	return out
}

func joinKinds(ks []FaultKind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ",")
}

// Span is a duration written in JSON as a Go duration string ("6.5s").
type Span time.Duration

// MarshalText writes the duration string.
func (s Span) MarshalText() ([]byte, error) { return []byte(time.Duration(s).String()), nil }

// UnmarshalText reads a duration string.
func (s *Span) UnmarshalText(b []byte) error {
	d, err := time.ParseDuration(string(b))
	*s = Span(d)
	return err
}

func (s Span) String() string { return time.Duration(s).String() }

// Fault is one scheduled fault.
type Fault struct {
	Kind FaultKind `json:"kind"`
	// At is when, after the workload starts, the fault is injected (or
	// later, if the previous fault's recovery ran past it).
	At Span `json:"at"`
	// For is how long the fault lasts before it is healed (restart,
	// resume, reconnect, twin stopped).
	For Span `json:"for"`
	// Nodes are the validators the fault hits; for a partition, one side
	// (the other side is every other validator).
	Nodes []int `json:"nodes"`
	// Cut is, for walcut, where to truncate the newest WAL segment: a
	// fraction in [0, 1) of its size, or with CutTail of its last
	// TailBytes bytes (tearing the records of the unfinished height).
	Cut     float64 `json:"cut,omitempty"`
	CutTail bool    `json:"cut_tail,omitempty"`
	// Stake is, for churn, the voting power (in units of the genesis
	// power_unit) a funded account delegates to the validator at the
	// injection and undelegates at the heal.
	Stake uint64 `json:"stake,omitempty"`
}

// TailBytes is the span of a segment's end that a tail cut falls in.
const TailBytes = 4096

// CutOffset is where a walcut truncates a segment of size bytes.
func (f Fault) CutOffset(size int64) int64 {
	if !f.CutTail {
		return int64(f.Cut * float64(size))
	}
	span := min(size, TailBytes)
	return size - 1 - int64(f.Cut*float64(span))
}

// String describes the fault for logs.
func (f Fault) String() string {
	s := fmt.Sprintf("%s %v at %s for %s", f.Kind, f.Nodes, f.At, f.For)
	if f.Kind == WALCut {
		if f.CutTail {
			s += fmt.Sprintf(" (cut %.3f into the last %d bytes of the newest segment)", f.Cut, TailBytes)
		} else {
			s += fmt.Sprintf(" (cut at %.3f of the newest segment)", f.Cut)
		}
	}
	if f.Kind == Churn {
		s += fmt.Sprintf(" (delegate power %d)", f.Stake)
	}
	return s
}

// Schedule is the fault plan of one run. It is a function of its seed and
// the parameters NewSchedule takes, nothing else.
type Schedule struct {
	Seed       int64       `json:"seed"`
	Validators int         `json:"validators"`
	Duration   Span        `json:"duration"`
	Kinds      []FaultKind `json:"kinds"`
	Faults     []Fault     `json:"faults"`
}

// Schedule layout. Each fault gets a slot of the run; it starts early in
// its slot and lasts at most about half of it, leaving the rest for the
// network to recover before the next one.
const (
	warmup      = 5 * time.Second  // workload only, before the first fault
	minSlot     = 14 * time.Second // the shortest slot per fault
	minFault    = 3 * time.Second
	maxFault    = 10 * time.Second
	faultShare  = 0.45 // of a slot, the longest a fault may last
	jitterShare = 0.10 // of a slot, the most a fault's start is delayed
)

// maxChurnStake bounds the power a churn fault delegates (genesis
// validators have genesis.DefaultPower, 10).
const maxChurnStake = 5

// MinDuration is the shortest run that fits n faults.
func MinDuration(n int) time.Duration { return warmup + time.Duration(n)*minSlot }

// NewSchedule draws the fault plan for a run of the given duration over
// the given number of validators: every kind in kinds at least once (in a
// seeded order), more faults of random kinds when the duration leaves room
// for them. The same arguments always yield the same schedule, whatever
// the order of kinds.
func NewSchedule(seed int64, validators int, duration time.Duration, kinds []FaultKind) (Schedule, error) {
	kinds = canonical(kinds)
	if validators < 4 {
		return Schedule{}, fmt.Errorf("chaos needs at least 4 validators (one faulty of 4 leaves more than 2/3); got %d", validators)
	}
	if len(kinds) == 0 {
		return Schedule{}, errors.New("no known fault kinds")
	}
	if duration < MinDuration(len(kinds)) {
		return Schedule{}, fmt.Errorf("%d fault kinds need a duration of at least %s; got %s", len(kinds), MinDuration(len(kinds)), duration)
	}
	r := newRNG(seed, "schedule")
	n := max(len(kinds), int((duration-warmup)/minSlot))
	order := slices.Clone(kinds)
	for len(order) < n {
		order = append(order, kinds[r.intn(len(kinds))])
	}
	r.shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	slot := (duration - warmup) / time.Duration(n)
	longest := min(maxFault, time.Duration(float64(slot)*faultShare))
	s := Schedule{Seed: seed, Validators: validators, Duration: Span(duration), Kinds: kinds}
	for i, k := range order {
		f := Fault{
			Kind: k,
			At:   Span(warmup + time.Duration(i)*slot + r.duration(time.Duration(float64(slot)*jitterShare))),
			For:  Span(minFault + r.duration(longest-minFault)),
		}
		switch k {
		case Partition:
			// One side holds 1 to n/2 validators: with equal powers
			// either it lacks a quorum or neither side has one.
			f.Nodes = r.pick(validators, 1+r.intn(validators/2))
		case WALCut:
			f.Nodes = r.pick(validators, 1)
			f.Cut = r.float()
			f.CutTail = r.intn(2) == 0
		case Twin:
			f.Nodes = r.pick(validators, 1)
			// The twin must catch up and then be proposer or vote apart
			// from its original; give it at least 6 seconds.
			f.For = max(f.For, Span(6*time.Second))
		case Churn:
			f.Nodes = r.pick(validators, 1)
			// Up to half a genesis validator's power more: the set
			// changes, and no validator reaches a third of it.
			f.Stake = 1 + uint64(r.intn(maxChurnStake))
			// The delegation takes effect two heights after its block;
			// give it time to be in force before it is undone.
			f.For = max(f.For, Span(5*time.Second))
		default:
			f.Nodes = r.pick(validators, 1)
		}
		s.Faults = append(s.Faults, f)
	}
	return s, nil
}

// rng is the run's deterministic randomness: PCG (whose output for a seed
// is fixed by its specification) and helpers written here, so a seed
// replays the same choices whatever the Go version.
type rng struct{ src *rand.PCG }

// newRNG returns the stream named purpose of the given seed; distinct
// purposes give independent streams, so adding draws to one (say the
// workload) never shifts another (the fault schedule).
func newRNG(seed int64, purpose string) *rng {
	var h uint64 = 14695981039346656037 // FNV-1a of the purpose
	for i := 0; i < len(purpose); i++ {
		h ^= uint64(purpose[i])
		h *= 1099511628211
	}
	return &rng{src: rand.NewPCG(uint64(seed), h)}
}

// intn returns a number in [0, n).
func (r *rng) intn(n int) int {
	if n <= 0 {
		panic("chaos: intn of a non-positive bound")
	}
	return int(r.src.Uint64() % uint64(n))
}

// float returns a number in [0, 1).
func (r *rng) float() float64 { return float64(r.src.Uint64()>>11) / (1 << 53) }

// duration returns a duration in [0, d], in whole milliseconds.
func (r *rng) duration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(r.intn(int(d/time.Millisecond)+1)) * time.Millisecond
}

// shuffle is Fisher-Yates.
func (r *rng) shuffle(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		swap(i, r.intn(i+1))
	}
}

// pick returns k distinct numbers of [0, n), sorted.
func (r *rng) pick(n, k int) []int {
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	r.shuffle(n, func(i, j int) { all[i], all[j] = all[j], all[i] })
	out := all[:k]
	slices.Sort(out)
	return out
}
