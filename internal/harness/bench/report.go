package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// ReportVersion is the version of the JSON report's shape; it changes
// when a field changes meaning or goes away.
const ReportVersion = 1

// Report is the outcome of a run, written as JSON by `ledgerd bench --out`.
// Throughput and latency cover the steady-state window only (see Window).
type Report struct {
	Version int       `json:"version"`
	Started time.Time `json:"started"`
	Args    []string  `json:"args,omitempty"`
	Config  RunConfig `json:"config"`
	Host    Host      `json:"host"`
	Totals  Totals    `json:"totals"`
	Window  Window    `json:"window"`
	// CommittedTPS is this run's transfers committed per second during the
	// window; SubmittedTPS the new transfers sent per second (the offered
	// load actually achieved).
	CommittedTPS float64 `json:"committed_tps"`
	SubmittedTPS float64 `json:"submitted_tps"`
	// Latency is submit-to-commit over transfers whose admitted request
	// started inside the window.
	Latency   Summary     `json:"latency"`
	Blocks    BlockStats  `json:"blocks"`
	Nodes     []ProcStats `json:"nodes"`
	Generator ProcStats   `json:"generator"`
	// NodeCPUPerTx is the CPU all nodes together spent per committed
	// transfer during the window, in microseconds: what a transfer costs the
	// network, whatever else shares the machine.
	NodeCPUPerTx float64 `json:"node_cpu_per_tx_us"`
	// MachineBusyCores is the whole machine's busy CPU during the window,
	// in cores: nodes, generator and anything else running on it.
	MachineBusyCores float64  `json:"machine_busy_cores"`
	Series           []Second `json:"series"`
	// Notes are warnings about the run's validity (for example the
	// generator fell behind the asked rate).
	Notes []string `json:"notes,omitempty"`
}

// RunConfig records the settings a run used.
type RunConfig struct {
	Mode            string   `json:"mode"` // "spawn" or "testnet"
	Nodes           int      `json:"nodes"`
	Targets         []int    `json:"targets"`
	Observe         int      `json:"observe"`
	Accounts        int      `json:"accounts"`
	Rate            float64  `json:"rate"` // 0: as fast as possible
	InFlight        int      `json:"in_flight,omitempty"`
	WorkersPerNode  int      `json:"workers_per_node"`
	DurationS       float64  `json:"duration_s"`
	WarmupS         float64  `json:"warmup_s"`
	DrainS          float64  `json:"drain_s"`
	Presigned       int      `json:"presigned"`
	TimeoutCommitMS float64  `json:"timeout_commit_ms,omitempty"`
	MaxBlockTxs     uint64   `json:"max_block_txs,omitempty"`
	NodeArgs        []string `json:"node_args,omitempty"`
}

// Host describes the machine.
type Host struct {
	CPUs         int        `json:"cpus"`
	GoVersion    string     `json:"go_version"`
	OS           string     `json:"os"`
	LoadAvgStart [3]float64 `json:"load_avg_start"`
	LoadAvgEnd   [3]float64 `json:"load_avg_end"`
}

// Totals count transfers over the whole run.
type Totals struct {
	// Submitted transfers were sent at least once; Admitted were answered
	// with their hash by a node; Committed were found in a block (of these,
	// CommittedUnacked were never acknowledged: their request failed but
	// the node had admitted them). Uncommitted = Admitted - acknowledged
	// committed, at the end of the drain.
	Submitted        int64 `json:"submitted"`
	Admitted         int64 `json:"admitted"`
	Committed        int64 `json:"committed"`
	CommittedUnacked int64 `json:"committed_unacked"`
	// CommittedTwice counts transfers found in more than one block (a
	// replay the nonce rule forbids); anything but 0 is a bug.
	CommittedTwice int64     `json:"committed_twice"`
	Uncommitted    int64     `json:"uncommitted"`
	Abandoned      int64     `json:"abandoned"`
	Retries        int64     `json:"retries"`
	Refusals       []Refusal `json:"refusals"`
	// Exhausted is true when some worker sent every pre-signed transfer it
	// had before the load phase ended (the offered load fell short).
	Exhausted bool `json:"exhausted"`
	// DrainS is how long the drain took.
	DrainS float64 `json:"drain_s"`
}

// Refusal counts the answers refusing a transfer for one reason (the
// RPC's data.reason, "transport" for no answer).
type Refusal struct {
	Reason  string `json:"reason"`
	Count   int64  `json:"count"`
	Example string `json:"example,omitempty"`
}

// Window is the steady-state part of the load phase, in seconds since it
// started.
type Window struct {
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
}

// Seconds is the window's length.
func (w Window) Seconds() float64 { return w.EndS - w.StartS }

// BlockStats describe the blocks whose heads arrived inside the window.
type BlockStats struct {
	Count      int     `json:"count"`
	Txs        int     `json:"txs"`
	MeanTxs    float64 `json:"mean_txs"`
	MaxTxs     int     `json:"max_txs"`
	BlocksPerS float64 `json:"blocks_per_s"`
	// Interval is between consecutive blocks' header times.
	Interval Summary `json:"interval"`
	// LateRounds counts the blocks decided in a round above 0 (a proposal
	// that missed its timeouts), of those whose round is known (from the
	// next block's last commit).
	LateRounds int `json:"late_rounds"`
}

// ProcStats is one process's CPU and memory.
type ProcStats struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	RPC  string `json:"rpc,omitempty"`
	// CPUSeconds is CPU time used during the window; CPUCores that divided
	// by the window's length (1.0 = one core busy).
	CPUSeconds float64 `json:"cpu_s"`
	CPUCores   float64 `json:"cpu_cores"`
	// IdleRSSMB is the resident set just before the load, EndRSSMB at its
	// end, PeakRSSMB the high-water mark (VmHWM) since the process started,
	// all in MiB.
	IdleRSSMB float64 `json:"idle_rss_mb"`
	EndRSSMB  float64 `json:"end_rss_mb"`
	PeakRSSMB float64 `json:"peak_rss_mb"`
}

// Second is one second of the run, counted from the start of the load.
type Second struct {
	T         int   `json:"t"`
	Submitted int64 `json:"submitted"`
	Admitted  int64 `json:"admitted"`
	Refused   int64 `json:"refused"`
	Committed int64 `json:"committed"`
	Blocks    int   `json:"blocks"`
	// Latency percentiles of the transfers that committed in this second,
	// in milliseconds (0 when none did).
	LatencyP50 float64 `json:"latency_p50_ms"`
	LatencyP99 float64 `json:"latency_p99_ms"`
	// NodeCPU is each node's CPU in cores during this second.
	NodeCPU []float64 `json:"node_cpu_cores"`
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// WriteSummary writes the report's headline figures for people.
func (r *Report) WriteSummary(w io.Writer) error {
	var b strings.Builder
	rate := "as fast as possible"
	if r.Config.Rate > 0 {
		rate = fmt.Sprintf("%.0f tx/s", r.Config.Rate)
	}
	fmt.Fprintf(&b, "ledgerd bench: %d nodes (%s), %d accounts, rate %s, %.0fs (window %.0f-%.0fs)\n",
		r.Config.Nodes, r.Config.Mode, r.Config.Accounts, rate, r.Config.DurationS, r.Window.StartS, r.Window.EndS)
	fmt.Fprintf(&b, "  committed      %.0f tx/s  (submitted %.0f tx/s)\n", r.CommittedTPS, r.SubmittedTPS)
	fmt.Fprintf(&b, "  latency        p50 %.0f ms  p90 %.0f ms  p99 %.0f ms  max %.0f ms  (%d transfers)\n",
		r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max, r.Latency.Count)
	fmt.Fprintf(&b, "  blocks         %.2f/s, interval p50 %.0f ms p99 %.0f ms, %.0f txs/block (max %d), %d decided after round 0\n",
		r.Blocks.BlocksPerS, r.Blocks.Interval.P50, r.Blocks.Interval.P99, r.Blocks.MeanTxs, r.Blocks.MaxTxs, r.Blocks.LateRounds)
	t := r.Totals
	fmt.Fprintf(&b, "  transfers      submitted %d, admitted %d, committed %d, uncommitted %d, abandoned %d, retries %d\n",
		t.Submitted, t.Admitted, t.Committed, t.Uncommitted, t.Abandoned, t.Retries)
	if t.CommittedTwice > 0 {
		fmt.Fprintf(&b, "  REPLAYED       %d transfers were committed twice\n", t.CommittedTwice)
	}
	if len(t.Refusals) > 0 {
		var parts []string
		for _, rf := range t.Refusals {
			parts = append(parts, fmt.Sprintf("%s %d", rf.Reason, rf.Count))
		}
		fmt.Fprintf(&b, "  refusals       %s\n", strings.Join(parts, ", "))
	}
	for _, n := range append(append([]ProcStats(nil), r.Nodes...), r.Generator) {
		fmt.Fprintf(&b, "  %-14s cpu %.2f cores  rss idle %.0f MiB, end %.0f MiB, peak %.0f MiB\n",
			n.Name, n.CPUCores, n.IdleRSSMB, n.EndRSSMB, n.PeakRSSMB)
	}
	fmt.Fprintf(&b, "  cost           %.0f us of node CPU per committed transfer (all nodes)\n", r.NodeCPUPerTx)
	fmt.Fprintf(&b, "  machine        %.2f of %d cores busy; load average %.2f %.2f %.2f before, %.2f %.2f %.2f after\n",
		r.MachineBusyCores, r.Host.CPUs, r.Host.LoadAvgStart[0], r.Host.LoadAvgStart[1], r.Host.LoadAvgStart[2],
		r.Host.LoadAvgEnd[0], r.Host.LoadAvgEnd[1], r.Host.LoadAvgEnd[2])
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mib converts bytes to MiB with one decimal.
func mib(b int64) float64 { return math.Round(float64(b)/(1<<20)*10) / 10 }

// round2 rounds to two decimals.
func round2(v float64) float64 { return math.Round(v*100) / 100 }
