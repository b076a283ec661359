// Command ledgerd runs a ledgerd node and manages its home directory.
//
//	ledgerd dev                       a single-validator dev chain with a funded account
//	ledgerd init --chain-id ID        create a node home
//	ledgerd start                     run the node of a home
//	ledgerd testnet --validators N    generate the homes of a local network
//	ledgerd bench --spawn 4           load generator: committed tx/s, latency, CPU, memory
//	ledgerd chaos --validators 4      a network under load and injected faults, checked
//	ledgerd show-node-id | show-validator | version | reset
//
// Every command takes --home DIR (default $LEDGERD_HOME, else ~/.ledgerd).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	summary string
	run     func(args []string, stdout io.Writer) error
}

var commands = map[string]command{
	"dev":            {"run a single-validator dev chain with a funded account", runDev},
	"init":           {"create a node home: config, keys, genesis", runInit},
	"start":          {"run the node", runStart},
	"testnet":        {"generate the homes of a local network", runTestnet},
	"show-node-id":   {"print the node's libp2p peer ID", runShowNodeID},
	"show-validator": {"print the validator's public key and address", runShowValidator},
	"version":        {"print the version", runVersion},
	"reset":          {"delete the node's chain data (asks for confirmation)", runReset},
	"chaos":          {"run a local network under load and injected faults, then check it", runChaos},
	"bench":          {"drive a local network with transfers and measure it", runBench},
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "ledgerd:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(os.Stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return c.run(args[1:], stdout)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ledgerd COMMAND [--home DIR] [flags]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-15s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'ledgerd COMMAND --help' for a command's flags.")
}

// defaultHome is $LEDGERD_HOME, else ~/.ledgerd.
func defaultHome() string {
	if h := os.Getenv("LEDGERD_HOME"); h != "" {
		return h
	}
	if d, err := os.UserHomeDir(); err == nil {
		return filepath.Join(d, ".ledgerd")
	}
	return ".ledgerd"
}

// newFlagSet returns a flag set for a command with --home registered.
func newFlagSet(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("ledgerd "+name, flag.ContinueOnError)
	home := fs.String("home", defaultHome(), "node home directory")
	return fs, home
}

// stringList is a comma-separated list flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error {
	*l = nil
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}
