package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ledgerd/ledgerd/internal/harness/bench"
)

// runBench is `ledgerd bench`: the load generator (see
// internal/harness/bench and docs/benchmarking.md).
func runBench(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ledgerd bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: ledgerd bench (--spawn N | --testnet DIR) [flags]

Submits pre-signed transfers to every node and reports committed transfers
per second, submit-to-commit latency, block interval and each node's CPU and
memory. --spawn runs a fresh local network of this binary; --testnet drives
a running one (scripts/localnet.sh). See docs/benchmarking.md.

flags:`)
		fs.PrintDefaults()
	}
	spawn := fs.Int("spawn", 0, "generate and run a local network of N validators for the run")
	testnet := fs.String("testnet", "", "drive the running network generated in DIR (testnet.json, nodeI/pid, accounts/)")
	accounts := fs.Int("accounts", bench.DefaultAccounts, "funded accounts that send (spawn: generated; testnet: at most this many)")
	rate := fs.Float64("rate", 0, "offered load in transfers per second; 0 = as fast as the network admits them")
	inflight := fs.Int("inflight", bench.DefaultInFlight, "with --rate 0: most transfers admitted and not yet committed")
	duration := fs.Duration("duration", bench.DefaultDuration, "how long to submit")
	warmup := autoDuration(-1)
	fs.Var(&warmup, "warmup", "`duration` at the start of the load left out of the figures; auto = min(5s, duration/5)")
	drain := fs.Duration("drain", bench.DefaultDrain, "how long to wait after the load for admitted transfers to commit")
	workers := fs.Int("workers", bench.DefaultWorkers, "sequential submitting workers per target node")
	txs := fs.Int("txs", 0, "transfers to pre-sign (default: rate x duration, or 15,000/s x duration with --rate 0)")
	targetList := fs.String("targets", "", "comma-separated node indexes to submit to (default all)")
	observe := fs.Int("observe", 0, "node whose blocks are watched for commits")
	out := fs.String("out", "", "write the JSON report to FILE")
	plot := fs.String("plot", "", "write an SVG plot of throughput and latency over time to FILE")
	bin := fs.String("bin", "", "ledgerd binary spawned nodes run (default this one)")
	dir := fs.String("dir", "", "with --spawn: put the network's homes in DIR and keep them (default a temporary directory)")
	keep := fs.Bool("keep", false, "with --spawn: keep the temporary homes (logs) after the run")
	timeoutCommit := fs.Duration("timeout-commit", bench.DefaultTimeoutCommit, "with --spawn: the genesis timeout_commit")
	maxBlockTxs := fs.Uint64("max-block-txs", 0, "with --spawn: the genesis max_block_txs (default the ledger's default)")
	var nodeArgs stringList
	fs.Var(&nodeArgs, "node-args", "with --spawn: extra `flags` for every ledgerd start, comma-separated (e.g. --mempool.max-txs=200000)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	cfg := bench.Config{
		Spawn: *spawn, Testnet: *testnet, Accounts: *accounts, Rate: *rate, InFlight: *inflight,
		Duration: *duration, Warmup: time.Duration(warmup), Drain: *drain, Workers: *workers, Txs: *txs, Observe: *observe,
		Bin: *bin, Dir: *dir, Keep: *keep, MaxBlockTxs: *maxBlockTxs, NodeArgs: nodeArgs,
		Args: append([]string{"ledgerd", "bench"}, args...),
	}
	if *spawn > 0 {
		cfg.TimeoutCommit = *timeoutCommit
		if cfg.Bin == "" {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("bench: find this binary: %w", err)
			}
			cfg.Bin = exe
		}
	}
	if *targetList != "" {
		for _, s := range strings.Split(*targetList, ",") {
			i, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("bench: --targets: %w", err)
			}
			cfg.Targets = append(cfg.Targets, i)
		}
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	// Create the output files first: a typo should not cost a whole run.
	var outF, plotF *os.File
	for _, f := range []struct {
		name string
		dst  **os.File
	}{{*out, &outF}, {*plot, &plotF}} {
		if f.name == "" {
			continue
		}
		h, err := os.Create(f.name)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer h.Close()
		*f.dst = h
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := rep.WriteSummary(stdout); err != nil {
		return err
	}
	var errs []error
	if outF != nil {
		errs = append(errs, rep.WriteJSON(outF), outF.Close())
	}
	if plotF != nil {
		errs = append(errs, bench.WritePlot(plotF, rep), plotF.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// autoDuration is a duration flag whose negative value means "chosen by
// the command" and shows as "auto".
type autoDuration time.Duration

func (d *autoDuration) String() string {
	if *d < 0 {
		return "auto"
	}
	return time.Duration(*d).String()
}

func (d *autoDuration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 {
		return errors.New("want a non-negative duration")
	}
	*d = autoDuration(v)
	return nil
}
