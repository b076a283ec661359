package bench

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/rpc/client"
)

// Run drives the network cfg names (spawning it if asked) and reports what
// it measured. It returns an error when the run could not be carried out;
// a run that completed but lost transfers is reported, not an error (the
// caller checks Totals).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	d := &runData{cfg: &cfg, started: time.Now()}
	d.loadAvgStart, _ = LoadAvg()

	var nw *network
	if cfg.Spawn > 0 {
		d.mode = "spawn"
		nw, err = spawnNetwork(ctx, &cfg)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		defer stopNetwork(nw, &cfg)
	} else {
		d.mode = "testnet"
		if nw, err = loadNetwork(ctx, &cfg); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	d.names, d.rpcs, d.pids = nw.names, nw.rpc, nw.pids
	d.accounts = len(nw.accounts)
	targets := cfg.Targets
	if len(targets) == 0 {
		for i := range nw.clients {
			targets = append(targets, i)
		}
	}
	for _, t := range append([]int{cfg.Observe}, targets...) {
		if t < 0 || t >= len(nw.clients) {
			return nil, fmt.Errorf("bench: node %d: the network has nodes 0 to %d", t, len(nw.clients)-1)
		}
	}
	d.targets = targets
	if d.accounts < len(targets)*cfg.Workers {
		progress(&cfg, "only %d accounts for %d workers: some workers stay idle", d.accounts, len(targets)*cfg.Workers)
	}

	// Pre-sign, before the clock starts.
	nonces := make([]uint64, d.accounts)
	if cfg.Spawn == 0 {
		clientOf := func(a int) *client.Client { return nw.clients[targets[a%len(targets)]] }
		if nonces, err = pendingNonces(ctx, nw.accounts, clientOf); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	perAcct := (cfg.presignCount() + d.accounts - 1) / d.accounts
	progress(&cfg, "pre-signing %d transfers (%d per account)", perAcct*d.accounts, perAcct)
	signStart := time.Now()
	p, err := presign(ctx, nw.chainID, nw.accounts, nonces, perAcct)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	progress(&cfg, "pre-signed in %s", time.Since(signStart).Round(time.Millisecond))
	d.presigned = len(p.txs)

	ws, err := workers(d.accounts, targets, cfg.Workers, nw.rpc)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	var slots chan struct{}
	if cfg.Rate == 0 {
		slots = make(chan struct{}, cfg.InFlight)
	}
	obs, wsc, sub, err := newObserver(ctx, nw.clients[cfg.Observe], p, slots)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	seconds := int((cfg.Duration+cfg.Drain)/time.Second) + 2
	l := &loader{cfg: &cfg, plan: p, nw: nw, slots: slots, series: newSecondCounter(seconds),
		refusals: map[string]int64{}, samples: map[string]string{}}

	// The clock starts.
	t0 := time.Now()
	obs.t0, l.t0 = t0, t0
	if cfg.Rate > 0 {
		for i, w := range ws {
			rate := cfg.Rate * float64(len(w.accts)) / float64(d.accounts)
			phase := float64(i) / float64(len(ws))
			if w.bucket, err = NewPhasedBucket(rate, max(1, int(rate/20)), t0, phase); err != nil {
				wsc.Close()
				return nil, fmt.Errorf("bench: %w", err)
			}
		}
	}
	smp := &sampler{pids: nw.pids, t0: t0}
	d.idle = smp.take()

	bgCtx, bgCancel := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Add(3)
	go func() { defer bg.Done(); obs.run(bgCtx, wsc, sub) }()
	go func() { defer bg.Done(); smp.run(bgCtx) }()
	go func() { defer bg.Done(); reportProgress(bgCtx, &cfg, t0, l, obs) }()
	defer func() { bgCancel(); bg.Wait() }()

	progress(&cfg, "load: %d workers on nodes %v for %s", len(ws), targets, cfg.Duration)
	stop, stopCancel := context.WithDeadline(ctx, t0.Add(cfg.Duration))
	defer stopCancel()
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() { defer wg.Done(); l.run(ctx, stop, w) }()
	}
	if err := sleepUntil(ctx, t0.Add(cfg.Warmup)); err != nil {
		wg.Wait()
		return nil, fmt.Errorf("bench: %w", err)
	}
	d.winStart = smp.take()
	<-stop.Done()
	d.winEnd = smp.take()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}

	// Drain: every admitted transfer should commit.
	progress(&cfg, "load done; waiting up to %s for %d admitted transfers to commit", cfg.Drain, l.admitted.Load())
	drainStart := time.Now()
	dctx, dcancel := context.WithTimeout(ctx, cfg.Drain)
	err = obs.waitUntil(dctx, func() bool { return uncommitted(p) == 0 })
	dcancel()
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("bench: %w", ctx.Err())
	}
	d.drain = time.Since(drainStart)
	d.final = smp.take()
	d.loadAvgEnd, _ = LoadAvg()
	bgCancel()
	bg.Wait()

	d.txs = p.txs
	d.blocks, d.observeErr = obs.seen()
	d.twice = obs.twice.Load()
	d.refusals = l.refusalReport()
	d.refusedPerSec = l.series
	d.retries, d.abandoned = l.retries.Load(), l.abandoned.Load()
	d.exhausted = l.exhausted.Load() > 0
	d.snaps = smp.all()
	return buildReport(d), nil
}

// uncommitted counts admitted transfers not yet seen in a block.
func uncommitted(p *plan) int {
	n := 0
	for i := range p.txs {
		t := &p.txs[i]
		if t.state.Load() == stateAdmitted && t.committed.Load() == 0 {
			n++
		}
	}
	return n
}

// sleepUntil waits until t or ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func progress(cfg *Config, format string, args ...any) {
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "bench: "+format+"\n", args...)
	}
}

// reportProgress writes a line every 5 seconds: rates over the last 5.
func reportProgress(ctx context.Context, cfg *Config, t0 time.Time, l *loader, o *observer) {
	if cfg.Progress == nil {
		return
	}
	const every = 5 * time.Second
	tick := time.NewTicker(every)
	defer tick.Stop()
	var lastSub, lastCom int64
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		sub, com := l.firstTries.Load(), o.committed.Load()
		pending := l.admitted.Load() - com
		progress(cfg, "t=%3.0fs  submitted %6.0f tx/s  committed %6.0f tx/s  admitted-not-committed %d",
			time.Since(t0).Seconds(), float64(sub-lastSub)/every.Seconds(), float64(com-lastCom)/every.Seconds(), max(0, pending))
		lastSub, lastCom = sub, com
	}
}

// runData is everything a run collected, from which buildReport computes
// the report.
type runData struct {
	cfg            *Config
	mode           string
	started        time.Time
	names, rpcs    []string
	pids           []int
	targets        []int
	accounts       int
	presigned      int
	loadAvgStart   [3]float64
	loadAvgEnd     [3]float64
	txs            []transfer
	blocks         []blockSeen
	observeErr     error
	refusals       []Refusal
	refusedPerSec  *secondCounter
	retries        int64
	abandoned      int64
	twice          int64
	exhausted      bool
	drain          time.Duration
	idle, winStart snapshot
	winEnd, final  snapshot
	snaps          []snapshot // one a second from the start of the load
}

// buildReport computes the figures from what a run collected.
func buildReport(d *runData) *Report {
	cfg := d.cfg
	r := &Report{
		Version: ReportVersion,
		Started: d.started.UTC().Truncate(time.Second),
		Args:    cfg.Args,
		Config: RunConfig{
			Mode: d.mode, Nodes: len(d.names), Targets: d.targets, Observe: cfg.Observe, Accounts: d.accounts,
			Rate: cfg.Rate, WorkersPerNode: cfg.Workers,
			DurationS: cfg.Duration.Seconds(), WarmupS: cfg.Warmup.Seconds(), DrainS: cfg.Drain.Seconds(),
			Presigned: d.presigned, MaxBlockTxs: cfg.MaxBlockTxs, NodeArgs: cfg.NodeArgs,
		},
		Host: Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
			LoadAvgStart: d.loadAvgStart, LoadAvgEnd: d.loadAvgEnd},
		Window: Window{StartS: cfg.Warmup.Seconds(), EndS: cfg.Duration.Seconds()},
	}
	if cfg.Rate == 0 {
		r.Config.InFlight = cfg.InFlight
	}
	if cfg.TimeoutCommit > 0 {
		r.Config.TimeoutCommitMS = float64(cfg.TimeoutCommit) / float64(time.Millisecond)
	}
	ws, we := cfg.Warmup.Nanoseconds(), cfg.Duration.Nanoseconds()
	in := func(t int64) bool { return t >= ws && t < we }
	sec := func(t int64) int { return int(t / int64(time.Second)) }

	// Transfers: totals, window figures and the per-second series.
	last := int64(0)
	for i := range d.txs {
		last = max(last, d.txs[i].committed.Load())
	}
	n := max(sec(we+d.drain.Nanoseconds()), sec(last)) + 1
	series := make([]Second, n)
	perSecLat := make([][]time.Duration, n)
	var windowLat []time.Duration
	var windowCommitted, windowSubmitted int64
	tot := &r.Totals
	for i := range d.txs {
		t := &d.txs[i]
		first, sent, com, state := t.firstTry.Load(), t.sent.Load(), t.committed.Load(), t.state.Load()
		if first > 0 || state != stateUnsent {
			tot.Submitted++
			if s := sec(first); s < n {
				series[s].Submitted++
			}
			if in(first) {
				windowSubmitted++
			}
		}
		if state == stateAdmitted {
			tot.Admitted++
			if s := sec(sent); s < n {
				series[s].Admitted++
			}
			if com == 0 {
				tot.Uncommitted++
			}
		}
		if com == 0 {
			continue
		}
		tot.Committed++
		if state != stateAdmitted {
			tot.CommittedUnacked++
		}
		if in(com) {
			windowCommitted++
		}
		s := sec(com)
		series[s].Committed++
		if state == stateAdmitted {
			lat := time.Duration(com - sent)
			perSecLat[s] = append(perSecLat[s], lat)
			if in(sent) {
				windowLat = append(windowLat, lat)
			}
		}
	}
	tot.Refusals = d.refusals
	if tot.Refusals == nil {
		tot.Refusals = []Refusal{}
	}
	tot.Retries, tot.Abandoned, tot.Exhausted, tot.CommittedTwice = d.retries, d.abandoned, d.exhausted, d.twice
	tot.DrainS = round2(d.drain.Seconds())
	secs := r.Window.Seconds()
	r.CommittedTPS = round2(float64(windowCommitted) / secs)
	r.SubmittedTPS = round2(float64(windowSubmitted) / secs)
	r.Latency = Summarize(windowLat)

	// Blocks.
	var inWin []blockSeen
	for _, b := range d.blocks {
		if b.Arrived >= 0 {
			if s := sec(b.Arrived.Nanoseconds()); s < n {
				series[s].Blocks++
			}
		}
		if in(b.Arrived.Nanoseconds()) {
			inWin = append(inWin, b)
		}
	}
	slices.SortFunc(inWin, func(a, b blockSeen) int { return cmp.Compare(a.Height, b.Height) })
	roundOf := map[uint64]int{} // height -> round it was decided in
	for _, b := range d.blocks {
		if b.PrevRound >= 0 && b.Height > 0 {
			roundOf[b.Height-1] = b.PrevRound
		}
	}
	var intervals []time.Duration
	for i, b := range inWin {
		r.Blocks.Count++
		r.Blocks.Txs += b.Txs
		r.Blocks.MaxTxs = max(r.Blocks.MaxTxs, b.Txs)
		if roundOf[b.Height] > 0 {
			r.Blocks.LateRounds++
		}
		if i > 0 && inWin[i-1].Height+1 == b.Height {
			intervals = append(intervals, time.Duration(b.Time-inWin[i-1].Time))
		}
	}
	if r.Blocks.Count > 0 {
		r.Blocks.MeanTxs = round2(float64(r.Blocks.Txs) / float64(r.Blocks.Count))
		r.Blocks.BlocksPerS = round2(float64(r.Blocks.Count) / secs)
	}
	r.Blocks.Interval = Summarize(intervals)

	// Processes.
	wall := (d.winEnd.At - d.winStart.At).Seconds()
	proc := func(name string, pid int, rpc string, idle, a, b, final ProcSample) ProcStats {
		ps := ProcStats{Name: name, PID: pid, RPC: rpc, IdleRSSMB: mib(idle.RSS), EndRSSMB: mib(b.RSS), PeakRSSMB: mib(final.PeakRSS)}
		if wall > 0 {
			ps.CPUSeconds = round2((b.CPU - a.CPU).Seconds())
			ps.CPUCores = round2((b.CPU - a.CPU).Seconds() / wall)
		}
		return ps
	}
	for i, name := range d.names {
		r.Nodes = append(r.Nodes, proc(name, d.pids[i], d.rpcs[i], at(d.idle.Nodes, i), at(d.winStart.Nodes, i), at(d.winEnd.Nodes, i), at(d.final.Nodes, i)))
	}
	var nodeCPU float64
	for _, n := range r.Nodes {
		nodeCPU += n.CPUSeconds
	}
	if windowCommitted > 0 {
		r.NodeCPUPerTx = math.Round(nodeCPU / float64(windowCommitted) * 1e6)
	}
	r.Generator = proc("generator", os.Getpid(), "", d.idle.Self, d.winStart.Self, d.winEnd.Self, d.final.Self)
	if wall > 0 {
		r.MachineBusyCores = round2((d.winEnd.Machine.Busy - d.winStart.Machine.Busy).Seconds() / wall)
	}

	// The per-second series.
	for s := range series {
		series[s].T = s
		series[s].Refused = d.refusedPerSec.get(s)
		if lat := perSecLat[s]; len(lat) > 0 {
			slices.Sort(lat)
			series[s].LatencyP50 = ms(Percentile(lat, 50))
			series[s].LatencyP99 = ms(Percentile(lat, 99))
		}
		series[s].NodeCPU = make([]float64, len(d.names))
	}
	for k := 1; k < len(d.snaps); k++ {
		a, b := d.snaps[k-1], d.snaps[k]
		s, dt := sec(a.At.Nanoseconds()+int64(time.Second/2)), (b.At - a.At).Seconds()
		if s < 0 || s >= n || dt <= 0 {
			continue
		}
		for i := range d.names {
			series[s].NodeCPU[i] = round2((at(b.Nodes, i).CPU - at(a.Nodes, i).CPU).Seconds() / dt)
		}
	}
	r.Series = series
	r.Notes = notes(d, r)
	return r
}

func at(s []ProcSample, i int) ProcSample {
	if i < len(s) {
		return s[i]
	}
	return ProcSample{}
}

// notes says what makes a run's figures doubtful.
func notes(d *runData, r *Report) []string {
	var out []string
	if r.Config.Rate > 0 && r.SubmittedTPS < 0.95*r.Config.Rate {
		out = append(out, fmt.Sprintf("the generator sent %.0f of the %.0f tx/s asked: the nodes answered too slowly for %d workers per node (or were saturated)",
			r.SubmittedTPS, r.Config.Rate, r.Config.WorkersPerNode))
	}
	if r.Totals.Exhausted {
		out = append(out, fmt.Sprintf("workers sent all %d pre-signed transfers before the end: raise --txs", r.Config.Presigned))
	}
	if r.Totals.Uncommitted > 0 {
		out = append(out, fmt.Sprintf("%d admitted transfers had not committed after the %.0fs drain", r.Totals.Uncommitted, r.Config.DrainS))
	}
	if r.Totals.CommittedTwice > 0 {
		out = append(out, fmt.Sprintf("%d transfers were committed in two blocks: a replay the nonce rule forbids", r.Totals.CommittedTwice))
	}
	if r.Totals.Abandoned > 0 {
		out = append(out, fmt.Sprintf("%d transfers were refused for good (see refusals)", r.Totals.Abandoned))
	}
	if d.observeErr != nil {
		out = append(out, fmt.Sprintf("observer: %v", d.observeErr))
	}
	var own float64
	for _, n := range r.Nodes {
		own += n.CPUCores
	}
	own += r.Generator.CPUCores
	if other := r.MachineBusyCores - own; other > 0.2 {
		out = append(out, fmt.Sprintf("other processes used about %.2f cores during the window", other))
	}
	return out
}
