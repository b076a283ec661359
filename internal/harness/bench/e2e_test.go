package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/harness/localnet"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// TestMain removes the binary ledgerdBinary built, if any.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// ledgerdBinary builds cmd/ledgerd once per test run.
func ledgerdBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds ledgerd and runs four node processes")
	}
	binOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		dir, err := os.MkdirTemp("", "ledgerd-bench-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath, binErr = localnet.BuildBinary(filepath.Join(filepath.Dir(file), "..", "..", ".."), dir) // the module root
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// TestBenchCommandAgainstProcesses runs `ledgerd bench --spawn 4
// --duration 5s --rate 200` end to end: four real node processes, real
// RPC, the report and plot files.
func TestBenchCommandAgainstProcesses(t *testing.T) {
	bin := ledgerdBinary(t)
	dir := t.TempDir()
	out, plot := filepath.Join(dir, "bench.json"), filepath.Join(dir, "bench.svg")
	cmd := exec.Command(bin, "bench", "--spawn", "4", "--accounts", "200", "--duration", "5s", "--rate", "200",
		"--drain", "20s", "--dir", filepath.Join(dir, "net"), "--out", out, "--plot", plot)
	summary, err := cmd.CombinedOutput()
	t.Logf("ledgerd bench:\n%s", summary)
	if err != nil {
		for i := 0; i < 4; i++ {
			if b, rerr := os.ReadFile(filepath.Join(dir, "net", fmt.Sprintf("node%d", i), "node.log")); rerr == nil {
				t.Logf("node%d log tail:\n%s", i, tail(b, 2000))
			}
		}
		t.Fatal(err)
	}
	buf, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(buf, &r); err != nil {
		t.Fatalf("report: %v", err)
	}
	tot := r.Totals
	if tot.Submitted < 800 {
		t.Errorf("submitted %d transfers in 5 s at 200/s", tot.Submitted)
	}
	if tot.Admitted != tot.Submitted || tot.Committed != tot.Admitted || tot.Uncommitted != 0 || tot.CommittedUnacked != 0 || tot.CommittedTwice != 0 {
		t.Errorf("submitted %d, admitted %d, committed %d (unacked %d, twice %d), uncommitted %d: every admitted transfer must commit, exactly once",
			tot.Submitted, tot.Admitted, tot.Committed, tot.CommittedUnacked, tot.CommittedTwice, tot.Uncommitted)
	}
	if r.Latency.Count == 0 || r.Latency.Min <= 0 || r.Latency.P50 <= 0 || r.Latency.P99 < r.Latency.P50 {
		t.Errorf("latency %+v: want positive, ordered percentiles", r.Latency)
	}
	if r.CommittedTPS <= 0 || r.Blocks.Count == 0 || r.Blocks.Interval.P50 <= 0 {
		t.Errorf("committed %v tx/s, blocks %+v", r.CommittedTPS, r.Blocks)
	}
	if len(r.Nodes) != 4 {
		t.Fatalf("%d nodes in the report", len(r.Nodes))
	}
	for _, n := range r.Nodes {
		if n.PID <= 0 || n.CPUSeconds <= 0 || n.PeakRSSMB <= 0 {
			t.Errorf("%s: pid %d, cpu %v s, peak %v MiB: want all positive", n.Name, n.PID, n.CPUSeconds, n.PeakRSSMB)
		}
	}
	svg, err := os.ReadFile(plot)
	if err != nil {
		t.Fatal(err)
	}
	if got := polylines(t, svg); got["committed"] != len(r.Series) {
		t.Errorf("plot has %d committed points for %d seconds", got["committed"], len(r.Series))
	}
}

// TestClosedLoopRunInProcess drives four node processes as fast as they
// take transfers, with a small in-flight bound, from Run in this process
// (so the race detector sees the generator's goroutines).
func TestClosedLoopRunInProcess(t *testing.T) {
	bin := ledgerdBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Run(ctx, Config{Spawn: 4, Bin: bin, Dir: filepath.Join(t.TempDir(), "net"), Accounts: 100,
		Duration: 3 * time.Second, Warmup: time.Second, Drain: 20 * time.Second, Workers: 4, InFlight: 300, Txs: 20_000})
	if err != nil {
		t.Fatal(err)
	}
	tot := r.Totals
	if tot.Admitted == 0 || tot.Committed != tot.Admitted || tot.Uncommitted != 0 || tot.Abandoned != 0 || tot.CommittedTwice != 0 {
		t.Fatalf("totals %+v: every admitted transfer must commit", tot)
	}
	if r.Config.InFlight != 300 || r.Latency.Count == 0 || r.Latency.P50 <= 0 {
		t.Fatalf("config %+v, latency %+v", r.Config, r.Latency)
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
