// Command ledger-wallet keeps keys in an encrypted keystore and talks to
// ledgerd nodes over JSON-RPC.
//
//	ledger-wallet keys new|list|show|import|export|delete
//	ledger-wallet balance ADDRESS [--verify [--max-age D]]
//	ledger-wallet send --from NAME --to ADDRESS --amount N [--fee N] [--wait] [--count K]
//	ledger-wallet tx HASH [--verify]
//	ledger-wallet history ADDRESS
//	ledger-wallet status
//	ledger-wallet stake create-validator --from NAME --cons-key HEX|FILE --moniker M --amount N [--fee N] [--wait]
//	ledger-wallet stake delegate|undelegate --from NAME --validator OPERATOR --amount N [--fee N] [--wait]
//	ledger-wallet stake unjail --from NAME [--fee N] [--wait]
//	ledger-wallet stake validator OPERATOR | validators | delegations ACCOUNT
//
// Global flags (anywhere on the line): --home DIR (default
// $LEDGER_WALLET_HOME, else ~/.ledger-wallet), --rpc URL[,URL...]
// (default $LEDGER_WALLET_RPC, else http://127.0.0.1:26657; later ones
// are failovers), --output text|json, --passphrase-file FILE (else
// $LEDGER_WALLET_PASSPHRASE, else a prompt), --genesis FILE and
// --genesis-hash HASH (what --verify trusts), --timeout D, -v (with
// --verify: each header the light client trusts, and what it fetched).
//
// --verify follows the validator set from the trusted genesis, skipping
// ahead where more than a third of a trusted set signed a later header,
// and keeps the newest header it trusted in the home
// (trusted_header.json) so that the next run starts there.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

type command struct {
	summary string
	run     func(e *env, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"keys":    {"manage keys: new, list, show, import, export, delete", runKeys},
		"balance": {"show an account's balance (--verify: prove it against a verified header)", runBalance},
		"send":    {"send a transfer (or --count of them in a row)", runSend},
		"tx":      {"show a transaction (--verify: prove its inclusion)", runTx},
		"history": {"list an account's committed transactions", runHistory},
		"status":  {"show the node's status", runStatus},
		"stake":   {"staking: create-validator, delegate, undelegate, unjail; validator, validators, delegations", runStake},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "ledger-wallet:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	word, rest, err := commandWord(args)
	if err != nil {
		usage(stderr)
		return err
	}
	if word == "" || word == "help" {
		usage(stdout)
		if word == "" && len(args) > 0 {
			return errors.New("no command given")
		}
		return nil
	}
	cmds := commands()
	c, ok := cmds[word]
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown command %q", word)
	}
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	defer func() {
		if e.cancel != nil {
			e.cancel()
		}
	}()
	return c.run(e, rest)
}

// commandWord finds the (sub)command in args: the first argument that is
// neither a global flag nor a global flag's value. It returns that word
// and the other arguments in their order; every command's flag set carries
// the global flags and parses them wherever they stand. The word is "help"
// for -h or --help before any command, and "" when there is none.
func commandWord(args []string) (string, []string, error) {
	globals := (&env{stderr: io.Discard}).flags("")
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			if i+1 == len(args) {
				return "", nil, nil
			}
			return args[i+1], append(args[:i:i], args[i+2:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			return a, append(args[:i:i], args[i+1:]...), nil
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "h" || name == "help" {
			return "help", nil, nil
		}
		f := globals.Lookup(name)
		if f == nil {
			return "", nil, fmt.Errorf("flag %q before the command is not a global flag: put the command's own flags after it", a)
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); hasValue || (ok && bf.IsBoolFlag()) {
			continue
		}
		if i+1 == len(args) {
			return "", nil, fmt.Errorf("flag %q needs a value", a)
		}
		i++
	}
	return "", nil, nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ledger-wallet COMMAND [args] [flags]")
	fmt.Fprintln(w, "\ncommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, `
global flags (anywhere on the line):
  --home DIR              wallet home (default $LEDGER_WALLET_HOME, else ~/.ledger-wallet)
  --rpc URL[,URL...]      node endpoints, later ones are failovers (default $LEDGER_WALLET_RPC, else http://127.0.0.1:26657)
  --output text|json      output format
  --passphrase-file FILE  read the passphrase from FILE (else $LEDGER_WALLET_PASSPHRASE, else a prompt)
  --genesis FILE          genesis file --verify trusts (pinned in the home on first use)
  --genesis-hash HASH     genesis hash --verify trusts; the node's genesis is fetched and pinned if it matches
  --timeout D             time limit of the whole command (default 2m)
  -v                      with --verify: show each header the light client trusts and what it fetched

Run 'ledger-wallet COMMAND --help' for a command's flags.`)
}
