package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/node"
	"github.com/ledgerd/ledgerd/privval"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// Config describes a chaos run.
type Config struct {
	// Bin is the ledgerd binary the nodes run. With Docker it must be
	// statically linked (CGO_ENABLED=0).
	Bin string
	// Dir receives the node homes, logs, the history and the report's
	// files. Empty means a temporary directory, removed after a passing
	// run and kept after a failing one.
	Dir        string
	Validators int           // at least 4; default 4
	Duration   time.Duration // of the faulty phase; default 2m
	Seed       int64
	Faults     []FaultKind // default AllFaults
	Docker     bool
	// Loopback runs processes on loopback even where network namespaces
	// are available; partitions are then impossible.
	Loopback bool
	Senders  int // transfer clients, one account each; default 8
	Readers  int // read clients; default 2
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Run modes, as reports name them.
const (
	modeNetns    = "processes (network namespaces)"
	modeLoopback = "processes (loopback)"
	modeDocker   = "docker"
)

// Bounds on waiting for the network.
const (
	startBound    = 90 * time.Second // every validator up and committing
	recoveryBound = 90 * time.Second // after a heal
	drainBound    = 30 * time.Second // transfers in flight when the workload stops
	evidenceBound = 20 * time.Second // beyond the twin's window, for its evidence to commit
	checkBound    = 2 * time.Minute  // porcupine
	logScan       = 64 << 20         // bytes of a node's log searched for its WAL repair
	timeoutCommit = 100 * time.Millisecond
	senderBalance = 1_000_000_000_000
)

// Run generates a network, runs the workload and the seeded fault
// schedule on it, checks the outcome and returns the report. An error
// means the run could not be carried out (no binary, no Docker, a context
// cancelled); what the run found is in the report, which fails when any
// check does.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Validators == 0 {
		cfg.Validators = 4
	}
	if cfg.Duration == 0 {
		cfg.Duration = 2 * time.Minute
	}
	if len(cfg.Faults) == 0 {
		cfg.Faults = AllFaults
	}
	if cfg.Senders == 0 {
		cfg.Senders = 8
	}
	if cfg.Readers == 0 {
		cfg.Readers = 2
	}
	if cfg.Bin == "" {
		return nil, errors.New("chaos: no ledgerd binary")
	}
	sched, err := NewSchedule(cfg.Seed, cfg.Validators, cfg.Duration, cfg.Faults)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	var logMu sync.Mutex
	logf := func(format string, args ...any) {
		logMu.Lock()
		fmt.Fprintf(logw, "chaos: "+format+"\n", args...)
		logMu.Unlock()
	}
	logf("seed %d (replay the same fault schedule with --seed %d)", cfg.Seed, cfg.Seed)
	for _, f := range sched.Faults {
		logf("scheduled: %s", f)
	}

	mode := modeDocker
	switch {
	case cfg.Docker:
		if err := DockerAvailable(); err != nil {
			return nil, fmt.Errorf("chaos: %w", err)
		}
	case cfg.Loopback || NetnsAvailable() != nil:
		mode = modeLoopback
		if slices.Contains(sched.Kinds, Partition) {
			why := "--loopback"
			if err := NetnsAvailable(); err != nil {
				why = err.Error()
			}
			return nil, fmt.Errorf("chaos: partition faults: %w (%s); leave partition out of --faults", ErrNoPartitions, why)
		}
	default:
		mode = modeNetns
	}

	dir, temp := cfg.Dir, cfg.Dir == ""
	if temp {
		if dir, err = os.MkdirTemp("", "ledgerd-chaos-"); err != nil {
			return nil, fmt.Errorf("chaos: %w", err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	params := ledger.DefaultConsensusParams()
	params.TimeoutCommit = ledger.Duration(timeoutCommit)
	// One funded account more than the senders: the staker of churn faults.
	opts := node.TestnetOptions{ChainID: "chaos", Validators: cfg.Validators, FundedAccounts: cfg.Senders + 1,
		Balance: senderBalance, Params: &params}

	var c cluster
	switch mode {
	case modeDocker:
		c, err = newDockerCluster(ctx, dir, cfg.Bin, opts)
	default:
		c, err = newProcCluster(dir, cfg.Bin, mode == modeNetns, opts)
	}
	if err != nil {
		if temp {
			os.RemoveAll(dir)
		}
		return nil, fmt.Errorf("chaos: %w", err)
	}
	logf("%s network of %d validators in %s", mode, cfg.Validators, dir)

	r := &runner{cfg: cfg, logf: logf, c: c, dir: dir, sched: sched, mon: newMonitor(c), hist: NewHistory(),
		rep: &Report{Seed: cfg.Seed, Mode: mode, Validators: cfg.Validators, Duration: secondsOf(cfg.Duration),
			Schedule: sched, Dir: dir}}
	began := time.Now()
	err = r.run(ctx)
	c.Close()
	r.rep.Elapsed = secondsOf(time.Since(began))
	if err != nil {
		return nil, fmt.Errorf("chaos (files in %s): %w", dir, err)
	}
	r.rep.Pass = len(r.rep.Violations) == 0
	if temp && r.rep.Pass {
		os.RemoveAll(dir)
		r.rep.Dir = ""
	}
	return r.rep, nil
}

// walRepairMarker is what a node logs when it cut a torn WAL tail
// (consensus/wal).
const walRepairMarker = "cut a torn or corrupt tail"

// runner carries one run.
type runner struct {
	cfg   Config
	logf  func(string, ...any)
	c     cluster
	dir   string
	sched Schedule
	mon   *monitor
	hist  *History
	wl    *workload
	rep   *Report
	doc   *genesis.Doc

	start time.Time // of the workload
	twins []twinWindow
	// staker is the funded account churn faults delegate from.
	staker crypto.PrivKey
	// twinChain holds block and app hashes a twin reported, checked
	// against the validators' chain at the end.
	twinChain map[uint64][2]crypto.Hash
}

// twinWindow is when validator Of's key was held twice: its votes for
// heights From to To may conflict.
type twinWindow struct {
	Of       int
	From, To uint64
}

func (r *runner) validators() []int {
	out := make([]int, r.c.Validators())
	for i := range out {
		out[i] = i
	}
	return out
}

func (r *runner) run(ctx context.Context) error {
	doc, err := genesis.Load(node.DefaultConfig(r.c.Home(0)).GenesisFile())
	if err != nil {
		return err
	}
	r.doc = doc
	groups, err := r.groups()
	if err != nil {
		return err
	}
	monCtx, stopMon := context.WithCancel(context.Background())
	monDone := make(chan struct{})
	go func() {
		defer close(monDone)
		r.mon.run(monCtx)
	}()
	defer func() {
		stopMon()
		<-monDone
	}()
	vals := r.validators()
	for _, i := range vals {
		if err := r.c.Start(i); err != nil {
			return err
		}
	}
	if _, err := r.mon.waitFor(ctx, startBound, func(v view) bool { return v.all(vals, 2) }); err != nil {
		r.dumpLogs(vals)
		return fmt.Errorf("network did not start: %w", err)
	}
	r.logf("network committing; workload of %d senders and %d readers starts", len(groups), r.cfg.Readers)

	r.wl = &workload{c: r.c, hist: r.hist, chainID: r.doc.ChainID, seed: r.cfg.Seed, groups: groups,
		readers: r.cfg.Readers, targets: r.c.Validators()}
	wlCtx, stopWL := context.WithCancel(ctx)
	drainCtx, stopDrain := context.WithCancel(ctx)
	wlDone := make(chan struct{})
	r.start = time.Now()
	go func() {
		defer close(wlDone)
		r.wl.run(wlCtx, drainCtx)
	}()
	defer func() {
		stopWL()
		stopDrain()
		<-wlDone
	}()

	for k, f := range r.sched.Faults {
		if err := sleepUntil(ctx, r.start.Add(time.Duration(f.At))); err != nil {
			return err
		}
		rec, err := r.inject(ctx, f)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.rep.Faults = append(r.rep.Faults, rec)
		for _, v := range rec.Violations {
			r.rep.violate("%s %v at %.1fs: %s", f.Kind, f.Nodes, float64(rec.Injected), v)
		}
		if err != nil {
			// A node that died on its own cannot be killed or paused.
			r.rep.violate("%v; %d later faults skipped", err, len(r.sched.Faults)-k-1)
			r.dumpLogs(f.Nodes)
			break
		}
		if rec.Recovery == nil {
			r.rep.violate("the network did not recover within %s of healing fault %d (%s); %d later faults skipped",
				recoveryBound, k, f.Kind, len(r.sched.Faults)-k-1)
			break
		}
	}
	if err := sleepUntil(ctx, r.start.Add(time.Duration(r.sched.Duration))); err != nil {
		return err
	}
	stopWL()
	r.logf("workload stopped; waiting up to %s for transfers in flight", drainBound)
	select {
	case <-wlDone:
	case <-time.After(drainBound):
		stopDrain()
		<-wlDone
	}
	return r.finish(ctx)
}

// groups loads the funded accounts' keys and pairs each with a recipient.
func (r *runner) groups() ([]group, error) {
	out := make([]group, r.cfg.Senders)
	accDir := filepath.Join(filepath.Dir(r.c.Home(0)), "accounts")
	for g := range out {
		k, err := privval.LoadKeyFile(filepath.Join(accDir, fmt.Sprintf("account%d.json", g)))
		if err != nil {
			return nil, fmt.Errorf("account %d: %w", g, err)
		}
		out[g] = group{sender: k, recipient: recipientOf(r.cfg.Seed, g)}
	}
	k, err := privval.LoadKeyFile(filepath.Join(accDir, fmt.Sprintf("account%d.json", len(out))))
	if err != nil {
		return nil, fmt.Errorf("staker account: %w", err)
	}
	r.staker = k
	return out, nil
}

// inject runs one fault: injects it, holds it for its duration, heals it
// and measures the recovery. Problems the fault reveals go into the
// record; an error means the fault could not be injected or healed.
func (r *runner) inject(ctx context.Context, f Fault) (FaultRecord, error) {
	rec := FaultRecord{Fault: f, Details: map[string]any{}}
	vals := r.validators()
	c := r.c
	target := f.Nodes[0]
	// Validators expected to keep committing while the fault is in force.
	healthy := others(c, f.Nodes)
	rec.HeightAtFault = r.mon.view().top(vals)
	rec.Injected = secondsOf(time.Since(r.start))
	r.logf("%.1fs: inject %s %v at height %d", float64(rec.Injected), f.Kind, f.Nodes, rec.HeightAtFault)
	began := time.Now()
	var err error
	repairsBefore := 0
	switch f.Kind {
	case Kill:
		err = c.Kill(target)
	case Pause:
		err = c.Pause(target)
	case WALCut:
		repairsBefore = strings.Count(c.Logs(target, logScan), walRepairMarker)
		if err = c.Kill(target); err == nil {
			var seg string
			var size, off int64
			if seg, size, off, err = cutWAL(c.Home(target), f); err == nil {
				rec.Details["segment"], rec.Details["size"], rec.Details["offset"] = seg, size, off
			}
		}
	case Partition:
		rec.Details["side"], rec.Details["other"] = f.Nodes, healthy
		healthy = nil
		for _, side := range [][]int{f.Nodes, others(c, f.Nodes)} {
			if 3*len(side) > 2*len(vals) { // equal powers: more than 2/3 of the validators
				rec.Details["quorum_side"] = side
				healthy = side
			}
		}
		err = c.Partition(f.Nodes)
	case Twin:
		healthy = vals
		var slot int
		if slot, err = c.AddTwin(target); err == nil {
			err = c.Start(slot)
		}
	case Churn:
		healthy = vals
		err = r.churn(ctx, &rec, f, ledger.TxDelegate)
	}
	if err != nil {
		// Undo what may have been done, so the final checks see a whole network.
		switch f.Kind {
		case Kill, WALCut:
			c.Start(target)
		case Pause:
			c.Resume(target)
		case Partition:
			c.Heal()
		case Twin:
			c.Kill(c.Validators())
		}
		return rec, fmt.Errorf("inject %s: %w", f, err)
	}
	// The network's height once the fault is in force (the monitor's view
	// may be a poll old, and the injection itself takes time). For a
	// partition these are the heights at the cut: a side without a quorum
	// may still finish the height after them, no more.
	probe := healthy
	if f.Kind == Partition {
		probe = vals
	}
	at := r.freshHeights(ctx, probe)
	rec.HeightAtFault = max(rec.HeightAtFault, slices.Max(at))
	if f.Kind == Partition {
		rec.Details["heights_at_cut"] = at
	}

	// While the fault is in force.
	hold := time.NewTimer(time.Duration(f.For))
	if len(healthy) > 0 {
		h0 := rec.HeightAtFault
		if d, err := r.mon.waitFor(ctx, time.Duration(f.For), func(v view) bool { return v.top(healthy) > h0 }); err == nil {
			rec.CommitDuring = secondsPtr(d)
		}
	}
	select {
	case <-ctx.Done():
		hold.Stop()
		return rec, ctx.Err()
	case <-hold.C:
	}
	if f.Kind == Partition {
		r.checkMinority(ctx, &rec, vals)
	}
	if f.Kind == Twin {
		r.endTwin(ctx, &rec, target, began)
	}

	// Heal.
	switch f.Kind {
	case Kill, WALCut:
		err = c.Start(target)
	case Pause:
		err = c.Resume(target)
	case Partition:
		err = c.Heal()
	case Churn:
		err = r.churn(ctx, &rec, f, ledger.TxUndelegate)
	}
	if err != nil {
		return rec, fmt.Errorf("heal %s: %w", f, err)
	}
	rec.Healed = secondsOf(time.Since(r.start))
	hHeal := max(r.mon.view().top(vals), slices.Max(r.freshHeights(ctx, vals)))
	rec.HeightAtHeal = hHeal
	healed := time.Now()
	if d, err := r.mon.waitFor(ctx, recoveryBound, func(v view) bool { return v.top(vals) > hHeal }); err == nil {
		rec.CommitAfter = secondsPtr(d)
	}
	if _, err := r.mon.waitFor(ctx, recoveryBound-time.Since(healed), func(v view) bool { return v.all(vals, hHeal+1) }); err == nil {
		rec.Recovery = secondsPtr(time.Since(healed))
	} else {
		if ctx.Err() != nil {
			return rec, ctx.Err()
		}
		r.dumpLogs(f.Nodes)
	}
	if f.Kind == WALCut {
		rec.Details["repair_logged"] = strings.Count(c.Logs(target, logScan), walRepairMarker) > repairsBefore
	}
	r.logf("%.1fs: healed %s %v at height %d; committing again after %s, all caught up after %s",
		float64(rec.Healed), f.Kind, f.Nodes, hHeal, opt(rec.CommitAfter), opt(rec.Recovery))
	return rec, nil
}

// checkMinority checks, while the partition is still in force, that no
// side without a quorum went more than one height past the network's
// height at the cut.
func (r *runner) checkMinority(ctx context.Context, rec *FaultRecord, vals []int) {
	now := r.freshHeights(ctx, vals)
	rec.Details["heights_before_heal"] = now
	quorum, _ := rec.Details["quorum_side"].([]int)
	for _, i := range vals {
		if slices.Contains(quorum, i) {
			continue
		}
		if now[i] > rec.HeightAtFault+1 {
			rec.Violations = append(rec.Violations, fmt.Sprintf(
				"node%d, on a side without a quorum, committed height %d; the network was at %d when cut off", i, now[i], rec.HeightAtFault))
		}
	}
}

// endTwin gives the twin's equivocation time to be committed as evidence,
// records the twin's chain, and kills it.
func (r *runner) endTwin(ctx context.Context, rec *FaultRecord, of int, began time.Time) {
	slot := r.c.Validators()
	addr := r.doc.Validators[of].PubKey.Address()
	watcher := (of + 1) % r.c.Validators()
	if b, ok := r.waitEvidence(ctx, watcher, addr, rec.HeightAtFault, evidenceBound); ok {
		rec.Details["evidence_block"] = b.Header.Height
		rec.Details["evidence_after_s"] = secondsOf(b.Header.Time.Time().Sub(began))
	}
	// The twin's chain must be the validators' chain.
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if st, err := r.c.Client(slot).Status(cctx); err == nil {
		if r.twinChain == nil {
			r.twinChain = map[uint64][2]crypto.Hash{}
		}
		for h := uint64(1); h <= uint64(st.LatestHeight); h++ {
			cm, err := r.c.Client(slot).Commit(cctx, api.At(h))
			if err != nil {
				rec.Violations = append(rec.Violations, fmt.Sprintf("twin: commit %d: %v", h, err))
				break
			}
			r.twinChain[h] = [2]crypto.Hash{cm.BlockHash, cm.Header.AppHash}
		}
		rec.Details["twin_height"] = uint64(st.LatestHeight)
	} else {
		rec.Violations = append(rec.Violations, fmt.Sprintf("twin does not answer: %v", err))
	}
	if err := r.c.Kill(slot); err != nil {
		rec.Violations = append(rec.Violations, fmt.Sprintf("twin died on its own: %v", err))
	}
	r.twins = append(r.twins, twinWindow{Of: of, From: rec.HeightAtFault, To: r.mon.view().top(r.validators()) + 2})
}

// waitEvidence follows node's blocks from height from+1 until one carries
// evidence against addr, for at most timeout.
func (r *runner) waitEvidence(ctx context.Context, node int, addr crypto.Address, from uint64, timeout time.Duration) (*ledger.Block, bool) {
	deadline := time.Now().Add(timeout)
	for h := from + 1; time.Now().Before(deadline); {
		if _, err := r.mon.waitFor(ctx, time.Until(deadline), func(v view) bool { return v.height[node] >= h }); err != nil {
			return nil, false
		}
		cctx, cancel := context.WithTimeout(ctx, callFor)
		b, err := r.c.Client(node).Block(cctx, api.At(h))
		cancel()
		if err != nil {
			continue // retried until the deadline
		}
		for _, ev := range b.Block.Evidence {
			if ev.VoteA.Validator == addr {
				return b.Block, true
			}
		}
		h++
	}
	return nil, false
}

// freshHeights asks each node for its height now (0 when it does not answer).
func (r *runner) freshHeights(ctx context.Context, nodes []int) []uint64 {
	out := make([]uint64, len(nodes))
	var wg sync.WaitGroup
	for k, i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if st, err := r.c.Client(i).Status(cctx); err == nil {
				out[k] = uint64(st.LatestHeight)
			}
		}()
	}
	wg.Wait()
	return out
}

func (r *runner) dumpLogs(nodes []int) {
	for _, i := range nodes {
		r.logf("--- node%d log tail ---\n%s", i, r.c.Logs(i, 3000))
	}
}

// sleepUntil waits for a wall-clock moment of the schedule.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
