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
	"github.com/ledgerd/ledgerd/internal/durable"
	"github.com/ledgerd/ledgerd/light"
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
	// lightFile holds the newest header the light client trusted, so
	// that the next --verify starts from it (light.TrustedState).
	lightFile    = "trusted_header.json"
	maxPassBytes = 4 << 10
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
	verbose                bool
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
	fs.BoolVar(&e.verbose, "v", false, "verbose: with --verify, show each header the light client comes to trust and what it fetched")
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
func (e *env) trust(c *client.Client) (*light.Trust, error) {
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
	t, err := light.NewTrust(doc)
	if err != nil {
		return nil, err
	}
	if err := e.followLight(t); err != nil {
		return nil, err
	}
	return t, nil
}

// followLight makes t start from the header saved in the home by an
// earlier --verify, if there is one, and save the newest it trusts there
// (mode 0600). With -v it reports every header it comes to trust.
func (e *env) followLight(t *light.Trust) error {
	path := filepath.Join(e.home, lightFile)
	b, err := durable.ReadBounded(path, light.MaxTrustedStateBytes)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("trusted header: %w", err)
	default:
		s, err := light.DecodeTrustedState(b)
		if err == nil {
			err = t.RestoreState(s)
		}
		if err != nil {
			return fmt.Errorf("%s: %w\n(it holds the newest header an earlier --verify trusted; delete it to verify from the genesis again)", path, err)
		}
		if e.verbose {
			fmt.Fprintf(e.stderr, "light client: starting from trusted header %d (%s)\n", s.Header.Height, path)
		}
	}
	t.Persist = func(s *light.TrustedState) error {
		err := writeReplace(path, s.Encode())
		if err != nil {
			fmt.Fprintf(e.stderr, "WARNING: could not save the trusted header %d in %s: %v\n", s.Header.Height, path, err)
		}
		return err
	}
	if e.verbose {
		t.OnStep = func(s light.Step) {
			from := fmt.Sprint(s.From)
			if s.From == 0 {
				from = "the genesis"
			}
			switch s.Method {
			case light.StepSkipping:
				fmt.Fprintf(e.stderr, "light client: trusted header %d from %s (skipping: validators holding %d of %d power of the set trusted at %d signed)\n",
					s.To, from, s.TrustedSigned, s.TrustedTotal, s.From+1)
			default:
				fmt.Fprintf(e.stderr, "light client: trusted header %d from %s (%s)\n", s.To, from, s.Method)
			}
		}
	}
	return nil
}

// reportLight prints, with -v, what the light client fetched.
func (e *env) reportLight(t *light.Trust) {
	if !e.verbose {
		return
	}
	st := t.Stats()
	fmt.Fprintf(e.stderr, "light client: fetched %d headers and %d validator sets; newest trusted header %d\n",
		st.HeadersFetched, st.SetsFetched, st.Newest)
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

// writeReplace replaces path with data, mode 0600, so that a crash leaves
// the old file or the new one, never a part.
func writeReplace(path string, data []byte) error {
	if err := durable.EnsureDir(filepath.Dir(path)); err != nil {
		return err
	}
	return durable.WriteFile(path, data, 0o600)
}
