package sim

import (
	"flag"
	"fmt"
	"slices"
	"sort"
	"testing"
)

var flagPlant = flag.String("plant", "", "plant this bug in the runs of TestSimulator and TestCampaign: "+
	"early-set, catchup-current-set; with -tags simplant also lastcommit-current-set, slash-skips-unbonding")

// productPlants are the bugs planted in the shipped ledger code, which
// builds with -tags simplant register (plant_simplant_test.go): name ->
// the switch.
var productPlants = map[string]func(on bool){}

// plantedOptions returns the options of a campaign seed with the bug name
// planted: a simulator plant goes in the options; a product plant is
// switched on for the whole test (the returned undo switches it off).
func plantedOptions(t *testing.T, name string) (func(seed uint64) Options, func()) {
	t.Helper()
	if name == "" {
		return RandomOptions, func() {}
	}
	switch p := plant(name); p {
	case plantEarlySet, plantCatchupSet:
		return func(seed uint64) Options {
			o := RandomOptions(seed)
			o.plant = p
			return o
		}, func() {}
	}
	on, ok := productPlants[name]
	if !ok {
		var names []string
		for n := range productPlants {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Fatalf("no plant %q (simulator plants: %s, %s; product plants in this build: %v)", name, plantEarlySet, plantCatchupSet, names)
	}
	on(true)
	return RandomOptions, func() { on(false) }
}

// plantCases are the bugs planted on purpose, with the invariant that
// must catch each. The bugs of the ledger code need -tags simplant.
var plantCases = []struct {
	name string
	inv  Invariant
	// also lists invariants that may fire first on some seeds.
	also []Invariant
}{
	{string(plantEarlySet), InvSets, []Invariant{InvValidity}},
	{string(plantCatchupSet), InvCommit, nil},
	{"lastcommit-current-set", InvLiveness, nil},
	{"slash-skips-unbonding", InvStake, nil},
}

// TestPlantedBugsAreCaught plants each bug of validator churn (plant.go,
// and the ledger's and the staking module's in builds with -tags
// simplant) and runs the churn runs among the campaign's seeds, from seed
// 0, until one fails: it must fail within maxChurnRuns churn runs, and by
// the invariant that is there to catch the bug. It logs the first
// failing seed and the violation.
//
//	go test ./consensus/sim -run TestPlantedBugsAreCaught -v
//	go test -tags simplant ./consensus/sim -run TestPlantedBugsAreCaught -v
func TestPlantedBugsAreCaught(t *testing.T) {
	const maxChurnRuns = 200
	for _, pc := range plantCases {
		t.Run(pc.name, func(t *testing.T) {
			if _, ok := productPlants[pc.name]; !ok && pc.name != string(plantEarlySet) && pc.name != string(plantCatchupSet) {
				t.Skipf("a bug of the ledger code: build with -tags simplant")
			}
			opts, undo := plantedOptions(t, pc.name)
			defer undo()
			runs := 0
			for seed := uint64(0); runs < maxChurnRuns; seed++ {
				o := opts(seed)
				if o.Faults&FaultChurn == 0 {
					continue
				}
				runs++
				r := Run(o)
				if !r.Failed() {
					continue
				}
				v := r.Violations[0]
				if v.Invariant != pc.inv && !slices.Contains(pc.also, v.Invariant) {
					t.Fatalf("%s: caught by %s, want %s:\n%s", o, v.Invariant, pc.inv, FailureReport(r, 40))
				}
				t.Logf("caught at seed %d (churn run %d): %s", seed, runs, v)
				return
			}
			t.Fatalf("%d churn runs with %s planted and no violation", maxChurnRuns, pc.name)
		})
	}
}

func plantFlagRuns(t *testing.T) (func(seed uint64) Options, func(), string) {
	opts, undo := plantedOptions(t, *flagPlant)
	label := ""
	if *flagPlant != "" {
		label = fmt.Sprintf(" with %s planted", *flagPlant)
	}
	return opts, undo, label
}
