// Package chaos_test runs short chaos scenarios (internal/harness/chaos) on real
// ledgerd networks: four validator processes, each in its own network
// namespace where this machine allows it, and the same under Docker where
// a daemon runs. Each run kills, pauses, partitions, cuts a WAL and
// starts a byzantine twin under a transfer workload, then checks that no
// acknowledged transfer was lost, no fork happened, supply was conserved,
// the twin's equivocation was committed as evidence and the history is
// linearizable.
//
// The seed is random and logged; CHAOS_SEED=N replays a run's fault
// schedule, CHAOS_DURATION=10m makes a longer one:
//
//	CHAOS_SEED=42 go test ./test/chaos -run Processes -v
package chaos_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/harness/chaos"
	"github.com/ledgerd/ledgerd/internal/harness/localnet"
)

// scenario is the CI run: six faults in 90 seconds (about 105 seconds in
// all with start-up and the final checks).
const scenario = 90 * time.Second

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// ledgerdBinary builds a static cmd/ledgerd once per test run.
func ledgerdBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "ledgerd-chaos-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath, binErr = localnet.BuildBinary(root, dir)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// seedAndDuration reads CHAOS_SEED and CHAOS_DURATION, defaulting to a
// random seed and the CI scenario's length, and logs how to replay.
func seedAndDuration(t *testing.T) (int64, time.Duration) {
	t.Helper()
	seed := rand.Int64N(1 << 53)
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	d := scenario
	if s := os.Getenv("CHAOS_DURATION"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("CHAOS_DURATION=%q: %v", s, err)
		}
		d = v
	}
	t.Logf("seed %d; replay with CHAOS_SEED=%d go test ./test/chaos -run '^%s$'", seed, seed, t.Name())
	return seed, d
}

// logWriter sends the run's progress lines to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// run carries out one scenario and checks its report.
func run(t *testing.T, cfg chaos.Config) {
	t.Helper()
	cfg.Log = logWriter{t}
	rep, err := chaos.Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("seed %d: %v", cfg.Seed, err)
	}
	t.Logf("report:\n%s", rep.Summary())
	if !rep.Pass {
		t.Fatalf("seed %d failed %d check(s); files kept in %s", cfg.Seed, len(rep.Violations), rep.Dir)
	}
	// What Pass implies, said explicitly.
	if rep.Transfers.Acknowledged == 0 || rep.Transfers.Lost != 0 || rep.Transfers.Duplicated != 0 {
		t.Errorf("transfers: %+v", rep.Transfers)
	}
	if rep.Forks != 0 || rep.GenesisSupply != rep.FinalSupply || rep.Linearizable != "ok" {
		t.Errorf("forks %d, supply %d -> %d, linearizable %s", rep.Forks, rep.GenesisSupply, rep.FinalSupply, rep.Linearizable)
	}
	for _, f := range rep.Faults {
		if f.Recovery == nil {
			t.Errorf("%s %v did not recover", f.Kind, f.Nodes)
		}
	}
	if slices.ContainsFunc(rep.Faults, func(f chaos.FaultRecord) bool { return f.Kind == chaos.Twin }) && len(rep.Evidence) == 0 {
		t.Error("a twin ran but no evidence was committed")
	}
}

// TestChaosProcesses runs the scenario on four ledgerd processes.
// Partitions need network namespaces (root and iproute2); without them
// the scenario runs the other four faults on loopback.
func TestChaosProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network of ledgerd processes for about 105 seconds")
	}
	bin := ledgerdBinary(t)
	seed, d := seedAndDuration(t)
	faults := chaos.AllFaults
	if err := chaos.NetnsAvailable(); err != nil {
		t.Logf("no partitions in this run: %v", err)
		faults = slices.DeleteFunc(slices.Clone(faults), func(k chaos.FaultKind) bool { return k == chaos.Partition })
	}
	run(t, chaos.Config{Bin: bin, Validators: 4, Duration: d, Seed: seed, Faults: faults})
}

// TestChaosDocker runs the scenario on four ledgerd containers: docker
// kill, docker pause, docker network disconnect. It skips where no Docker
// daemon runs.
func TestChaosDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network of ledgerd containers for about 105 seconds")
	}
	if err := chaos.DockerAvailable(); err != nil {
		t.Skipf("no Docker: %v", err)
	}
	bin := ledgerdBinary(t)
	seed, d := seedAndDuration(t)
	run(t, chaos.Config{Bin: bin, Validators: 4, Duration: d, Seed: seed, Docker: true})
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
