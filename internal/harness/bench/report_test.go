package bench

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
)

// secs converts seconds since the load started to nanoseconds.
func secs(s float64) int64 { return int64(s * float64(time.Second)) }

// fixtureRun is a run of 3 s (window 1-3 s) with hand-placed transfers:
//
//	tx0  sent 0.5  committed 0.7   before the window
//	tx1  sent 1.2  committed 1.5   latency 300 ms
//	tx2  sent 1.6  committed 2.6   latency 1000 ms (first tried at 1.5)
//	tx3  sent 2.9  committed 3.2   latency 300 ms, committed after the window
//	tx4  sent 2.0  never committed
//	tx5  tried 2.1, refused for good
//	tx6  never sent
//	tx7  tried 2.0, answer lost, committed 2.2 (unacknowledged)
func fixtureRun() *runData {
	cfg := &Config{Spawn: 2, Rate: 100, Workers: 2, Warmup: time.Second, Duration: 3 * time.Second, Drain: 500 * time.Millisecond}
	txs := make([]transfer, 8)
	set := func(i int, first, sent, committed float64, state uint32) {
		txs[i].firstTry.Store(secs(first))
		txs[i].sent.Store(secs(sent))
		txs[i].committed.Store(secs(committed))
		txs[i].state.Store(state)
	}
	set(0, 0.5, 0.5, 0.7, stateAdmitted)
	set(1, 1.2, 1.2, 1.5, stateAdmitted)
	set(2, 1.5, 1.6, 2.6, stateAdmitted)
	set(3, 2.9, 2.9, 3.2, stateAdmitted)
	set(4, 2.0, 2.0, 0, stateAdmitted)
	set(5, 2.1, 0, 0, stateAbandoned)
	set(7, 2.0, 0, 2.2, stateUnsent)
	base := ledger.Timestamp(time.Unix(1_700_000_000, 0).UnixNano())
	blocks := []blockSeen{
		{Height: 9, Arrived: -time.Second, Time: base - ledger.Timestamp(time.Second)},
		{Height: 10, Arrived: 700 * time.Millisecond, Time: base, Txs: 1, Ours: 1},
		{Height: 12, Arrived: 2600 * time.Millisecond, Time: base + ledger.Timestamp(1900*time.Millisecond), Txs: 2, Ours: 2},
		{Height: 11, Arrived: 1500 * time.Millisecond, Time: base + ledger.Timestamp(800*time.Millisecond), Txs: 5, Ours: 1},
		{Height: 13, Arrived: 3200 * time.Millisecond, Time: base + ledger.Timestamp(2500*time.Millisecond), Txs: 1, Ours: 1, PrevRound: 2},
	}
	snap := func(at time.Duration, cpu time.Duration, rss int64, busy time.Duration) snapshot {
		p := ProcSample{CPU: cpu, RSS: rss, PeakRSS: 2 * rss}
		return snapshot{At: at, Nodes: []ProcSample{p, p}, Self: p, Machine: MachineCPU{Busy: busy}}
	}
	d := &runData{
		cfg: cfg, mode: "spawn", started: time.Unix(1_700_000_000, 0),
		names: []string{"node0", "node1"}, rpcs: []string{"http://a", "http://b"}, pids: []int{11, 12},
		targets: []int{0, 1}, accounts: 4, presigned: len(txs), txs: txs, blocks: blocks,
		refusals: []Refusal{{Reason: "mempool_full", Count: 3}}, refusedPerSec: newSecondCounter(5),
		retries: 3, abandoned: 1, drain: 500 * time.Millisecond,
		idle:     snap(0, 0, 40<<20, 0),
		winStart: snap(time.Second, time.Second, 50<<20, 2*time.Second),
		winEnd:   snap(3*time.Second, 2*time.Second, 60<<20, 5*time.Second),
		final:    snap(3500*time.Millisecond, 2*time.Second, 64<<20, 6*time.Second),
	}
	d.refusedPerSec.add(1500*time.Millisecond, 3)
	for s := 0; s <= 3; s++ {
		d.snaps = append(d.snaps, snap(time.Duration(s)*time.Second, time.Duration(s)*300*time.Millisecond, 50<<20, 0))
	}
	return d
}

func TestBuildReportFigures(t *testing.T) {
	r := buildReport(fixtureRun())
	tot := r.Totals
	if tot.Submitted != 7 || tot.Admitted != 5 || tot.Committed != 5 || tot.CommittedUnacked != 1 || tot.Uncommitted != 1 || tot.Abandoned != 1 {
		t.Errorf("totals %+v; want submitted 7, admitted 5, committed 5 (1 unacked), uncommitted 1, abandoned 1", tot)
	}
	if r.Window != (Window{StartS: 1, EndS: 3}) {
		t.Errorf("window %+v, want 1-3 s", r.Window)
	}
	// Committed inside [1 s, 3 s): tx1, tx2, tx7 over 2 s.
	if r.CommittedTPS != 1.5 {
		t.Errorf("committed tps %v, want 1.5", r.CommittedTPS)
	}
	// First tried inside the window: tx1, tx2, tx3, tx4, tx5, tx7.
	if r.SubmittedTPS != 3 {
		t.Errorf("submitted tps %v, want 3", r.SubmittedTPS)
	}
	// Latency over acknowledged transfers sent in the window: tx1, tx2, tx3.
	if want := (Summary{Count: 3, Min: 300, Mean: 533.333, P50: 300, P90: 1000, P99: 1000, Max: 1000}); r.Latency != want {
		t.Errorf("latency %+v, want %+v", r.Latency, want)
	}
	// Blocks arriving in the window: 11 and 12, 1100 ms apart.
	// Block 13's last commit says 12 took until round 2.
	if r.Blocks.Count != 2 || r.Blocks.Txs != 7 || r.Blocks.MaxTxs != 5 || r.Blocks.Interval.Count != 1 || r.Blocks.Interval.P50 != 1100 || r.Blocks.LateRounds != 1 {
		t.Errorf("blocks %+v", r.Blocks)
	}
	if len(r.Nodes) != 2 || r.Nodes[0].CPUCores != 0.5 || r.Nodes[0].IdleRSSMB != 40 || r.Nodes[0].EndRSSMB != 60 || r.Nodes[0].PeakRSSMB != 128 {
		t.Errorf("node0 %+v; want 0.5 cores, idle 40, end 60, peak 128 MiB", r.Nodes[0])
	}
	// 2 nodes x 1 CPU second over 3 committed transfers.
	if r.NodeCPUPerTx != 666667 {
		t.Errorf("node cpu per tx %v us, want 666667", r.NodeCPUPerTx)
	}
	if r.MachineBusyCores != 1.5 {
		t.Errorf("machine busy %v cores, want 1.5", r.MachineBusyCores)
	}
	// Seconds 0..3 (the drain ends at 3.5 s, the last commit at 3.2 s).
	if len(r.Series) != 4 {
		t.Fatalf("%d seconds in the series, want 4", len(r.Series))
	}
	var committed []int64
	for i, s := range r.Series {
		if s.T != i {
			t.Errorf("series[%d].T = %d", i, s.T)
		}
		committed = append(committed, s.Committed)
	}
	if !slices.Equal(committed, []int64{1, 1, 2, 1}) {
		t.Errorf("committed per second %v, want [1 1 2 1]", committed)
	}
	if s := r.Series[2]; s.LatencyP50 != 1000 || s.Blocks != 1 || s.Submitted != 4 {
		t.Errorf("second 2 = %+v; want p50 1000 ms (tx7 has no latency), 1 block, 4 first tries", s)
	}
	if r.Series[1].Refused != 3 {
		t.Errorf("refused in second 1 = %d, want 3", r.Series[1].Refused)
	}
	if cpu := r.Series[0].NodeCPU; len(cpu) != 2 || cpu[0] != 0.3 {
		t.Errorf("node cpu in second 0 = %v, want [0.3 0.3]", cpu)
	}
	if !hasNote(r, "had not committed") || !hasNote(r, "refused for good") || !hasNote(r, "sent 3 of the 100 tx/s") {
		t.Errorf("notes %q miss the uncommitted transfer, the abandoned one or the generator falling behind", r.Notes)
	}
}

func hasNote(r *Report, s string) bool {
	return slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, s) })
}

// TestReportJSONShape pins the field names other tools read.
func TestReportJSONShape(t *testing.T) {
	var buf bytes.Buffer
	if err := buildReport(fixtureRun()).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"version", "started", "config.mode", "config.rate", "config.accounts", "config.duration_s",
		"host.cpus", "host.load_avg_start", "host.load_avg_end",
		"totals.submitted", "totals.admitted", "totals.committed", "totals.committed_twice", "totals.uncommitted", "totals.refusals",
		"window.start_s", "window.end_s", "committed_tps", "submitted_tps",
		"latency.count", "latency.p50_ms", "latency.p90_ms", "latency.p99_ms", "latency.max_ms",
		"blocks.count", "blocks.interval.p50_ms", "blocks.mean_txs", "blocks.late_rounds",
		"nodes", "generator.cpu_cores", "generator.peak_rss_mb", "node_cpu_per_tx_us", "machine_busy_cores", "series",
	} {
		var v any = m
		for _, k := range strings.Split(path, ".") {
			obj, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%s: %v is not an object", path, v)
			}
			if v, ok = obj[k]; !ok {
				t.Fatalf("report JSON has no %s:\n%s", path, buf.String())
			}
		}
	}
	node := m["nodes"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "pid", "rpc", "cpu_s", "cpu_cores", "idle_rss_mb", "end_rss_mb", "peak_rss_mb"} {
		if _, ok := node[k]; !ok {
			t.Errorf("node entry has no %q: %v", k, node)
		}
	}
	second := m["series"].([]any)[0].(map[string]any)
	for _, k := range []string{"t", "submitted", "admitted", "refused", "committed", "blocks", "latency_p50_ms", "latency_p99_ms", "node_cpu_cores"} {
		if _, ok := second[k]; !ok {
			t.Errorf("series entry has no %q: %v", k, second)
		}
	}
	if int(m["version"].(float64)) != ReportVersion {
		t.Errorf("version %v", m["version"])
	}
}

func TestWriteSummaryNamesTheHeadlineFigures(t *testing.T) {
	var buf bytes.Buffer
	if err := buildReport(fixtureRun()).WriteSummary(&buf); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"committed      2 tx/s", "p99 1000 ms", "node1", "generator", "mempool_full 3", "load average"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("summary lacks %q:\n%s", s, buf.String())
		}
	}
}
