package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ledgerd/ledgerd/internal/harness/chaos"
)

// runChaos runs a network of this binary under a transfer workload while
// injecting a seeded schedule of faults, then checks the outcome (see
// internal/harness/chaos). It fails when any check does.
func runChaos(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ledgerd chaos", flag.ContinueOnError)
	vals := fs.Int("validators", 4, "number of validators (at least 4)")
	duration := fs.Duration("duration", 2*time.Minute, "length of the faulty phase (5s + 14s per fault at least)")
	seed := fs.Int64("seed", 0, "seed of the fault schedule and workload (default: random, printed)")
	faults := fs.String("faults", "all", "fault kinds: kill,pause,partition,walcut,twin,churn (or all)")
	useDocker := fs.Bool("docker", false, "run the nodes as Docker containers (needs a daemon and a static binary)")
	loopback := fs.Bool("loopback", false, "run processes on loopback, not in network namespaces (no partitions)")
	reportPath := fs.String("report", "", "write the JSON report to this file")
	dir := fs.String("dir", "", "directory for homes, logs and history (default: a temporary one, kept if the run fails)")
	bin := fs.String("bin", "", "ledgerd binary the nodes run (default: this one)")
	senders := fs.Int("senders", 8, "transfer clients, one funded account each")
	readers := fs.Int("readers", 2, "balance-reading clients")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	kinds, err := chaos.ParseFaults(*faults)
	if err != nil {
		return err
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	if !seedSet {
		*seed = rand.Int64N(1 << 53)
	}
	if *bin == "" {
		if *bin, err = os.Executable(); err != nil {
			return fmt.Errorf("find this binary: %w", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := chaos.Run(ctx, chaos.Config{
		Bin: *bin, Dir: *dir, Validators: *vals, Duration: *duration, Seed: *seed, Faults: kinds,
		Docker: *useDocker, Loopback: *loopback, Senders: *senders, Readers: *readers, Log: os.Stderr,
	})
	if err != nil {
		return fmt.Errorf("%w (seed %d)", err, *seed)
	}
	fmt.Fprint(stdout, rep.Summary())
	if *reportPath != "" {
		if err := rep.WriteJSON(*reportPath); err != nil {
			return err
		}
	}
	if !rep.Pass {
		return errors.New("chaos run failed its checks")
	}
	return nil
}
