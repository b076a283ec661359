package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/rpc/client"
	"github.com/ledgerd/ledgerd/wallet"
)

// Environment variables the wallet reads.
const (
	envHome       = "LEDGER_WALLET_HOME"
	envRPC        = "LEDGER_WALLET_RPC"
	envPassphrase = "LEDGER_WALLET_PASSPHRASE"
	defaultRPC    = "http://127.0.0.1:26657"
	trustedFile   = "trusted_genesis.json"
	maxPassBytes  = 4 << 10
)

// env is one invocation: the global flags and the standard streams.
type env struct {
	ctx                    context.Context
	stdin                  io.Reader
	stdout, stderr         io.Writer
	home                   string
	rpc                    string
	output                 string
	passFile               string
	genesisFile, genesisHx string
	timeout                time.Duration
	cancel                 context.CancelFunc
}

// flags returns a flag set for a command with the global flags on it.
func (e *env) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("ledger-wallet "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	home := os.Getenv(envHome)
	if home == "" {
		if d, err := os.UserHomeDir(); err == nil {
			home = filepath.Join(d, ".ledger-wallet")
		}
	}
	rpc := os.Getenv(envRPC)
	if rpc == "" {
		rpc = defaultRPC
	}
	fs.StringVar(&e.home, "home", home, "wallet home directory")
	fs.StringVar(&e.rpc, "rpc", rpc, "node RPC endpoints, comma-separated; later ones are failovers")
	fs.StringVar(&e.output, "output", "text", "output format: text or json")
	fs.StringVar(&e.passFile, "passphrase-file", "", "read the passphrase from this file (first line)")
	fs.StringVar(&e.genesisFile, "genesis", "", "genesis file that --verify trusts")
	fs.StringVar(&e.genesisHx, "genesis-hash", "", "genesis hash that --verify trusts")
	fs.DurationVar(&e.timeout, "timeout", 2*time.Minute, "time limit of the command")
	return fs
}

// parse parses flags anywhere among the arguments and returns the
// positional ones, checking their count.
func (e *env) parse(fs *flag.FlagSet, args []string, minPos, maxPos int, posUsage string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < minPos || len(pos) > maxPos {
		return nil, fmt.Errorf("usage: %s %s", fs.Name(), posUsage)
	}
	if e.output != "text" && e.output != "json" {
		return nil, fmt.Errorf("--output %q: want text or json", e.output)
	}
	if e.timeout > 0 {
		e.ctx, e.cancel = context.WithTimeout(e.ctx, e.timeout)
	}
	return pos, nil
}

func (e *env) keystore() (*wallet.Keystore, error) {
	return wallet.OpenKeystore(filepath.Join(e.home, "keys"))
}

func (e *env) client() (*client.Client, error) {
	var eps []string
	for _, p := range strings.Split(e.rpc, ",") {
		if p = strings.TrimSpace(p); p != "" {
			eps = append(eps, p)
		}
	}
	return client.New(eps...)
}

// passphrase reads the passphrase: from --passphrase-file, else the
// environment, else a terminal prompt (asked twice when confirm is set).
func (e *env) passphrase(prompt string, confirm bool) ([]byte, error) {
	if e.passFile != "" {
		f, err := os.Open(e.passFile)
		if err != nil {
			return nil, fmt.Errorf("passphrase file: %w", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxPassBytes+1))
		if err != nil {
			return nil, fmt.Errorf("passphrase file: %w", err)
		}
		if len(b) > maxPassBytes {
			return nil, fmt.Errorf("passphrase file %s is over %d bytes", e.passFile, maxPassBytes)
		}
		line, _, _ := bytes.Cut(b, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return nil, fmt.Errorf("passphrase file %s: the first line is empty", e.passFile)
		}
		return line, nil
	}
	if v := os.Getenv(envPassphrase); v != "" {
		return []byte(v), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, fmt.Errorf("a passphrase is needed and stdin is not a terminal: use --passphrase-file FILE or $%s", envPassphrase)
	}
	fmt.Fprint(e.stderr, prompt)
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(e.stderr)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, errors.New("empty passphrase")
	}
	if confirm {
		fmt.Fprint(e.stderr, "Repeat the passphrase: ")
		q, err := term.ReadPassword(fd)
		fmt.Fprintln(e.stderr)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(p, q) {
			return nil, errors.New("the passphrases differ")
		}
	}
	return p, nil
}

// address resolves an argument that is a bech32 address or a key name.
func (e *env) address(arg string) (crypto.Address, error) {
	a, aerr := crypto.ParseAddress(arg)
	if aerr == nil {
		return a, nil
	}
	if wallet.ValidateName(arg) == nil {
		if ks, err := e.keystore(); err == nil {
			if info, err := ks.Info(arg); err == nil {
				return info.Address, nil
			}
		}
	}
	return crypto.Address{}, fmt.Errorf("%v (and no key is named %q)", aerr, arg)
}

// trust returns the genesis --verify trusts: --genesis FILE, else the
// pinned copy in the home, else the node's genesis if it hashes to
// --genesis-hash. What it trusted the first time is pinned.
func (e *env) trust(c *client.Client) (*client.Trust, error) {
	pinned := filepath.Join(e.home, trustedFile)
	var want *crypto.Hash
	if e.genesisHx != "" {
		h, err := crypto.HashFromHex(e.genesisHx)
		if err != nil {
			return nil, fmt.Errorf("--genesis-hash: %w", err)
		}
		want = &h
	}
	var doc *genesis.Doc
	var err error
	source := ""
	switch {
	case e.genesisFile != "":
		doc, err = genesis.Load(e.genesisFile)
		source = e.genesisFile
	case exists(pinned):
		doc, err = genesis.Load(pinned)
		source = pinned
	case want != nil:
		var h crypto.Hash
		doc, h, err = c.Genesis(e.ctx)
		if err == nil && h != *want {
			return nil, fmt.Errorf("%w: the node's genesis hashes to %s, you trust %s", client.ErrVerification, h, *want)
		}
		source = "the node (hash checked)"
	default:
		return nil, fmt.Errorf("--verify needs a genesis to trust: pass --genesis FILE (a copy you trust) or "+
			"--genesis-hash HASH (from a source you trust) once; it is then pinned in %s", pinned)
	}
	if err != nil {
		return nil, err
	}
	if want != nil && doc.Hash() != *want {
		return nil, fmt.Errorf("%w: the genesis from %s hashes to %s, --genesis-hash says %s", client.ErrVerification, source, doc.Hash(), *want)
	}
	if !exists(pinned) {
		if err := os.MkdirAll(e.home, 0o700); err != nil {
			return nil, err
		}
		if err := doc.Save(pinned); err != nil {
			return nil, fmt.Errorf("pin genesis: %w", err)
		}
		fmt.Fprintf(e.stderr, "pinned genesis %s in %s\n", doc.Hash(), pinned)
	}
	return client.NewTrust(doc)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

// print writes v as JSON, or text via the function given.
func (e *env) print(v any, text func(w io.Writer)) error {
	if e.output == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(e.stdout)
	return nil
}
